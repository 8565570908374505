"""Protection of identity fields before upload: keep, remove, empty, pseudonymise or replace (GW-7, GW-11).

Rules name top-level attributes by DICOM keyword (``"PatientID=hash"``, ``"OtherPatientIDs=remove"``,
``"InstitutionName=replace:某医院"``). Only those attributes change, plus Patient Identity Removed and
De-identification Method when a patient identifier was touched, and Specific Character Set when a replacement
text needs Unicode. Pixel data is never decoded: its bytes are checked identical after rewriting.
Values are never logged or put into error messages.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

from yunying.errors import YunyingError

HASH_ALGORITHMS = ("sha256", "sm3")  # used through HMAC; SM3 per GB/T 32905-2016
PSEUDONYM_CHARS = 16  # fits SH/AE/CS (16 max, PS3.5 Table 6.2-1); base32 is A-Z2-7, valid even in CS
PN_PSEUDONYM_PREFIX = "ANON^"
DEIDENTIFICATION_METHOD = "yunying-gateway protection rules"

# VRs whose value may be any short text, so a pseudonym is a valid value (PS3.5 Table 6.2-1).
PSEUDONYM_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
# VRs a configured replacement text can be written into (the rule author chooses a valid value, e.g. a date).
REPLACEABLE_VRS = PSEUDONYM_VRS | {"AS", "DA", "DS", "DT", "IS", "TM", "UR"}
# Attributes no rule may touch: they hold the file together or name the instance the archive stores.
STRUCTURAL = frozenset({"SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID",
                        "SeriesInstanceUID", "PatientIdentityRemoved", "DeidentificationMethod"})
# Patient identifiers (direct ones of PS3.15 Table E.1-1): changing one marks the identity as removed.
PATIENT_IDENTIFIERS = frozenset({
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName", "PatientBirthDate", "PatientBirthTime",
    "PatientAddress", "PatientTelephoneNumbers", "PatientTelecomInformation", "MedicalRecordLocator",
    "InsurancePlanIdentification", "ResponsiblePerson",
})
# Character sets that can encode any text (PS3.3 C.12.1.1.2): others are re-declared UTF-8 for a non-ASCII value.
UNICODE_CHARSETS = frozenset({"ISO_IR 192", "GB18030"})


class Action(StrEnum):
    KEEP = "keep"
    REMOVE = "remove"
    EMPTY = "empty"
    HASH = "hash"
    REPLACE = "replace"


class ProtectionError(YunyingError):
    """Rewriting the instance would have changed its pixel data; it was not rewritten."""


@dataclass(frozen=True)
class ProtectionRule:
    """One top-level attribute and what to do with it; invalid combinations fail at construction."""

    keyword: str
    action: Action
    value: str = ""

    def __post_init__(self) -> None:
        tag = tag_for_keyword(self.keyword)
        if tag is None:
            raise ValueError(f"protection rule: unknown DICOM keyword {self.keyword!r}")
        if self.action is Action.KEEP:
            return
        if tag >> 16 in (0x0002, 0x7FE0) or self.keyword in STRUCTURAL:
            raise ValueError(f"protection rule: {self.keyword} cannot be changed (it keeps the file or instance intact)")
        if self.value and self.action is not Action.REPLACE:
            raise ValueError(f"protection rule: {self.keyword}={self.action} takes no value")
        vr = dictionary_VR(tag)
        if self.action is Action.HASH and vr not in PSEUDONYM_VRS:
            raise ValueError(f"protection rule: {self.keyword} ({vr}) cannot hold a pseudonym; use remove or empty")
        if self.action is Action.REPLACE and vr not in REPLACEABLE_VRS:
            raise ValueError(f"protection rule: {self.keyword} ({vr}) cannot be replaced by text; use remove or empty")

    @property
    def tag(self) -> BaseTag:
        return Tag(self.keyword)


def parse_rules(specs: Sequence[str]) -> list[ProtectionRule]:
    """Parse ``"<Keyword>=<action>"`` or ``"<Keyword>=replace:<text>"``; errors name the bad part."""
    rules: list[ProtectionRule] = []
    for spec in specs:
        keyword, eq, rest = spec.partition("=")
        keyword = keyword.strip()
        action_name, _, value = rest.partition(":")
        if not eq or not keyword:
            raise ValueError(f"protection rule {spec!r} is not <DICOM keyword>=<action>[:<value>]")
        try:
            action = Action(action_name.strip().lower())
        except ValueError:
            raise ValueError(f"protection rule {spec!r}: unknown action {action_name.strip()!r} "
                             f"({', '.join(Action)})") from None
        if any(rule.keyword == keyword for rule in rules):
            raise ValueError(f"protection rule {spec!r}: {keyword} has more than one rule")
        rules.append(ProtectionRule(keyword, action, value))
    return rules


class Protector:
    """Apply protection rules to Part 10 files; HASH is an HMAC pseudonym keyed by ``secret``."""

    def __init__(self, rules: Sequence[ProtectionRule], secret: bytes, algorithm: str = "sha256") -> None:
        if algorithm not in HASH_ALGORITHMS:
            raise ValueError(f"pseudonym hash {algorithm!r} is not one of {', '.join(HASH_ALGORITHMS)}")
        if not secret and any(rule.action is Action.HASH for rule in rules):
            raise ValueError("hash rules need a protection secret (without one a pseudonym is reversible by guessing)")
        self.rules = [rule for rule in rules if rule.action is not Action.KEEP]
        self._secret = secret
        self.algorithm = algorithm
        hmac.new(secret or b"-", b"", algorithm)  # fails now, not on the first instance, if the hash is missing

    @property
    def active(self) -> bool:
        return bool(self.rules)

    def pseudonym(self, text: str) -> str:
        """Deterministic 16-character pseudonym of ``text``: same text and secret, same pseudonym."""
        digest = hmac.new(self._secret, text.encode("utf-8"), self.algorithm).digest()
        return base64.b32encode(digest[:10]).decode("ascii")  # 80 bits -> exactly 16 characters

    def apply(self, data: bytes) -> bytes:
        """Return ``data`` with the rules applied (``data`` itself when nothing changes).

        Raises
        ------
        ValueError
            ``data`` is not a DICOM Part 10 file.
        ProtectionError
            Writing the result back would have changed the pixel data bytes.
        """
        if not self.active:
            return data
        try:
            ds = dcmread(BytesIO(data))
        except (InvalidDicomError, EOFError, OSError, ValueError) as exc:
            raise ValueError(f"not a DICOM Part 10 file: {type(exc).__name__}") from exc
        present = [rule for rule in self.rules if rule.tag in ds]
        if not present:
            return data
        pixels = ds["PixelData"].value if "PixelData" in ds else None
        if any(r.action is Action.REPLACE and not r.value.isascii() for r in present):
            _declare_unicode(ds)
        for rule in present:
            self._apply_rule(ds, rule)
        if any(rule.keyword in PATIENT_IDENTIFIERS for rule in present):
            # "YES" claims the true identity is gone (PS3.3 C.7.1.1): only when name and ID are both covered.
            covered = {r.keyword for r in self.rules if r.action is not Action.KEEP}
            _mark_deidentified(ds, identity_removed={"PatientName", "PatientID"} <= covered)
        return _write_checked(ds, pixels)

    def _apply_rule(self, ds: Dataset, rule: ProtectionRule) -> None:
        element = ds[rule.tag]
        if rule.action is Action.REMOVE:
            del ds[rule.tag]
        elif rule.action is Action.EMPTY:
            element.value = [] if element.VR == "SQ" else None
        elif rule.action is Action.REPLACE:
            element.value = rule.value
        elif element.value not in (None, ""):  # HASH; an empty value stays empty
            prefix = PN_PSEUDONYM_PREFIX if element.VR == "PN" else ""
            values = element.value if isinstance(element.value, MultiValue) else [element.value]
            hashed = [prefix + self.pseudonym(str(v).strip()) if _has_text(str(v), element.VR) else "" for v in values]
            element.value = hashed if len(hashed) > 1 else hashed[0]


def _has_text(value: str, vr: str) -> bool:
    """Whether a value carries anything (a person name of only separators, ``^^^^``, does not)."""
    return bool(value.strip(" ^=") if vr == "PN" else value.strip())


def _declare_unicode(ds: Dataset) -> None:
    """Make the dataset able to hold any text: decode every value, then declare UTF-8 (unless already Unicode)."""
    charset = ds.get("SpecificCharacterSet")
    names = [charset] if isinstance(charset, str) else list(charset or [])
    if len(names) == 1 and names[0] in UNICODE_CHARSETS:
        return
    ds.decode()  # values become text under the old character set; they are written back in the new one
    ds.SpecificCharacterSet = "ISO_IR 192"


def _mark_deidentified(ds: Dataset, identity_removed: bool) -> None:
    if identity_removed:
        ds.PatientIdentityRemoved = "YES"
    methods = ds.get("DeidentificationMethod")
    existing = [] if methods is None else [methods] if isinstance(methods, str) else list(methods)
    if DEIDENTIFICATION_METHOD not in existing:
        existing.append(DEIDENTIFICATION_METHOD)
    ds.DeidentificationMethod = existing if len(existing) > 1 else existing[0]


def _write_checked(ds: FileDataset, pixels: bytes | None) -> bytes:
    """Write ``ds`` in its own transfer syntax and prove the pixel data bytes did not move."""
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    written = out.getvalue()
    check = dcmread(BytesIO(written))
    after = check["PixelData"].value if "PixelData" in check else None
    if after != pixels:
        raise ProtectionError("rewriting the instance would change its pixel data; not sent")
    return written
