"""Frame extraction (WADO-RS /frames) against real files from /work/shared/dicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.pixels import pixel_array
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
)

from yunying.dicom.frames import frame_count, get_frames
from yunying.errors import CannotDecode, NotAcceptable, NotFound

DATA = Path("/work/shared/dicom")
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared DICOM test data not available")
MATRIX = "transfer_syntax_matrix_siemens_mr"
XA = "multiframe_us_nm_xa/HasFragmentSequence.dcm"
NM = "multiframe_us_nm_xa/NM-MONO2-16-13x-heart"


def load(rel: str) -> pydicom.Dataset:
    return pydicom.dcmread(DATA / rel)


@pytest.mark.parametrize("name", [f"{n}.dcm" for n in range(1, 10)])
def test_transfer_syntax_matrix_decodes_identically(name: str) -> None:
    reference = load(f"{MATRIX}/1.dcm").PixelData
    frames, uid = get_frames(load(f"{MATRIX}/{name}"), [1], transfer_syntax=ExplicitVRLittleEndian)
    assert uid == ExplicitVRLittleEndian
    assert frames == [reference]


def test_jpeg_ls_as_stored_is_original_codestream() -> None:
    ds = load(f"{MATRIX}/7.dcm")
    frames, uid = get_frames(ds, [1], transfer_syntax=None)
    assert uid == JPEGLSLossless
    assert frames[0][:4] == b"\xff\xd8\xff\xf7"
    assert frames[0] == get_frame(ds.PixelData, 0, number_of_frames=1)
    assert get_frames(ds, [1], transfer_syntax="*") == (frames, JPEGLSLossless)
    assert get_frames(ds, [1], transfer_syntax=JPEGLSLossless) == (frames, JPEGLSLossless)


def test_native_ct_frame_is_pixel_data() -> None:
    ds = load("ct_abdomen_pancreas_tcia/1-001.dcm")
    assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert frame_count(ds) == 1
    for requested in (None, "*", ExplicitVRLittleEndian):
        assert get_frames(ds, [1], transfer_syntax=requested) == ([ds.PixelData], ExplicitVRLittleEndian)
    assert get_frames(ds, [1], transfer_syntax=ImplicitVRLittleEndian) == (
        [ds.PixelData],
        ImplicitVRLittleEndian,
    )


def test_big_endian_converted_to_little_endian() -> None:
    big = load("edge_cases/MR_small_bigendian.dcm")
    little = load("edge_cases/MR_small_implicit.dcm")
    assert get_frames(big, [1], transfer_syntax=ExplicitVRLittleEndian) == (
        [little.PixelData],
        ExplicitVRLittleEndian,
    )
    assert get_frames(big, [1], transfer_syntax=None) == ([little.PixelData], ExplicitVRLittleEndian)
    as_stored, uid = get_frames(big, [1], transfer_syntax=ExplicitVRBigEndian)
    assert (as_stored, uid) == ([big.PixelData], ExplicitVRBigEndian)
    assert as_stored != [little.PixelData]


def test_big_endian_8_bit_rgb_unchanged() -> None:
    ds = load("edge_cases/US-RGB-8-epicard_bigendian")
    assert ds.PlanarConfiguration == 1  # native frames keep the stored layout
    frames, uid = get_frames(ds, [1], transfer_syntax=ExplicitVRLittleEndian)
    assert uid == ExplicitVRLittleEndian
    assert frames == [ds.PixelData]
    planes = np.frombuffer(frames[0], dtype=np.uint8).reshape(3, 480, 640)
    assert np.array_equal(np.moveaxis(planes, 0, -1), pixel_array(ds))


def test_xa_multi_frame_jpeg_frame_5() -> None:
    ds = load(XA)
    assert frame_count(ds) == 96
    frames, uid = get_frames(ds, [5], transfer_syntax=None)
    assert uid == JPEGBaseline8Bit
    assert frames[0][:2] == b"\xff\xd8"
    assert frames[0] == get_frame(ds.PixelData, 4, number_of_frames=96)
    several, _ = get_frames(ds, [96, 5, 1, 5], transfer_syntax=None)
    assert several[1] == several[3] == frames[0]
    assert several[0] == get_frame(ds.PixelData, 95, number_of_frames=96)
    assert several[0] != several[2]


def test_xa_frame_decoded_to_little_endian() -> None:
    ds = load(XA)
    frames, uid = get_frames(ds, [5], transfer_syntax=ExplicitVRLittleEndian)
    assert uid == ExplicitVRLittleEndian
    assert frames[0] == pixel_array(ds, index=4).tobytes()
    assert len(frames[0]) == 512 * 512


def test_rle_palette_frames_decoded() -> None:
    ds = load("multiframe_us_nm_xa/US-PAL-8-10x-echo")
    frames, _ = get_frames(ds, [3, 10], transfer_syntax=ExplicitVRLittleEndian)
    assert frames == [pixel_array(ds, index=2).tobytes(), pixel_array(ds, index=9).tobytes()]


def test_native_multi_frame_slicing_and_range() -> None:
    ds = load(NM)
    size = 64 * 64 * 2
    frames, _ = get_frames(ds, [1, 13, 2], transfer_syntax=None)
    assert frames == [ds.PixelData[:size], ds.PixelData[12 * size : 13 * size], ds.PixelData[size : 2 * size]]
    for bad in (0, 14):
        with pytest.raises(NotFound, match="13 frames"):
            get_frames(ds, [1, bad], transfer_syntax=None)


def test_other_transfer_syntaxes_not_acceptable() -> None:
    with pytest.raises(NotAcceptable):
        get_frames(load(NM), [1], transfer_syntax=JPEG2000Lossless)
    with pytest.raises(NotAcceptable):
        get_frames(load(XA), [1], transfer_syntax=ImplicitVRLittleEndian)


def test_packed_one_bit_frames() -> None:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 3, 3, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = 3
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, size=27, dtype=np.uint8)
    ds.PixelData = np.packbits(bits, bitorder="little").tobytes()  # 27 bits, frames not byte-aligned
    frames, _ = get_frames(ds, [1, 2, 3], transfer_syntax=None)
    for number, frame in enumerate(frames):
        assert len(frame) == 2
        unpacked = np.unpackbits(np.frombuffer(frame, dtype=np.uint8), bitorder="little")[:9]
        assert np.array_equal(unpacked, bits[number * 9 : number * 9 + 9])


def test_seg_one_bit_frames() -> None:
    ds = load("seg_sr/liver_seg.dcm")
    frames, _ = get_frames(ds, [2], transfer_syntax=None)
    size = 512 * 512 // 8
    assert frames == [ds.PixelData[size : 2 * size]]


def test_truncated_and_missing_pixel_data() -> None:
    with pytest.raises(CannotDecode, match="Explicit VR Little Endian"):
        get_frames(load("edge_cases/MR_truncated.dcm"), [1], transfer_syntax=None)
    empty = load("edge_cases/UN_sequence.dcm")
    assert frame_count(empty) == 0
    with pytest.raises(NotFound):
        get_frames(empty, [1], transfer_syntax=None)
