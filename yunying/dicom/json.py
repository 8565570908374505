"""DICOM JSON (PS3.18 Annex F) for QIDO results and WADO-RS metadata."""

from __future__ import annotations

from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag

# Attributes kept per level in the index rows (PS3.4 C.6.1.1, PS3.18 Table 6.7.1-2 and the
# Patient / General Study / Patient Study / General Series modules of PS3.3).
LEVEL_KEYWORDS: dict[str, tuple[str, ...]] = {
    "PATIENT": (
        "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientBirthTime",
        "PatientSex", "OtherPatientNames", "EthnicGroup", "PatientComments",
    ),
    "STUDY": (
        "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName",
        "StudyID", "StudyDescription", "PatientAge", "PatientSize", "PatientWeight",
        "InstitutionName", "TimezoneOffsetFromUTC", "AdmittingDiagnosesDescription",
    ),
    "SERIES": (
        "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "BodyPartExamined",
        "SeriesDate", "SeriesTime", "Laterality", "ProtocolName", "Manufacturer",
        "ManufacturerModelName", "StationName", "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime", "FrameOfReferenceUID", "OperatorsName",
    ),
}

BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
BULK_THRESHOLD = 1024


def level_attrs(ds: Dataset, level: str) -> dict[str, Any]:
    """DICOM JSON of the ``level`` attributes present in ``ds`` (plus its character set)."""
    sub = Dataset()
    for keyword in LEVEL_KEYWORDS[level]:
        tag = tag_for_keyword(keyword)
        if tag is not None and tag in ds:
            sub[tag] = ds[tag]
    if not len(sub):
        return {}
    result: dict[str, Any] = sub.to_json_dict(bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=None)
    return result


def tag_hex(tag: int) -> str:
    return f"{int(Tag(tag)):08X}"


def metadata_json(ds: Dataset, bulk_base_url: str) -> dict[str, Any]:
    """Full DICOM JSON of an instance without its bulk data.

    Top-level binary elements larger than 1 KiB (Pixel Data, waveforms, ...) become
    ``BulkDataURI`` references to ``{bulk_base_url}/{tag}``.
    """
    shallow = Dataset()
    bulk: dict[str, dict[str, Any]] = {}
    for elem in ds:
        is_big_binary = elem.VR in BULK_VRS and (elem.tag == 0x7FE00010 or _length(elem) > BULK_THRESHOLD)
        if is_big_binary:
            key = tag_hex(elem.tag)
            bulk[key] = {"vr": elem.VR if elem.VR != "OB or OW" else "OW", "BulkDataURI": f"{bulk_base_url}/{key}"}
        else:
            shallow.add(elem)
    shallow.set_original_encoding(*_encoding_of(ds))
    if "SpecificCharacterSet" in ds:
        shallow.SpecificCharacterSet = ds.SpecificCharacterSet
    result: dict[str, Any] = shallow.to_json_dict(bulk_data_threshold=10**9, bulk_data_element_handler=None)
    result.update(bulk)
    return dict(sorted(result.items()))


def _length(elem: Any) -> int:
    try:
        return len(elem.value) if elem.value is not None else 0
    except TypeError:
        return 0


def _encoding_of(ds: Dataset) -> tuple[bool | None, bool | None, Any]:
    return (ds.is_implicit_VR if hasattr(ds, "is_implicit_VR") else None,
            ds.is_little_endian if hasattr(ds, "is_little_endian") else None,
            getattr(ds, "_character_set", None))
