"""Lossless compression before upload (GW-5) on real files from /work/shared/dicom and a synthetic 12-bit CT."""

from __future__ import annotations

import logging
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, generate_uid

from yunying.gateway import compress
from yunying.gateway.compress import (
    Codec,
    CodecChooser,
    Compressed,
    ImageKind,
    Measurement,
    choose,
    compress_lossless,
)

DATA = Path("/work/shared/dicom")
MAKE_CT = Path("/work/shared/peers/make_ct_series.py")
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared DICOM test data not available")

CT = "ct_abdomen_pancreas_tcia/1-001.dcm"  # real CT, Implicit VR LE
MR = "transfer_syntax_matrix_siemens_mr/1.dcm"  # real MR, Explicit VR LE
MR_SIGNED = "mr_brain_ge_pioneer_study/01_Ax_DWI_TENSOR_R2/i22.MRDC.1"  # signed 16-bit
US_RGB = "edge_cases/US-RGB-8-epicard_bigendian"  # colour ultrasound, Explicit VR Big Endian
NM_MULTIFRAME = "multiframe_us_nm_xa/NM-MONO2-16-13x-heart"  # 13 frames
TARGET = {Codec.JPEG_LS: JPEGLSLossless, Codec.JPEG_2000: JPEG2000Lossless}


def read(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


def parse(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(data))


def assert_lossless(original: bytes, result: Compressed) -> None:
    before, after = parse(original), parse(result.data)
    assert np.array_equal(before.pixel_array, after.pixel_array)
    assert after.SOPInstanceUID == before.SOPInstanceUID
    assert after.file_meta.MediaStorageSOPInstanceUID == before.SOPInstanceUID
    assert after.file_meta.TransferSyntaxUID == result.transfer_syntax
    assert result.original_size == len(original)
    assert result.saved_bytes == len(original) - len(result.data) > 0


@pytest.mark.parametrize("codec", [Codec.JPEG_LS, Codec.JPEG_2000])
@pytest.mark.parametrize("rel", [CT, MR, MR_SIGNED, US_RGB, NM_MULTIFRAME])
def test_native_pixels_compress_losslessly(rel: str, codec: Codec) -> None:
    data = read(rel)
    result = compress_lossless(data, codec)
    assert result.codec is codec
    assert result.transfer_syntax == TARGET[codec]
    assert_lossless(data, result)


@pytest.mark.parametrize("rel", [CT, MR])
def test_ct_and_mr_get_smaller(rel: str) -> None:
    data = read(rel)
    result = compress_lossless(data, Codec.AUTO, CodecChooser())
    assert len(data) / len(result.data) > 1.5
    assert_lossless(data, result)


@pytest.mark.parametrize("rel", [
    "nema_wg04_compression/JLSL/CT1_JLSL",  # already JPEG-LS
    "transfer_syntax_matrix_siemens_mr/9.dcm",  # already JPEG 2000 lossless
    "nema_wg04_compression/RLE/US1_RLE",  # RLE colour
    "nema_wg04_compression/J2KI/CT1_J2KI",  # lossy JPEG 2000
    "nema_wg04_compression/JLSN/CT1_JLSN",  # lossy (near-lossless) JPEG-LS
    "misc_syntax_and_iods/SC_rgb_jpeg_dcmtk.dcm",  # lossy JPEG baseline
    "seg_sr/test-SR_dcmtk_nested.dcm",  # SR: no pixels
    "seg_sr/report_dfl_enhanced_sr_deflate",  # SR in Deflated Explicit VR LE
    "waveform_ecg/anonymous_ecg_12lead_mortara.dcm",  # waveform: no pixels
    "seg_sr/liver_seg.dcm",  # 1-bit SEG: neither codec takes it
    "edge_cases/MR_truncated.dcm",  # pixel data cut short: cannot decode
])
@pytest.mark.parametrize("codec", [Codec.JPEG_LS, Codec.JPEG_2000, Codec.AUTO])
def test_what_cannot_be_compressed_losslessly_goes_as_received(rel: str, codec: Codec) -> None:
    data = read(rel)
    result = compress_lossless(data, codec, CodecChooser())
    assert result.codec is Codec.NONE
    assert result.data is data
    assert result.transfer_syntax == parse(data).file_meta.TransferSyntaxUID
    assert result.saved_bytes == 0


def test_encapsulated_pdf_goes_as_received() -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = EncapsulatedPDFStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.MIMETypeOfEncapsulatedDocument = "DOC", "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n" + b"0" * 4000 + b"\n%%EOF\n"
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    assert compress_lossless(data, Codec.AUTO).data is data


def test_codec_none_sends_as_received() -> None:
    data = read(CT)
    result = compress_lossless(data, Codec.NONE)
    assert (result.data, result.codec, result.saved_bytes) == (data, Codec.NONE, 0)


def test_compressing_twice_changes_nothing_more() -> None:
    once = compress_lossless(read(MR), Codec.JPEG_LS)
    again = compress_lossless(once.data, Codec.JPEG_LS)
    assert again.data is once.data and again.codec is Codec.NONE


@pytest.mark.parametrize("data", [b"", b"not dicom at all" * 20, b"\0" * 128 + b"DICM" + b"\xff" * 7])
def test_bytes_that_are_not_part10_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a DICOM Part 10 file"):
        compress_lossless(data, Codec.AUTO)


def test_file_without_meta_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not a DICOM Part 10 file"):
        compress_lossless(read("edge_cases/no_meta.dcm"), Codec.JPEG_LS)


def test_auto_measures_each_kind_once_and_reports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Codec] = []
    real = compress._try_transcode

    def counting(data: bytes, source_ts: str, codec: Codec) -> bytes | None:
        calls.append(codec)
        return real(data, source_ts, codec)

    monkeypatch.setattr(compress, "_try_transcode", counting)
    chooser = CodecChooser()
    first = compress_lossless(read(CT), Codec.AUTO, chooser)
    assert sorted(calls) == sorted([Codec.JPEG_LS, Codec.JPEG_2000])  # the first CT is measured with both
    second_data = read("ct_abdomen_pancreas_tcia/1-002.dcm")
    second = compress_lossless(second_data, Codec.AUTO, chooser)
    assert calls[2:] == [first.codec]  # the next CT of the same kind uses the remembered choice only
    assert second.codec is first.codec
    assert_lossless(second_data, second)

    compress_lossless(read(MR), Codec.AUTO, chooser)
    report = chooser.choices()
    assert set(report) == {"CT 512x512 16-bit 1spp", "MR 384x384 16-bit 1spp"}
    ct = report["CT 512x512 16-bit 1spp"]
    assert ct["codec"] == str(first.codec)
    assert ct["ratio"] > 2 and ct["mb_per_s"] > 0
    assert set(ct["candidates"]) == {"jpeg-ls", "jpeg-2000"}
    assert chooser.choice_for(ImageKind("CT", 512, 512, 16, 1)) is first.codec


