"""Turn received bytes into a validated instance description, or say precisely why not."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from yunying.dicom.json import level_attrs
from yunying.dicom.names import normalize_pn
from yunying.dicom.uids import TRANSFER_SYNTAXES
from yunying.errors import InvalidDicom

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def valid_uid(value: str) -> bool:
    """PS3.5 §9.1: digits and dots, ≤ 64 characters, no leading zeros in components."""
    if not value or len(value) > 64 or not _UID_RE.match(value):
        return False
    return all(c == "0" or not c.startswith("0") for c in value.split("."))


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class ParsedInstance:
    """What the index needs to know about one instance, taken from its header."""

    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    patient_id: str
    issuer: str
    patient_name: str
    patient_name_norm: str
    birth_date: str
    sex: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_norm: str
    modality: str
    series_number: int | None
    series_description: str
    body_part: str
    pps_start_date: str
    pps_start_time: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    bits_allocated: int | None
    number_of_frames: int | None
    has_pixels: bool
    pixels_plausible: bool
    dataset: Dataset | None = field(default=None, repr=False)

    # Level attributes as DICOM JSON, computed only when a new patient/study/series row needs them.
    @cached_property
    def patient_attrs(self) -> dict[str, Any]:
        return level_attrs(self.dataset, "PATIENT") if self.dataset is not None else {}

    @cached_property
    def study_attrs(self) -> dict[str, Any]:
        return level_attrs(self.dataset, "STUDY") if self.dataset is not None else {}

    @cached_property
    def series_attrs(self) -> dict[str, Any]:
        return level_attrs(self.dataset, "SERIES") if self.dataset is not None else {}


def read_dataset(data: bytes) -> FileDataset:
    """Parse Part 10 bytes (preamble + File Meta required)."""
    try:
        ds = dcmread(BytesIO(data), force=False)
    except InvalidDicomError as exc:
        raise InvalidDicom("not a DICOM Part 10 file: no preamble/'DICM' prefix or File Meta Information") from exc
    except Exception as exc:
        raise InvalidDicom(f"cannot parse DICOM data: {type(exc).__name__}: {exc}") from exc
    return ds


def _issuer(ds: Dataset, patient_name: str) -> str:
    """Issuer of Patient ID; for instances without a Patient ID, a stand-in derived from name and birth date
    so that different anonymous patients are not merged into one patient record."""
    if _text(ds, "PatientID"):
        return _text(ds, "IssuerOfPatientID")[:64]
    identity = f"{patient_name}|{_text(ds, 'PatientBirthDate')}|{_text(ds, 'PatientSex')}"
    return "~no-id:" + hashlib.sha256(identity.encode()).hexdigest()[:40]


def _native_pixels_plausible(ds: Dataset, frames: int) -> bool:
    pixel = ds.get((0x7FE0, 0x0010))
    if pixel is None:
        return True
    rows, cols = _int(ds, "Rows") or 0, _int(ds, "Columns") or 0
    bits = _int(ds, "BitsAllocated") or 0
    spp = _int(ds, "SamplesPerPixel") or 1
    expected = rows * cols * spp * frames * bits // 8
    try:
        actual = len(pixel.value)
    except TypeError:
        return False
    return actual >= expected


def parse_instance(data: bytes) -> tuple[ParsedInstance, FileDataset]:
    """Validate ``data`` as a storable instance and extract its index attributes.

    Raises
    ------
    InvalidDicom
        With a sentence naming what is wrong (not Part 10, no Transfer Syntax UID,
        unknown transfer syntax, missing or malformed UIDs, ...).
    """
    ds = read_dataset(data)
    meta = ds.file_meta
    ts = str(meta.get("TransferSyntaxUID", "") or "").strip()
    if not ts:
        raise InvalidDicom("File Meta Information has no Transfer Syntax UID (0002,0010)")
    if ts not in TRANSFER_SYNTAXES:
        raise InvalidDicom(f"unknown or unsupported Transfer Syntax UID {ts}")
    try:
        sop_class = _text(ds, "SOPClassUID")
        sop_uid = _text(ds, "SOPInstanceUID")
        study_uid = _text(ds, "StudyInstanceUID")
        series_uid = _text(ds, "SeriesInstanceUID")
    except Exception as exc:
        raise InvalidDicom(f"cannot parse DICOM data set: {type(exc).__name__}: {exc}") from exc
    for name, value in (
        ("SOP Class UID (0008,0016)", sop_class),
        ("SOP Instance UID (0008,0018)", sop_uid),
        ("Study Instance UID (0020,000D)", study_uid),
        ("Series Instance UID (0020,000E)", series_uid),
    ):
        if not value:
            raise InvalidDicom(f"missing {name}")
        if not valid_uid(value):
            raise InvalidDicom(f"malformed {name}: not a valid UID")
    # A File Meta Media Storage SOP Instance UID that differs from the data set's is tolerated:
    # the data set is authoritative (see docs/decisions/0003-ingest-validation.md).
    try:
        return _describe(ds, ts, sop_class, sop_uid, study_uid, series_uid), ds
    except InvalidDicom:
        raise
    except Exception as exc:
        raise InvalidDicom(f"cannot read DICOM attributes: {type(exc).__name__}: {exc}") from exc


def _describe(ds: FileDataset, ts: str, sop_class: str, sop_uid: str, study_uid: str, series_uid: str) -> ParsedInstance:
    frames = _int(ds, "NumberOfFrames")
    has_pixels = (0x7FE0, 0x0010) in ds
    encapsulated = TRANSFER_SYNTAXES[ts].encapsulated
    plausible = True
    if has_pixels and not encapsulated:
        plausible = _native_pixels_plausible(ds, frames or 1)
    patient_name = _text(ds, "PatientName")
    return ParsedInstance(
        transfer_syntax_uid=ts,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        patient_id=_text(ds, "PatientID")[:64],
        issuer=_issuer(ds, patient_name),
        patient_name=patient_name[:324],
        patient_name_norm=normalize_pn(patient_name)[:330],
        birth_date=_text(ds, "PatientBirthDate")[:8],
        sex=_text(ds, "PatientSex")[:16],
        study_date=_text(ds, "StudyDate")[:8],
        study_time=_text(ds, "StudyTime")[:16],
        accession_number=_text(ds, "AccessionNumber")[:64],
        study_id=_text(ds, "StudyID")[:16],
        study_description=_text(ds, "StudyDescription")[:64],
        referring_physician_norm=normalize_pn(_text(ds, "ReferringPhysicianName"))[:330],
        modality=_text(ds, "Modality")[:16],
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription")[:64],
        body_part=_text(ds, "BodyPartExamined")[:64],
        pps_start_date=_text(ds, "PerformedProcedureStepStartDate")[:8],
        pps_start_time=_text(ds, "PerformedProcedureStepStartTime")[:16],
        instance_number=_int(ds, "InstanceNumber"),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        bits_allocated=_int(ds, "BitsAllocated"),
        number_of_frames=frames,
        has_pixels=has_pixels,
        pixels_plausible=plausible,
        dataset=ds,
    )
