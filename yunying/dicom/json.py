"""DICOM JSON (PS3.18 Annex F) for QIDO results and WADO-RS metadata."""

from __future__ import annotations

import base64
import logging
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

_log = logging.getLogger(__name__)

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
    result = _json_per_element(shallow)
    result.update(bulk)
    return dict(sorted(result.items()))


def _raw_bytes(value: Any) -> bytes | None:
    """The element's value as it was encoded (text values joined by backslashes), when it can be had."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value).encode("utf-8")
    return None


def _json_per_element(shallow: Dataset) -> dict[str, Any]:
    """``shallow.to_json_dict()``, one element at a time, so that one malformed element (a private tag whose
    dictionary VR does not fit its value, e.g. GE's (0043,1080) as DS holding text) does not fail the whole
    instance: it goes out as UN with its value's bytes (PS3.18 F.2.7), or is left out when they cannot be had."""
    result: dict[str, Any] = {}
    for elem in shallow:
        key = tag_hex(elem.tag)
        try:
            result[key] = elem.to_json_dict(bulk_data_element_handler=None, bulk_data_threshold=10**9)
        except (ValueError, TypeError, OverflowError, AttributeError, KeyError):
            raw = _raw_bytes(elem.value)
            if raw is not None:
                result[key] = {"vr": "UN", "InlineBinary": base64.b64encode(raw).decode("ascii")}
            else:
                _log.warning("metadata: element %s left out (not representable in DICOM JSON)", key)
    return result


def _length(elem: Any) -> int:
    try:
        return len(elem.value) if elem.value is not None else 0
    except TypeError:
        return 0


def _encoding_of(ds: Dataset) -> tuple[bool | None, bool | None, Any]:
    return (ds.is_implicit_VR if hasattr(ds, "is_implicit_VR") else None,
            ds.is_little_endian if hasattr(ds, "is_little_endian") else None,
            getattr(ds, "_character_set", None))
