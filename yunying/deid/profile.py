"""De-identification of one share or download: datasets, DICOM JSON metadata and free text.

A :class:`Deidentifier` applies PS3.15 Annex E's Basic Application Level Confidentiality Profile
(:mod:`yunying.deid.table`) without the Retain Longitudinal Temporal Information and without the
Clean Descriptors options (descriptions the profile removes are removed: free text cannot be
cleaned reliably). Its key is specific to one context (a share, a download), so the same original
UID becomes the same ``2.25.…`` UID everywhere in that context and a different one elsewhere.
Pixel data is never touched; an image whose pixels carry burned-in text (Burned In Annotation =
YES) is refused with :class:`BurnedInAnnotation` instead of being released.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom._uid_dict import UID_dictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from yunying.deid.table import action_for
from yunying.errors import YunyingError


class BurnedInAnnotation(YunyingError):
    """The image has identifying text burned into its pixels: it is not released de-identified."""


# Dummy values for action D by value representation (PS3.15 §E.3.1: "a non-zero length value that may
# be a dummy value and consistent with the VR"). Dates are a fixed, obviously artificial day.
DUMMY: dict[str, Any] = {
    "DA": "19000101", "TM": "000000", "DT": "19000101000000", "AS": "000Y", "PN": "ANONYMIZED",
    "IS": "0", "DS": "0", "CS": "ANONYMIZED", "AE": "ANONYMIZED", "SH": "ANONYMIZED", "LO": "ANONYMIZED",
    "LT": "ANONYMIZED", "ST": "ANONYMIZED", "UT": "ANONYMIZED", "UC": "ANONYMIZED", "UR": "",
    "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0.0, "FD": 0.0, "AT": 0,
}
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
# Attributes whose values are searched for and masked in every kept text (names, numbers, the hospital).
IDENTIFYING = ("PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName",
               "PatientMotherBirthName", "AccessionNumber", "PatientBirthDate", "PatientAddress",
               "PatientTelephoneNumbers", "MedicalRecordLocator", "InstitutionName", "InstitutionAddress",
               "ReferringPhysicianName", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
               "OperatorsName", "StationName", "IssuerOfPatientID")
MASK = "***"
_MIN_IDENTIFIER = 2  # shorter fragments (one Latin letter) are not searched for
# PS3.16 CID 7050 "De-identification Method": the codes this profile applies.
METHOD = "PS3.15 E.1 Basic Application Level Confidentiality Profile (Yunying)"
METHOD_CODES = (("113100", "DCM", "Basic Application Confidentiality Profile"),)
PIXEL_DATA = 0x7FE00010
STUDY_UID, SERIES_UID, SOP_UID = 0x0020000D, 0x0020000E, 0x00080018


@dataclass(frozen=True)
class Deidentifier:
    """The de-identification of one context (``key`` is already specific to that context)."""

    key: bytes
    context: str = ""

    @classmethod
    def for_context(cls, master: bytes, context: str) -> Deidentifier:
        return cls(hmac.new(master, b"deid-context\0" + context.encode(), hashlib.sha256).digest(), context)

    # -- UIDs ------------------------------------------------------------------------------
    def uid(self, original: str) -> str:
        """``2.25.<n>``: a keyed hash of ``original`` as a version-8 UUID (PS3.5 §B.2), stable in this context."""
        original = original.strip().rstrip("\0")
        if not original:
            return original
        digest = bytearray(hmac.new(self.key, original.encode(), hashlib.sha256).digest()[:16])
        digest[6] = (digest[6] & 0x0F) | 0x80  # version 8 (custom)
        digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
        return f"2.25.{int.from_bytes(digest, 'big')}"

    def pseudonym(self, patient_id: str) -> str:
        """``ANON-`` and 10 hex digits: the same for one patient in this context, unrelated elsewhere."""
        return "ANON-" + hmac.new(self.key, b"patient\0" + patient_id.encode(), hashlib.sha256).hexdigest()[:10].upper()

    # -- datasets ------------------------------------------------------------------------------
    def dataset(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place (and its file meta); :class:`BurnedInAnnotation` if it must not leave."""
        refuse_burned_in(ds)
        identifiers = identifiers_of(ds)
        patient_id = str(ds.get("PatientID", "") or "")
        self._walk(ds, identifiers)
        if "PatientID" in ds:  # Z allows a dummy: one pseudonym per patient and context (DICOMDIR needs one)
            ds.PatientID = self.pseudonym(patient_id)
        mark(ds)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def file(self, data: bytes) -> bytes:
        """A Part 10 file de-identified, in its own transfer syntax (pixel data bytes unchanged)."""
        ds = dcmread(BytesIO(data))
        self.dataset(ds)
        out = BytesIO()
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()

    def _walk(self, ds: Dataset, identifiers: list[str]) -> None:
        for elem in list(ds):
            tag = int(elem.tag)
            if tag == PIXEL_DATA:
                continue
            action = action_for(tag)
            if action == "X":
                del ds[elem.tag]
            elif elem.VR == "SQ":
                self._sequence(ds, elem, action, identifiers)
            elif action == "Z":
                elem.value = None
            elif action == "D":
                elem.value = _dummy(elem.VR)
            elif action == "U" or (elem.VR == "UI" and not _standard_uid(elem.value)):
                self._replace_uids(elem)
            elif elem.VR in TEXT_VRS and identifiers:
                _scrub_element(elem, identifiers)

    def _sequence(self, ds: Dataset, elem: DataElement, action: str, identifiers: list[str]) -> None:
        if action == "Z":
            elem.value = Sequence([])
            return
        for item in elem.value or []:  # D, U and K: the items stay, de-identified by the same table
            self._walk(item, identifiers)

    def _replace_uids(self, elem: DataElement) -> None:
        if elem.VR != "UI" or elem.value in (None, ""):
            elem.value = None if elem.VR != "UI" else elem.value
            return
        if elem.VM > 1:
            elem.value = [self.uid(str(v)) for v in elem.value]
        else:
            elem.value = self.uid(str(elem.value))

    # -- DICOM JSON (PS3.18 F.2) --------------------------------------------------------------
    def metadata(self, item: dict[str, Any]) -> dict[str, Any]:
        """A de-identified copy of one instance's DICOM JSON; :class:`BurnedInAnnotation` to withhold it."""
        burned = item.get("00280301", {}).get("Value", [""])
        if str(burned[0] if burned else "").strip().upper() == "YES":
            raise BurnedInAnnotation("the image has burned-in annotation")
        identifiers = _json_identifiers(item)
        renames = {uid: self.uid(uid) for uid in (_json_first(item, t) for t in ("0020000D", "0020000E", "00080018")) if uid}
        result = self._json_walk(item, identifiers, renames)
        if "00100020" in item:
            result["00100020"] = {"vr": "LO", "Value": [self.pseudonym(_json_first(item, "00100020"))]}
        result["00120062"] = {"vr": "CS", "Value": ["YES"]}
        result["00120063"] = {"vr": "LO", "Value": [METHOD]}
        result["00120064"] = {"vr": "SQ", "Value": [
            {"00080100": {"vr": "SH", "Value": [c]}, "00080102": {"vr": "SH", "Value": [s]},
             "00080104": {"vr": "LO", "Value": [m]}} for c, s, m in METHOD_CODES]}
        result["00280303"] = {"vr": "CS", "Value": ["REMOVED"]}
        return dict(sorted(result.items()))

    def _json_walk(self, item: dict[str, Any], identifiers: list[str], renames: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, attr in item.items():
            tag = int(key, 16)
            action = "K" if tag == PIXEL_DATA else action_for(tag)
            vr = attr.get("vr", "UN")
            if action == "X":
                continue
            new = dict(attr)
            if "BulkDataURI" in new:
                uri = str(new["BulkDataURI"])
                for old, replacement in renames.items():
                    uri = uri.replace(old, replacement)
                new["BulkDataURI"] = uri
            values = attr.get("Value")
            if vr == "SQ":
                new["Value"] = [] if action == "Z" else [self._json_walk(i, identifiers, {}) for i in values or []]
            elif action == "Z":
                new.pop("Value", None)
                new.pop("InlineBinary", None)
            elif action == "D" and values is not None:
                new["Value"] = [{"Alphabetic": DUMMY["PN"]} if vr == "PN" else _dummy(vr)]
            elif (action == "U" or vr == "UI") and values is not None:
                new["Value"] = [v if not v or (action == "K" and _standard_uid(v)) else self.uid(str(v)) for v in values]
            elif vr in TEXT_VRS and values and identifiers:
                new["Value"] = [_scrub_json_value(v, identifiers) for v in values]
            out[key] = new
        return out

    # -- text -------------------------------------------------------------------------------
    def text(self, text: str, identifiers: Iterable[str]) -> str:
        """``text`` with every occurrence of ``identifiers`` (names, numbers) masked (reports, overlays)."""
        return scrub(text, _expand(identifiers))


def refuse_burned_in(ds: Dataset) -> None:
    """:class:`BurnedInAnnotation` if (0028,0301) says the pixels carry identifying text."""
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        raise BurnedInAnnotation("the image has burned-in annotation")


def mark(ds: Dataset) -> None:
    """The attributes that say what was done (PS3.15 §E.1.1 items 6-7; PS3.3 C.12.1)."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    codes = []
    for value, scheme, meaning in METHOD_CODES:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
        codes.append(code)
    ds.DeidentificationMethodCodeSequence = codes
    ds.LongitudinalTemporalInformationModified = "REMOVED"


def _standard_uid(value: Any) -> bool:
    """Whether every UID in ``value`` is one the standard defines (SOP classes, transfer syntaxes, coding
    schemes...): those identify nothing and are kept; any other UID is an instance's and is replaced."""
    values = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    return all(not v or str(v) in UID_dictionary for v in values)


def _dummy(vr: str) -> Any:
    return DUMMY.get(vr, "" if vr not in ("OB", "OW", "OD", "OF", "OL", "OV", "UN") else b"")


def identifiers_of(ds: Dataset) -> list[str]:
    """The identifying values of ``ds`` to be masked wherever they appear in kept text."""
    values: list[str] = []
    for keyword in IDENTIFYING:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        items = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
        values.extend(str(v) for v in items)
    return _expand(values)


def _expand(values: Iterable[str]) -> list[str]:
    """Each value, its name components and groups, longest first (so ``Wang Xiaodong`` goes before ``Wang``)."""
    found: set[str] = set()
    for value in values:
        value = str(value).strip()
        for group in value.split("="):
            found.update({group, group.replace("^", " ").strip(), group.replace("^", "")})
            found.update(part for part in re.split(r"[\^ ]", group) if part)
    return sorted((v for v in found if len(v) >= _MIN_IDENTIFIER), key=lambda v: (-len(v), v))


def scrub(text: str, identifiers: list[str]) -> str:
    if not text or not identifiers:
        return text
    pattern = re.compile("|".join(re.escape(v) for v in identifiers), re.IGNORECASE)
    return pattern.sub(MASK, text)


def _scrub_element(elem: DataElement, identifiers: list[str]) -> None:
    value = elem.value
    if value is None or value == "":
        return
    if elem.VM > 1:
        elem.value = [scrub(str(v), identifiers) for v in value]
    else:
        cleaned = scrub(str(value), identifiers)
        if cleaned != str(value):
            elem.value = PersonName(cleaned) if elem.VR == "PN" else cleaned


def _json_first(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    return str(values[0] or "")


def _json_identifiers(item: dict[str, Any]) -> list[str]:
    from pydicom.datadict import tag_for_keyword

    values: list[str] = []
    for keyword in IDENTIFYING:
        tag = tag_for_keyword(keyword)
        for value in item.get(f"{tag:08X}", {}).get("Value") or []:
            if isinstance(value, dict):  # PN: {"Alphabetic", "Ideographic", "Phonetic"}
                values.extend(str(v) for v in value.values())
            elif value:
                values.append(str(value))
    return _expand(values)


def _scrub_json_value(value: Any, identifiers: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: scrub(str(v), identifiers) for k, v in value.items()}
    return scrub(value, identifiers) if isinstance(value, str) else value
