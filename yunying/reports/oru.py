"""HL7 v2 ORU^R01 → a report version, and the ACK that answers it (IN-1). Parsing by python-hl7.

Profile (docs/reports.md): MSH-4 sending facility → institution; MSH-9 ``ORU^R01``; MSH-12 ``2.x``;
PID-3 patient id; OBR-18 accession number (else OBR-3 filler order number); ZDS-1 Study Instance UID
(IHE) when present; OBR-25 result status; OBR-32 principal result interpreter → author; OBR-22
(else OBR-7) time; OBX of value type TX/FT/ST/CE: text, sorted into findings or impression by OBX-3;
PV1-2 patient class → the exam's cloud-film patient class (:data:`PATIENT_CLASS`).

The ACK rules are data: :data:`ACK_CODES` and the HL7 table 0357 error codes below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import hl7

from yunying.reports.service import ReportInput, Source, Status


class Ack(StrEnum):
    """MSA-1 acknowledgment codes, HL7 v2.5 table 0008 (original mode)."""

    ACCEPT = "AA"  # stored durably
    ERROR = "AE"  # content error: do not resend unchanged
    REJECT = "AR"  # message type / version / sender not accepted, or a temporary failure


# HL7 table 0357 (message error condition codes) used in ERR-3.
ERR_REQUIRED_FIELD_MISSING = "101"
ERR_DATA_TYPE = "102"
ERR_UNSUPPORTED_MESSAGE_TYPE = "200"
ERR_UNSUPPORTED_EVENT = "201"
ERR_UNSUPPORTED_VERSION = "203"
ERR_UNKNOWN_KEY = "204"
ERR_APPLICATION = "207"

# OBR-25 result status (HL7 table 0123) → report status; anything else is not a report (AE).
RESULT_STATUS: dict[str, Status] = {
    "P": Status.PRELIMINARY,  # preliminary
    "R": Status.PRELIMINARY,  # results stored, not yet verified
    "F": Status.FINAL,
    "C": Status.AMENDED,  # correction to results
    "X": Status.CANCELLED,  # no results available; order cancelled
}
# PV1-2 patient class (HL7 table 0004, plus the local codes Chinese RIS use for 体检) → cloud-film patient
# class (CF-12). Anything else, or no PV1: "" (the exam counts as outpatient).
PATIENT_CLASS: dict[str, str] = {
    "O": "outpatient",
    "P": "outpatient",  # preadmit
    "R": "outpatient",  # recurring patient
    "I": "inpatient",
    "B": "inpatient",  # obstetrics
    "E": "emergency",
    "H": "physical-exam",  # local: health check (体检)
    "T": "physical-exam",  # local: 体检 (tijian)
}
TEXT_TYPES = frozenset({"TX", "FT", "ST", "CE", "CWE"})  # OBX-2 value types read as text
# OBX-3 identifiers (LOINC, DICOM, common RIS codes) that hold the impression; every other text is findings.
IMPRESSION_CODES = frozenset({"19005-8", "59776-5&IMP", "121073", "121076", "121077", "IMP", "IMPRESSION",
                              "GDT-IMP", "CONCLUSION"})
IMPRESSION_WORDS = ("impression", "conclusion", "印象", "诊断", "结论")


class OruError(ValueError):
    """The message cannot become a report; ``ack`` and ``code`` say how to answer."""

    def __init__(self, ack: Ack, code: str, text: str) -> None:
        super().__init__(text)
        self.ack, self.code, self.text = ack, code, text


@dataclass(frozen=True)
class Header:
    """What the ACK needs from MSH (also for messages that are refused)."""

    sending_application: str
    sending_facility: str  # MSH-4 as sent
    facility_id: str  # MSH-4.1 (namespace id), the key of ``hl7_facilities``
    receiving_application: str
    receiving_facility: str
    control_id: str
    message_type: str
    version: str


def parse(text: str) -> hl7.Message:
    """python-hl7's message; :class:`OruError` (AR, no usable MSH) when it is not HL7 v2 at all."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text.startswith("MSH"):
        raise OruError(Ack.REJECT, ERR_REQUIRED_FIELD_MISSING, "no MSH segment")
    try:
        return hl7.parse(text)
    except Exception as exc:
        raise OruError(Ack.REJECT, ERR_DATA_TYPE, f"not an HL7 v2 message: {type(exc).__name__}") from exc


def _field(segment: hl7.Segment, n: int) -> str:
    return str(segment[n]) if len(segment) > n else ""


def _component(segment: hl7.Segment, n: int, c: int = 1) -> str:
    """Component ``c`` of the first repetition of field ``n`` (python-hl7: field → repetitions → components)."""
    if len(segment) <= n or not len(segment[n]):
        return ""
    first = segment[n][0]
    if isinstance(first, str):
        return first if c == 1 else ""
    return str(first[c - 1]) if len(first) >= c else ""


def header(message: hl7.Message) -> Header:
    msh = message.segment("MSH")
    return Header(_field(msh, 3), _field(msh, 4), _component(msh, 4), _field(msh, 5), _field(msh, 6),
                  _field(msh, 10), _field(msh, 9), _component(msh, 12))


def check_header(head: Header) -> None:
    """AR for what this listener does not take: other message types, events, versions."""
    kind, _, rest = head.message_type.partition("^")
    event = rest.partition("^")[0]
    if kind != "ORU":
        raise OruError(Ack.REJECT, ERR_UNSUPPORTED_MESSAGE_TYPE, f"message type {kind or '(none)'} is not accepted (ORU only)")
    if event != "R01":
        raise OruError(Ack.REJECT, ERR_UNSUPPORTED_EVENT, f"event {event or '(none)'} is not accepted (R01 only)")
    if not head.version.startswith("2."):
        raise OruError(Ack.REJECT, ERR_UNSUPPORTED_VERSION, f"HL7 version {head.version or '(none)'} is not 2.x")
    if not head.control_id:
        raise OruError(Ack.ERROR, ERR_REQUIRED_FIELD_MISSING, "MSH-10 message control id is empty")


