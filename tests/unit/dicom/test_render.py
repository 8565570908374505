"""Rendering (rendered / thumbnail) against real files from /work/shared/dicom."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_color_lut, pixel_array

from yunying.dicom.render import render_frame, thumbnail, window_for
from yunying.errors import CannotDecode, NotAcceptable, NotFound

DATA = Path("/work/shared/dicom")
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared DICOM test data not available")

CT = "ct_abdomen_pancreas_tcia/1-050.dcm"
CR_MONO1 = "nema_wg04_compression/JLSL/RG3_JLSL"
US_PALETTE = "multiframe_us_nm_xa/US-PAL-8-10x-echo"
US_RGB_BE = "edge_cases/US-RGB-8-epicard_bigendian"
NM = "multiframe_us_nm_xa/NM-MONO2-16-13x-heart"
DX = "projection_xray/DX_chest_C3L-00277.dcm"
MR_SIGNED = "edge_cases/MR_small_implicit.dcm"


def load(rel: str) -> pydicom.Dataset:
    return pydicom.dcmread(DATA / rel)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 with y_min=0, y_max=255, in float64, written like the standard."""
    x = values.astype(np.float64)
    y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    y[x <= center - 0.5 - (width - 1) / 2] = 0.0
    y[x > center - 0.5 + (width - 1) / 2] = 255.0
    return np.rint(y)


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    diff = np.abs(actual.astype(np.int32) - expected.astype(np.int32))
    assert diff.max() <= 1  # float32 vs float64 rounding at .5 boundaries only
    assert (diff == 0).mean() > 0.999


def hounsfield(ds: pydicom.Dataset) -> np.ndarray:
    return pixel_array(ds).astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


# --- greyscale ---------------------------------------------------------------------


def test_ct_explicit_window_matches_formula() -> None:
    ds = load(CT)
    out = decode(render_frame(ds, media_type="image/png", window=(40.0, 400.0)))
    assert out.mode == "L"
    assert out.size == (512, 512)
    assert_close(np.asarray(out), linear_window(hounsfield(ds), 40.0, 400.0))


def test_ct_default_window_is_the_datasets() -> None:
    ds = load(CT)
    assert window_for(ds) == (60.0, 400.0)
    out = np.asarray(decode(render_frame(ds, media_type="image/png")))
    assert_close(out, linear_window(hounsfield(ds), 60.0, 400.0))
    lung = np.asarray(decode(render_frame(ds, media_type="image/png", window=(-600, 1500))))
    assert not np.array_equal(out, lung)


def test_ct_window_functions() -> None:
    ds = load(CT)
    hu = hounsfield(ds)
    exact = np.asarray(decode(render_frame(ds, media_type="image/png", window=(40, 400, "linear-exact"))))
    expected = np.rint(np.clip(((hu - 40) / 400 + 0.5) * 255, 0, 255))
    assert_close(exact, expected)
    sigmoid = np.asarray(decode(render_frame(ds, media_type="image/png", window=(40, 400, "sigmoid"))))
    assert_close(sigmoid, np.rint(255 / (1 + np.exp(-4 * (hu - 40) / 400))))
    with pytest.raises(ValueError):
        render_frame(ds, window=(40, 0))
    with pytest.raises(ValueError):
        render_frame(ds, window=(40, 400, "gamma"))


def test_ct_jpeg_output_and_viewport() -> None:
    ds = load(CT)
    data = render_frame(ds, quality=95)
    assert data[:3] == b"\xff\xd8\xff"
    jpeg = np.asarray(decode(data)).astype(np.float64)
    png = np.asarray(decode(render_frame(ds, media_type="image/png"))).astype(np.float64)
    assert abs(jpeg.mean() - png.mean()) < 1.0
    assert decode(render_frame(ds, viewport=(256, 100))).size == (100, 100)
    assert decode(render_frame(ds, viewport=(1024, 2048))).size == (1024, 1024)
    assert decode(render_frame(ds, media_type="image/gif")).format == "GIF"


def test_signed_16_bit_mr() -> None:
    ds = load(MR_SIGNED)
    assert ds.PixelRepresentation == 1
    arr = pixel_array(ds)
    assert arr.dtype == np.int16
    out = np.asarray(decode(render_frame(ds, media_type="image/png")))
    assert_close(out, linear_window(arr, 600.0, 1600.0))


def test_monochrome1_is_inverted() -> None:
    ds = load(CR_MONO1)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    stored = pixel_array(ds)
    out = np.asarray(decode(render_frame(ds, media_type="image/png")))
    assert_close(out, 255 - linear_window(stored, 550.0, 1024.0))
    # the collimated border stores 0 = "white" in MONOCHROME1
    assert stored[:50, :50].max() == 0
    assert out[:50, :50].min() == 255


def test_dx_without_window_uses_window_not_lut() -> None:
    ds = load(DX)
    assert "VOILUTSequence" in ds
    out = np.asarray(decode(render_frame(ds, media_type="image/png")))
    assert_close(out, linear_window(pixel_array(ds), 5435.0, 3453.0))


