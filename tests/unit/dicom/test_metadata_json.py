"""WADO-RS metadata JSON of real instances with malformed private elements: one bad element must not fail the
whole instance (GE's (0043,1080) 'Coil ID Data' is DS in the dictionary but holds text)."""

from __future__ import annotations

import base64
from pathlib import Path

import pydicom
import pytest

from yunying.dicom.json import metadata_json

GE_MR = Path(__file__).resolve().parents[4] / "shared" / "dicom" / "mr_brain_ge_pioneer_study"


def _first_ge_file() -> Path:
    files = sorted(p for p in GE_MR.rglob("*") if p.is_file() and p.suffix != ".md")
    if not files:
        pytest.fail(f"shared test data missing: {GE_MR}")
    return files[0]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ge_private_element_goes_out_as_un_and_the_rest_is_kept() -> None:
    ds = pydicom.dcmread(_first_ge_file())
    assert (0x0043, 0x1080) in ds
    result = metadata_json(ds, "http://x/bulk")
    coil = result["00431080"]
    assert coil["vr"] == "UN"
    assert base64.b64decode(coil["InlineBinary"]).startswith(b"P1:\\GEHC")
    assert result["0020000D"]["Value"] == [ds.StudyInstanceUID]
    assert result["7FE00010"]["BulkDataURI"] == "http://x/bulk/7FE00010"
    assert len(result) > 200  # every other element is there


def test_well_formed_elements_are_unchanged() -> None:
    ds = pydicom.Dataset()
    ds.PatientName = "Wang^XiaoDong=王^小東"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SliceThickness = "1.5"
    ds.ImagePositionPatient = [1, 2.5, -3]
    result = metadata_json(ds, "http://x")
    assert result["00180050"] == {"vr": "DS", "Value": [1.5]}
    assert result["00200032"]["Value"] == [1, 2.5, -3]
    assert result["00100010"]["Value"][0]["Ideographic"] == "王^小東"
