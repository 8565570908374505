"""Turn received bytes into a validated instance description, or say precisely why not.

Sensitive identifiers (issue 5) are taken out of the header here, and only here, into
``ParsedInstance.id_card`` / ``.phone``; the index stores them encrypted and as a keyed hash
(``yunying.auth.fieldcrypt``), never in clear:

* **Resident ID card number** (居民身份证号码, GB 11643: 17 digits and a check character 0-9/X) from an
  item of Other Patient IDs Sequence (0010,1002), or from Patient ID (0010,0020) itself, whose
  Issuer of Patient ID (0010,0021) or Type of Patient ID (0010,0022) is one of ``NATIONAL_ID_ISSUERS``,
  or whose Issuer of Patient ID Qualifiers Sequence (0010,0024) has Identifier Type Code (0040,0035)
  ``NNCHN`` (HL7 v2 table 0203: national person identifier of China). Patient ID first, then the
  sequence items in order; the first number passing the checksum wins, an invalid one is ignored.
* **Phone** from Patient's Telephone Numbers (0010,2154): the first value containing digits.

The DICOM JSON kept in the index's ``attrs`` columns never includes these elements (``SENSITIVE_TAGS``);
the stored blob keeps the instance as received (the archive's fidelity rule). Limitation: when a
hospital uses the ID card number as Patient ID itself, the index's Patient ID columns keep it as sent,
because every DICOM query matches on Patient ID (PS3.4 C.6); such sites should send a hospital
patient number as Patient ID and the ID card number in Other Patient IDs Sequence.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
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
    # Sensitive: never logged (repr=False), stored only through the field cipher.
    id_card: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)

    # Level attributes as DICOM JSON, computed only when a new patient/study/series row needs them.
    @cached_property
    def patient_attrs(self) -> dict[str, Any]:
        return _level_attrs(self.dataset, "PATIENT")

    @cached_property
    def study_attrs(self) -> dict[str, Any]:
        return _level_attrs(self.dataset, "STUDY")

    @cached_property
    def series_attrs(self) -> dict[str, Any]:
        return _level_attrs(self.dataset, "SERIES")


# Elements that must never reach the index's JSON columns in clear: Other Patient IDs Sequence,
# Patient's Telephone Numbers, Patient's Telecom Information (PS3.6 tags, DICOM JSON keys).
SENSITIVE_TAGS = frozenset({"00101002", "00102154", "00102155"})


def _level_attrs(ds: Dataset | None, level: str) -> dict[str, Any]:
    if ds is None:
        return {}
    return {tag: value for tag, value in level_attrs(ds, level).items() if tag not in SENSITIVE_TAGS}


# Issuer of Patient ID / Type of Patient ID values that name the resident identity card (compared
# upper-cased); and HL7 v2 table 0203 identifier type codes of the same (national person id, China).
NATIONAL_ID_ISSUERS = frozenset({"CN-ID", "身份证", "居民身份证", "RESIDENT_ID"})
NATIONAL_ID_TYPE_CODES = frozenset({"NNCHN"})
# GB 11643-1999 §6: weights of the 17 digits and the check character for (weighted sum mod 11).
ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CARD_CHECK = "10X98765432"
_ID_CARD_RE = re.compile(r"^[0-9]{17}[0-9X]$")


def normalise_id_card(text: str) -> str:
    """Resident ID card number as compared: full-width folded (NFKC), whitespace removed, ``x`` upper-cased."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).upper()


def valid_id_card(number: str) -> bool:
    """True for a normalised 18-character number whose check character is right (GB 11643)."""
    if not _ID_CARD_RE.match(number):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], ID_CARD_WEIGHTS, strict=True))
    return ID_CARD_CHECK[total % 11] == number[17]


def normalise_phone(text: str) -> str:
    """Phone number as compared: digits only; China's country code (+86 / 0086) before a mobile number dropped."""
    digits = "".join(c for c in unicodedata.normalize("NFKC", text) if c.isascii() and c.isdigit())
    for prefix in ("0086", "86"):
        rest = digits[len(prefix):]
        if digits.startswith(prefix) and len(rest) == 11 and rest.startswith("1"):
            return rest
    return digits


def _names_national_id(item: Dataset) -> bool:
    for keyword in ("IssuerOfPatientID", "TypeOfPatientID"):
        if _text(item, keyword).upper() in NATIONAL_ID_ISSUERS:
            return True
    qualifiers = item.get("IssuerOfPatientIDQualifiersSequence") or []
    return any(_text(q, "IdentifierTypeCode").upper() in NATIONAL_ID_TYPE_CODES for q in qualifiers)


def _id_card(ds: Dataset) -> str | None:
    candidates = [ds] if _names_national_id(ds) else []
    candidates += [item for item in ds.get("OtherPatientIDsSequence") or [] if _names_national_id(item)]
    for item in candidates:
        number = normalise_id_card(_text(item, "PatientID"))
        if valid_id_card(number):
            return number
    return None


def _phone(ds: Dataset) -> str | None:
    value = ds.get("PatientTelephoneNumbers")
    values = value if isinstance(value, MultiValue | list | tuple) else [value]
    for one in values:
        text = str(one or "").strip()
        if normalise_phone(text):
            return text[:64]
    return None


def sensitive_identifiers(ds: Dataset) -> tuple[str | None, str | None]:
    """``(resident ID card number, phone)`` of the patient, None where absent or unusable (see the module doc).

    A malformed sequence never makes an instance unstorable: it only yields no value.
    """
    try:
        return _id_card(ds), _phone(ds)
    except Exception:  # bad optional identifiers must not refuse an instance
        return None, None


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
    id_card, phone = sensitive_identifiers(ds)
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
        id_card=id_card,
        phone=phone,
    )