def test_kind_that_no_codec_can_take_is_not_remembered() -> None:
    chooser = CodecChooser()
    compress_lossless(read("seg_sr/liver_seg.dcm"), Codec.AUTO, chooser)
    assert chooser.choices() == {}


def test_choose_prefers_smallest_within_the_slowdown_bound() -> None:
    ls = Measurement(Codec.JPEG_LS, 1000, 400, seconds=0.010)
    j2k_smaller_but_slow = Measurement(Codec.JPEG_2000, 1000, 380, seconds=0.040)
    j2k_smaller_and_ok = Measurement(Codec.JPEG_2000, 1000, 380, seconds=0.025)
    assert choose([ls, j2k_smaller_but_slow], max_slowdown=3.0) is ls
    assert choose([ls, j2k_smaller_and_ok], max_slowdown=3.0) is j2k_smaller_and_ok
    assert choose([ls, j2k_smaller_but_slow], max_slowdown=5.0) is j2k_smaller_but_slow


def test_chooser_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CodecChooser(max_slowdown=0.5)
    with pytest.raises(ValueError):
        CodecChooser(candidates=(Codec.NONE,))


def test_synthetic_12bit_ct_halves_in_size(tmp_path: Path) -> None:
    if not MAKE_CT.is_file():
        pytest.skip("make_ct_series.py not available")
    subprocess.run([sys.executable, str(MAKE_CT), str(tmp_path), "--slices", "2"], check=True, capture_output=True)
    files = sorted(tmp_path.glob("*.dcm"))
    assert len(files) == 2
    chooser = CodecChooser()
    before = after = 0
    for path in files:
        data = path.read_bytes()
        result = compress_lossless(data, Codec.AUTO, chooser)
        assert_lossless(data, result)
        before, after = before + len(data), after + len(result.data)
    assert after <= 0.5 * before


def test_patient_identifiers_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    data = read(CT)
    ds = parse(data)
    with caplog.at_level(logging.DEBUG):
        compress_lossless(data, Codec.AUTO, CodecChooser())
        compress_lossless(read("edge_cases/MR_truncated.dcm"), Codec.JPEG_LS)
    assert caplog.records  # the choice is logged ...
    assert str(ds.PatientID) not in caplog.text  # ... without who it was for
    assert str(ds.PatientName) not in caplog.text


def test_chooser_remembers_the_choice_per_kind() -> None:
    # Never call the codecs from several threads of one process: the native libraries are not safe for it
    # (a segmentation fault, reproduced); the gateway compresses in worker processes (test_preparation.py).
    chooser = CodecChooser()
    results = [compress_lossless(read(f"ct_abdomen_pancreas_tcia/1-{n:03d}.dcm"), Codec.AUTO, chooser) for n in range(10, 13)]
    assert len(chooser.choices()) == 1
    assert all(r.codec in (Codec.JPEG_LS, Codec.JPEG_2000) for r in results)
    remembered = chooser.choice_for(ImageKind("CT", 512, 512, 16, 1))
    assert results[-1].codec is remembered