def test_voi_lut_sequence_when_no_window() -> None:
    ds = load(DX)
    del ds.WindowCenter
    del ds.WindowWidth
    assert window_for(ds) is None
    out = np.asarray(decode(render_frame(ds, media_type="image/png")))
    item = ds.VOILUTSequence[0]
    entries, first, _bits = item.LUTDescriptor
    lut = np.asarray(item.LUTData, dtype=np.float64)
    index = np.clip(pixel_array(ds).astype(np.int64) - first, 0, entries - 1)
    expected = np.rint((lut[index] - lut.min()) / (lut.max() - lut.min()) * 255)
    assert_close(out, expected)


def test_min_max_when_no_voi() -> None:
    ds = load(MR_SIGNED)
    del ds.WindowCenter
    del ds.WindowWidth
    arr = pixel_array(ds).astype(np.float64)
    out = np.asarray(decode(render_frame(ds, media_type="image/png")))
    expected = np.rint((arr - arr.min()) / (arr.max() - arr.min()) * 255)
    assert_close(out, expected)


def test_enhanced_mr_window_from_functional_groups() -> None:
    path = next(iter(sorted((DATA / "mr_siemens_xa30_enhanced_study/25_asl_2d_tra").iterdir())))
    ds = pydicom.dcmread(path)
    assert "WindowCenter" not in ds
    assert window_for(ds, 2) is not None
    assert decode(render_frame(ds, 2, media_type="image/png")).size == (ds.Columns, ds.Rows)


# --- colour ------------------------------------------------------------------------


def test_palette_colour_yields_rgb() -> None:
    ds = load(US_PALETTE)
    out = np.asarray(decode(render_frame(ds, 3, media_type="image/png")))
    assert out.shape == (430, 600, 3)
    expected = apply_color_lut(pixel_array(ds, index=2), ds)[..., :3]
    assert expected.dtype == np.uint16  # 16-bit LUT entries: keep the high byte
    assert np.array_equal(out, (expected >> 8).astype(np.uint8))
    assert (out[..., 0] != out[..., 2]).any()  # really colour, not grey


def test_rgb_big_endian() -> None:
    ds = load(US_RGB_BE)
    out = decode(render_frame(ds, media_type="image/png"))
    assert out.mode == "RGB"
    assert np.array_equal(np.asarray(out), pixel_array(ds))


def test_ybr_jpeg_rendered_as_rgb() -> None:
    ds = load("misc_syntax_and_iods/SC_rgb_jpeg_dcmtk.dcm")
    assert ds.PhotometricInterpretation == "YBR_FULL"
    out = decode(render_frame(ds, media_type="image/png"))
    assert out.mode == "RGB"
    assert np.array_equal(np.asarray(out), pixel_array(ds))  # pydicom converts to RGB


# --- frames, thumbnails, errors ---------------------------------------------------


def test_multiframe_selection() -> None:
    ds = load(NM)
    first = render_frame(ds, 1, media_type="image/png")
    second = render_frame(ds, 2, media_type="image/png")
    assert first != second
    for bad in (0, 14):
        with pytest.raises(NotFound, match="13 frames"):
            render_frame(ds, bad)


def test_thumbnail_fits_and_keeps_aspect() -> None:
    ds = load(DX)
    width, height = ds.Columns, ds.Rows  # 2021 x 505
    out = decode(thumbnail(ds))
    assert out.format == "JPEG"
    assert max(out.size) == 128
    assert out.size == (128, round(128 * height / width))


def test_thumbnail_uses_middle_frame_without_upscaling() -> None:
    ds = load(NM)
    out = thumbnail(ds, media_type="image/png")
    assert decode(out).size == (64, 64)
    assert out == render_frame(ds, 7, media_type="image/png")


@pytest.mark.filterwarnings("ignore:Invalid value for VR IS")
@pytest.mark.parametrize(
    "rel",
    [
        "edge_cases/JPEG2000-embedded-sequence-delimiter.dcm",
        "edge_cases/MR1_JPLY_invalid_SOS",
        "edge_cases/MR_truncated.dcm",
        "edge_cases/badVR.dcm",
    ],
)
def test_broken_pixel_data_raises_cannot_decode(rel: str) -> None:
    ds = load(rel)
    with pytest.raises(CannotDecode):
        render_frame(ds)
    with pytest.raises(CannotDecode):
        thumbnail(ds)


def test_cannot_decode_message_names_transfer_syntax() -> None:
    with pytest.raises(CannotDecode, match=r"^cannot decode pixel data \(JPEG Extended"):
        render_frame(load("edge_cases/MR1_JPLY_invalid_SOS"))


def test_no_pixel_data() -> None:
    ds = load("edge_cases/UN_sequence.dcm")
    with pytest.raises(CannotDecode, match="instance has no pixel data"):
        render_frame(ds)
    with pytest.raises(CannotDecode, match="instance has no pixel data"):
        thumbnail(ds)


def test_unsupported_media_type() -> None:
    ds = load(NM)
    with pytest.raises(NotAcceptable):
        render_frame(ds, media_type="image/jp2")
    with pytest.raises(NotAcceptable):
        thumbnail(ds, media_type="video/mp4")
