"""De-identification checked attribute by attribute against PS3.15 Table E.1-1, on real data.

Real files (an enhanced multi-frame MR study with private tags and nested sequences, a Chinese name in
UTF-8, a nested SR, a SEG referencing its CT) get sentinel identifiers planted at the top level and deep
in sequences; after de-identification every attribute is checked against the table's action, no
sentinel is left anywhere (values or raw bytes), UIDs are replaced consistently within one context and
differently in another, and the pixel data bytes are unchanged.
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.support.data import SHARED
from yunying.deid import Deidentifier, for_principal, is_anonymous
from yunying.deid.profile import DUMMY, MASK, BurnedInAnnotation
from yunying.deid.table import BASIC_PROFILE, action_for
from yunying.dicom.json import metadata_json
from yunying.settings import Settings
from yunying.storage.memory import MemoryBlobStore

NAME, PATIENT_ID, HOSPITAL, ACCESSION = "Sentinelname^Xiaoming=哨兵^小明", "SENTINEL-PID-4711", "Sentinel Hospital", "ACC-SENT-99"
SENTINELS = ("Sentinelname", "SENTINEL-PID-4711", "哨兵", "Sentinel Hospital", "ACC-SENT-99", "19710304")
MR = SHARED / "mr_siemens_xa30_enhanced_study"
FILES = [*sorted(p for p in MR.rglob("*") if p.is_file())[:4], SHARED / "charset" / "chrX1.dcm",
         SHARED / "seg_sr" / "test-SR_dcmtk_nested.dcm", SHARED / "seg_sr" / "liver_seg.dcm"]


def planted(path: Path) -> Dataset:
    """The real file with sentinel identifiers at the top level, in kept text, and inside sequences."""
    ds = dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName, ds.PatientID, ds.InstitutionName, ds.AccessionNumber = NAME, PATIENT_ID, HOSPITAL, ACCESSION
    ds.PatientBirthDate = "19710304"
    ds.OtherPatientIDs = ["OTHER-SENTINEL-1", PATIENT_ID]
    ds.ImageComments = f"patient {PATIENT_ID}"  # X
    ds.ContrastBolusRoute = f"IV, asked Sentinelname Xiaoming ({PATIENT_ID})"  # kept (not in the table): masked
    ds.add_new(0x00291010, "LO", "private sentinel " + PATIENT_ID)  # private: removed
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-D0050", "SRT", f"{HOSPITAL} tissue"
    item.PatientName = NAME  # nowhere is safe
    nested = Dataset()
    nested.ReferencedSOPClassUID = ds.SOPClassUID
    nested.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    item.ReferencedImageSequence = Sequence([nested])
    ds.AnatomicRegionSequence = Sequence([item])
    return ds


def walk(ds: Dataset) -> list[Any]:
    return list(ds.iterall())


def check_against_table(ds: Dataset) -> None:
    for elem in walk(ds):
        tag = int(elem.tag)
        assert not (elem.tag.group & 1), f"private attribute {elem.tag} left"
        action = action_for(tag)
        assert action != "X" or tag in (0x00120063, 0x00120064), f"{elem.tag} {elem.keyword} should be removed"
        if tag == 0x00100020:
            assert str(elem.value).startswith("ANON-")  # Z with a dummy: a pseudonym
        elif action == "Z" and elem.VR != "SQ":
            assert elem.value in (None, "", b""), f"{elem.keyword} should be empty"
        elif action == "Z":
            assert len(elem.value) == 0
        elif action == "D" and elem.VR not in ("SQ", "UI"):
            assert elem.value == DUMMY.get(elem.VR, elem.value) or str(elem.value) == str(DUMMY.get(elem.VR)), elem.keyword
        elif action == "U" and elem.VR == "UI" and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            assert all(str(v).startswith("2.25.") for v in values), elem.keyword


def test_basic_profile_attribute_by_attribute() -> None:
    assert len(BASIC_PROFILE) > 400 and BASIC_PROFILE[0x00100010] == ("Z", "Patient's Name")
    share = Deidentifier.for_context(b"k" * 32, "share:1")
    other = Deidentifier.for_context(b"k" * 32, "share:2")
    study_uids: set[str] = set()
    for path in FILES:
        original = planted(path)
        before = {int(e.tag): e.value for e in original if e.VR == "UI"}
        raw = BytesIO()
        original.save_as(raw, enforce_file_format=True)
        produced = share.file(raw.getvalue())
        ds = dcmread(BytesIO(produced))
        check_against_table(ds)
        text = " ".join(str(e.value) for e in walk(ds) if e.VR not in ("OB", "OW", "SQ", "UN"))
        for sentinel in SENTINELS:
            assert sentinel not in text and sentinel.encode() not in produced, (path.name, sentinel)
        assert MASK in ds.ContrastBolusRoute and "IV" in ds.ContrastBolusRoute  # kept text, identifiers masked
        assert ds.PatientIdentityRemoved == "YES" and ds.LongitudinalTemporalInformationModified == "REMOVED"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.SOPClassUID == original.SOPClassUID  # a standard UID identifies nobody: kept
        assert ds.SOPInstanceUID == share.uid(before[0x00080018]) == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.SOPInstanceUID != other.uid(before[0x00080018])
        ref = ds.AnatomicRegionSequence[0].ReferencedImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == ds.SOPInstanceUID  # the same UID, the same replacement, anywhere
        assert "PatientName" in ds.AnatomicRegionSequence[0] and not ds.AnatomicRegionSequence[0].PatientName
        if "PixelData" in original:
            assert ds.PixelData == original.PixelData  # pixels untouched, byte for byte
        if MR in path.parents:
            study_uids.add(ds.StudyInstanceUID)
    assert len(study_uids) == 1 and next(iter(study_uids)) == share.uid(dcmread(FILES[0]).StudyInstanceUID)


def test_burned_in_annotation_is_refused() -> None:
    ds = dcmread(SHARED / "charset" / "chrX1.dcm")
    ds.BurnedInAnnotation = "YES"
    raw = BytesIO()
    ds.save_as(raw, enforce_file_format=True)
    deid = Deidentifier.for_context(b"k" * 32, "share:1")
    with pytest.raises(BurnedInAnnotation):
        deid.file(raw.getvalue())
    with pytest.raises(BurnedInAnnotation):
        deid.metadata(metadata_json(ds, "http://x/bulk"))


def test_metadata_json_and_text() -> None:
    deid = Deidentifier.for_context(b"k" * 32, "share:1")
    ds = planted(FILES[0])
    base = f"http://x/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/bulkdata"
    item = metadata_json(ds, base)
    out = deid.metadata(item)
    dumped = json.dumps(out, ensure_ascii=False)
    for sentinel in SENTINELS:
        assert sentinel not in dumped, sentinel
    for original in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert original not in dumped  # also not in BulkDataURIs
    assert out["0020000D"]["Value"] == [deid.uid(ds.StudyInstanceUID)]
    assert out["00100020"]["Value"][0].startswith("ANON-") and "Value" not in out["00100010"]
    assert out["00120062"]["Value"] == ["YES"] and "00291010" not in out
    for key in out:
        assert action_for(int(key, 16)) != "X" or key in ("00120063", "00120064"), key
    # the same item de-identified by the dataset path and the JSON path agrees on UIDs and the pseudonym
    assert out["00100020"]["Value"][0] == deid.pseudonym(PATIENT_ID)
    report = "张三 (ID SENTINEL-PID-4711) seen by Dr Li; Sentinelname Xiaoming follow-up"
    masked = deid.text(report, [NAME, PATIENT_ID])
    assert "SENTINEL-PID-4711" not in masked and "Sentinelname" not in masked and "哨兵" not in masked
    assert masked.startswith("张三") and "follow-up" in masked


def test_for_principal() -> None:
    from yunying.auth.access import Principal, Role

    blobs = MemoryBlobStore()
    settings = Settings()
    doctor = Principal(1, "dr", frozenset({Role.CLINICIAN}), 1, "token:t")
    visitor = Principal(None, "share-7", frozenset(), None, "share:7", extra={"share": "7", "anonymous": "1"})
    named = Principal(None, "share-8", frozenset(), None, "share:8", extra={"share": "8", "anonymous": "0"})
    assert for_principal(doctor, settings, blobs) is None and for_principal(named, settings, blobs) is None
    assert is_anonymous(visitor)
    first = for_principal(visitor, settings, blobs)
    again = for_principal(visitor, settings, MemoryBlobStore())  # another node: another (empty) store → another key
    assert first is not None and again is not None
    assert first.uid("1.2.3") == for_principal(visitor, settings, blobs).uid("1.2.3")  # type: ignore[union-attr]
    assert first.uid("1.2.3") != again.uid("1.2.3")  # the key is the store's: shared by the nodes of one archive
    configured = Settings(deid_key="ab" * 32)
    assert for_principal(visitor, configured, blobs).uid("1.2.3") == for_principal(  # type: ignore[union-attr]
        visitor, configured, MemoryBlobStore()).uid("1.2.3")  # type: ignore[union-attr]
