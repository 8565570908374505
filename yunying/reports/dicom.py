"""Reports that arrive as DICOM: text SR (Basic / Enhanced / Comprehensive) and Encapsulated PDF.

:class:`ReportHook` is registered on the ingest path (``Ingest.after_store``, wired in
``yunying.compose``): after an instance is durably stored it links waiting reports to the study and,
for an SR or PDF, stores the report version. The PDF stays in the archive as the DICOM instance; the
report references it by SOP Instance UID.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from pydicom.dataset import Dataset
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.dicom.parse import ParsedInstance
from yunying.index.models import Study
from yunying.reports import service
from yunying.reports.service import ReportInput, Source, Status

log = logging.getLogger(__name__)

# PS3.4 B.5 SOP classes read as text reports.
TEXT_SR = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
}
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
# Concept names (code value) whose TEXT goes to the impression (DCM, LOINC); everything else is findings.
IMPRESSION_CONCEPTS = frozenset({"121073", "121076", "121077", "19005-8", "18782-3"})
# PS3.3 C.17.2: (VerificationFlag, CompletionFlag) → status; a verified document with predecessors is an amendment.
SR_STATUS: dict[tuple[str, str], Status] = {
    ("VERIFIED", "COMPLETE"): Status.FINAL,
    ("VERIFIED", "PARTIAL"): Status.PRELIMINARY,
    ("UNVERIFIED", "COMPLETE"): Status.PRELIMINARY,
    ("UNVERIFIED", "PARTIAL"): Status.PRELIMINARY,
}


def _code(item: Dataset, keyword: str = "ConceptNameCodeSequence") -> tuple[str, str]:
    seq = item.get(keyword)
    if not seq:
        return "", ""
    code = seq[0]
    return str(code.get("CodeValue", "") or code.get("LongCodeValue", "") or ""), str(code.get("CodeMeaning", "") or "")


def _lines(items: Dataset | None, impression: bool = False) -> Iterator[tuple[bool, str]]:
    """(is impression, line) for the content tree below ``items``, depth first, in document order."""
    for item in (items.get("ContentSequence") or []) if items is not None else []:
        code, meaning = _code(item)
        inside = impression or code in IMPRESSION_CONCEPTS or "impression" in meaning.lower()
        kind = str(item.get("ValueType", ""))
        if kind == "TEXT":
            yield inside, f"{meaning}: {item.get('TextValue', '')}" if meaning and not inside else str(item.get("TextValue", ""))
        elif kind == "CODE":
            yield inside, f"{meaning}: {_code(item, 'ConceptCodeSequence')[1]}"
        elif kind == "NUM" and item.get("MeasuredValueSequence"):
            measured = item.MeasuredValueSequence[0]
            unit = _code(measured, "MeasurementUnitsCodeSequence")[0]
            yield inside, f"{meaning}: {measured.get('NumericValue', '')} {unit}".rstrip()
        elif kind == "CONTAINER" and meaning and not inside:
            yield False, f"{meaning}"
        yield from _lines(item, inside)


def sr_text(ds: Dataset) -> tuple[str, str]:
    """(findings, impression) of an SR document's content tree."""
    findings: list[str] = []
    impression: list[str] = []
    for is_impression, line in _lines(ds):
        (impression if is_impression else findings).append(line)
    return "\n".join(findings), "\n".join(impression)


def _observer(ds: Dataset) -> tuple[str, str]:
    author = ""
    for item in ds.get("AuthorObserverSequence") or []:
        if item.get("PersonName"):
            author = str(item.PersonName)
            break
    verifier = ""
    for item in ds.get("VerifyingObserverSequence") or []:
        verifier = str(item.get("VerifyingObserverName", "") or "")
    return author, verifier


def _content_time(ds: Dataset) -> datetime | None:
    date, time = str(ds.get("ContentDate", "") or ""), str(ds.get("ContentTime", "") or "").split(".")[0]
    try:
        return datetime.strptime(date + time.ljust(6, "0")[:6], "%Y%m%d%H%M%S").astimezone().astimezone(UTC)
    except ValueError:
        return None


def report_of(parsed: ParsedInstance, ds: Dataset, institution_id: int) -> ReportInput | None:
    """The report version a stored SR or PDF instance carries; None for any other instance."""
    base = ReportInput(institution_id=institution_id, status=Status.FINAL, source=Source.DICOM_SR,
                       accession_number=parsed.accession_number, study_uid=parsed.study_uid,
                       patient_id=parsed.patient_id, observed_at=_content_time(ds), source_ref=parsed.sop_instance_uid)
    if parsed.sop_class_uid == ENCAPSULATED_PDF:
        title = str(ds.get("DocumentTitle", "") or "")
        return replace(base, source=Source.DICOM_PDF, findings=title, pdf_sop_uid=parsed.sop_instance_uid)
    if parsed.sop_class_uid not in TEXT_SR:
        return None
    status = SR_STATUS.get((str(ds.get("VerificationFlag", "")), str(ds.get("CompletionFlag", ""))), Status.PRELIMINARY)
    if status is Status.FINAL and ds.get("PredecessorDocumentsSequence"):
        status = Status.AMENDED
    findings, impression = sr_text(ds)
    author, verifier = _observer(ds)
    return replace(base, status=status, findings=findings, impression=impression, author=author, verifier=verifier)


def pdf_bytes(ds: Dataset) -> bytes:
    """The PDF of an Encapsulated PDF instance as it was encapsulated (the even-length padding removed)."""
    data = bytes(ds.EncapsulatedDocument)
    length = ds.get("EncapsulatedDocumentLength")
    if length is not None and 0 < int(length) <= len(data):
        return data[:int(length)]
    return data[:-1] if data.endswith(b"\x00") else data  # a PDF does not end in NUL: that is the padding


class ReportHook:
    """``Ingest.after_store`` hook: link waiting reports to the study; SR / PDF → report version."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def __call__(self, parsed: ParsedInstance, ds: Dataset, institution_id: int | None) -> None:
        service.link_study(self.sessions, parsed.study_uid)
        if parsed.sop_class_uid not in TEXT_SR and parsed.sop_class_uid != ENCAPSULATED_PDF:
            return
        with self.sessions() as session:  # the study's owner (the storing institution, or None for legacy data)
            owner = session.execute(select(Study.institution_fk).where(Study.study_uid == parsed.study_uid)).scalar()
        owner = owner if owner is not None else institution_id
        if owner is None:
            return
        data = report_of(parsed, ds, owner)
        if data is None:
            return
        try:
            view = service.receive(self.sessions, data)
        except service.ReportConflict as exc:
            log.warning("report from SR/PDF not stored: %s", exc)
            return
        log.info("report %d version %d from a DICOM %s", view.id, view.current.version, data.source.value)