def _segments(message: hl7.Message, name: str) -> list[hl7.Segment]:
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def _text(message: hl7.Message, obx: hl7.Segment) -> str:
    if len(obx) <= 5:
        return ""
    parts = list(obx[5])  # TX: one repetition per line
    lines = [message.unescape(str(p).replace("^", " ").strip() if _field(obx, 2) in ("CE", "CWE") else str(p))
             for p in parts]
    return "\n".join(line.replace("\r", "\n") for line in lines)


def _is_impression(obx: hl7.Segment) -> bool:
    code, label = _component(obx, 3, 1).upper(), _component(obx, 3, 2).lower()
    return code in IMPRESSION_CODES or any(w in label for w in IMPRESSION_WORDS)


def hl7_time(text: str) -> datetime | None:
    """HL7 TS/DTM (``YYYYMMDD[HHMM[SS[.S]]][+ZZZZ]``); without an offset the archive's local time zone."""
    digits, zone = text, ""
    for sign in ("+", "-"):
        if sign in text:
            digits, zone = text.split(sign, 1)[0], sign + text.split(sign, 1)[1]
    digits = digits.split(".")[0]
    formats = {14: "%Y%m%d%H%M%S", 12: "%Y%m%d%H%M", 8: "%Y%m%d"}
    if len(digits) not in formats:
        return None
    try:
        moment = datetime.strptime(digits + zone, formats[len(digits)] + ("%z" if zone else ""))
    except ValueError:
        return None
    return moment.astimezone(UTC) if zone else moment.astimezone().astimezone(UTC)


def _person(segment: hl7.Segment, n: int) -> str:
    """A CNN/XCN name (``id&family&given`` or ``id^family^given``) as "family given (id)"."""
    raw = _field(segment, n).split("~")[0]
    parts = [p for p in raw.replace("&", "^").split("^")]
    ident, names = (parts[0], [p for p in parts[1:3] if p]) if parts else ("", [])
    text = " ".join(names)
    return f"{text} ({ident})" if text and ident else text or ident


def to_report(message: hl7.Message, institution_id: int) -> ReportInput:
    """The report version an ORU^R01 carries; :class:`OruError` (AE) for content errors."""
    head = header(message)
    obrs = _segments(message, "OBR")
    if not obrs:
        raise OruError(Ack.ERROR, ERR_REQUIRED_FIELD_MISSING, "no OBR segment")
    obr = obrs[0]
    accession = _component(obr, 18) or _component(obr, 3)
    zds = _segments(message, "ZDS")
    study_uid = _component(zds[0], 1) if zds else ""
    if not accession and not study_uid:
        raise OruError(Ack.ERROR, ERR_REQUIRED_FIELD_MISSING, "no accession number (OBR-18 / OBR-3) or study UID (ZDS-1)")
    result_status = _field(obr, 25)
    if result_status not in RESULT_STATUS:
        raise OruError(Ack.ERROR, ERR_REQUIRED_FIELD_MISSING,
                       f"OBR-25 result status {result_status or '(empty)'} is not one of {'/'.join(RESULT_STATUS)}")
    texts = [o for o in _segments(message, "OBX") if _field(o, 2) in TEXT_TYPES]
    if not texts:
        raise OruError(Ack.ERROR, ERR_REQUIRED_FIELD_MISSING, "no OBX segment with report text (TX/FT/ST)")
    findings = "\n".join(_text(message, o) for o in texts if not _is_impression(o))
    impression = "\n".join(_text(message, o) for o in texts if _is_impression(o))
    pids = _segments(message, "PID")
    pv1s = _segments(message, "PV1")
    return ReportInput(
        institution_id=institution_id, status=RESULT_STATUS[result_status], source=Source.HL7,
        accession_number=accession[:64], study_uid=study_uid[:64], patient_id=_component(pids[0], 3)[:64] if pids else "",
        findings=findings, impression=impression, author=_person(obr, 32), verifier=_person(texts[0], 16),
        observed_at=hl7_time(_field(obr, 22)) or hl7_time(_field(obr, 7)),
        source_ref=f"{head.facility_id}:{head.control_id}",
        patient_class=PATIENT_CLASS.get(_component(pv1s[0], 2).upper(), "") if pv1s else "")


def ack(head: Header | None, code: Ack, text: str = "", error: str = "", now: datetime | None = None) -> str:
    """The ACK: MSH with sender and receiver swapped, MSA-2 echoing MSH-10, ERR for AE/AR."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S+0000")
    h = head or Header("", "", "", "", "", "", "", "2.5")
    event = h.message_type.split("^")[1] if h.message_type.count("^") >= 1 else ""
    control = f"ACK{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"
    clean = text.replace("|", " ").replace("^", " ").replace("~", " ").replace("\\", " ").replace("&", " ")[:80]
    segments = [
        f"MSH|^~\\&|{h.receiving_application}|{h.receiving_facility}|{h.sending_application}|{h.sending_facility}|"
        f"{moment}||ACK^{event}^ACK|{control}|P|{h.version or '2.5'}",
        f"MSA|{code.value}|{h.control_id}|{clean}",
    ]
    if code is not Ack.ACCEPT:
        severity = "E"
        segments.append(f"ERR|||{error or ERR_APPLICATION}^{clean}^HL70357|{severity}")
    return "\r".join(segments) + "\r"
