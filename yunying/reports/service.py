"""Reports: receive (from HL7, DICOM SR/PDF, the API), amend, link to studies, read — one place for each.

A report is the text of one exam, found by its institution and accession number (or Study Instance
UID when there is no accession). Every change adds an immutable :class:`ReportVersion`; the report
row names the current version. A report may arrive before its images: it is stored unlinked and
:func:`link_study` links it when the study arrives (same institution, same study UID or accession).

Use cases own their transaction and commit before returning (the HL7 ACK comes after that).
Nothing here logs report text or patient identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from yunying.errors import NotFound, YunyingError
from yunying.index.access import Scope, visible_study
from yunying.index.db import write_session
from yunying.index.models import Report, ReportVersion, Study, utcnow
from yunying.reports import events


class Status(StrEnum):
    PRELIMINARY = "preliminary"
    FINAL = "final"
    AMENDED = "amended"  # a correction after a final version
    CANCELLED = "cancelled"


class Source(StrEnum):
    HL7 = "hl7"
    DICOM_SR = "dicom-sr"
    DICOM_PDF = "dicom-pdf"
    API = "api"


S = Status
# The report workflow as data (RP-2): what a new version may be, given the current one (None: new report).
# A "final" arriving after a final or amended version is recorded as "amended".
NEXT: dict[Status | None, frozenset[Status]] = {
    None: frozenset({S.PRELIMINARY, S.FINAL, S.AMENDED, S.CANCELLED}),
    S.PRELIMINARY: frozenset({S.PRELIMINARY, S.FINAL, S.CANCELLED}),
    S.FINAL: frozenset({S.FINAL, S.AMENDED, S.CANCELLED}),
    S.AMENDED: frozenset({S.FINAL, S.AMENDED, S.CANCELLED}),
    S.CANCELLED: frozenset(),
}


class ReportConflict(YunyingError):
    """The new version does not fit the report's workflow (e.g. preliminary after final, anything after cancelled)."""


@dataclass(frozen=True)
class ReportInput:
    """One version of a report as a sender gives it."""

    institution_id: int
    status: Status
    source: Source
    accession_number: str = ""
    study_uid: str = ""
    patient_id: str = ""
    findings: str = ""
    impression: str = ""
    author: str = ""
    verifier: str = ""
    observed_at: datetime | None = None
    source_ref: str = ""  # HL7 message control id, SOP Instance UID, API user
    pdf_sop_uid: str | None = None
    patient_class: str = ""  # outpatient | inpatient | emergency | physical-exam (HL7 PV1-2); "": not given


@dataclass(frozen=True)
class VersionView:
    version: int
    status: str
    findings: str
    impression: str
    author: str
    verifier: str
    observed_at: datetime | None
    created_at: datetime
    source: str
    source_ref: str
    has_pdf: bool


@dataclass(frozen=True)
class ReportView:
    id: int
    institution_id: int
    accession_number: str
    study_uid: str
    linked: bool
    patient_id: str
    status: str
    current: VersionView
    created_at: datetime
    updated_at: datetime
    created: bool = False  # this call created the report
    pdf_sop_uid: str | None = None  # of the newest version that has one


def _version_view(v: ReportVersion) -> VersionView:
    return VersionView(v.version, v.status, v.findings, v.impression, v.author, v.verifier, v.observed_at,
                       v.created_at, v.source, v.source_ref, v.pdf_sop_uid is not None)


def _view(session: Session, report: Report, created: bool = False) -> ReportView:
    current = session.execute(select(ReportVersion).where(
        ReportVersion.report_fk == report.id, ReportVersion.version == report.current_version)).scalar_one()
    pdf = session.execute(select(ReportVersion.pdf_sop_uid).where(
        ReportVersion.report_fk == report.id, ReportVersion.pdf_sop_uid.is_not(None))
        .order_by(ReportVersion.version.desc()).limit(1)).scalar_one_or_none()
    return ReportView(report.id, report.institution_fk, report.accession_number, report.study_uid,
                      report.study_fk is not None, report.patient_id, report.status, _version_view(current),
                      report.created_at, report.updated_at, created, pdf)


# --- writing ---------------------------------------------------------------------------------------------------------


def _find_study(session: Session, data: ReportInput) -> Study | None:
    """The institution's study of this report: by Study Instance UID, else by accession when exactly one matches."""
    if data.study_uid:
        study = session.execute(select(Study).where(Study.study_uid == data.study_uid)).scalar_one_or_none()
        return study if study is not None and study.institution_fk == data.institution_id else None
    if data.accession_number:
        found = session.execute(select(Study).where(Study.institution_fk == data.institution_id,
                                                    Study.accession_number == data.accession_number).limit(2)).scalars().all()
        return found[0] if len(found) == 1 else None
    return None


def _find_report(session: Session, data: ReportInput) -> Report | None:
    query = select(Report).where(Report.institution_fk == data.institution_id)
    if data.accession_number:
        query = query.where(Report.accession_number == data.accession_number)
    elif data.study_uid:
        query = query.where(Report.study_uid == data.study_uid)
    else:
        return None
    return session.execute(query.order_by(Report.id.desc()).limit(1).with_for_update()).scalar_one_or_none()


def _next_status(current: Status | None, wanted: Status) -> Status:
    if wanted not in NEXT[current]:
        raise ReportConflict(f"a {wanted.value} version cannot follow a {current.value if current else 'new'} report")
    if wanted is S.FINAL and current in (S.FINAL, S.AMENDED):
        return S.AMENDED
    return wanted


def _add_version(session: Session, report: Report, data: ReportInput, number: int) -> None:
    session.add(ReportVersion(report_fk=report.id, version=number, status=data.status.value, findings=data.findings,
                              impression=data.impression, author=data.author[:200], verifier=data.verifier[:200],
                              observed_at=data.observed_at, created_at=utcnow(), source=data.source.value,
                              source_ref=data.source_ref[:200], pdf_sop_uid=data.pdf_sop_uid))


def _new_report(session: Session, data: ReportInput) -> Report:
    status = _next_status(None, data.status)
    study = _find_study(session, data)
    now = utcnow()
    report = Report(institution_fk=data.institution_id, study_fk=study.id if study else None,
                    accession_number=data.accession_number[:64] or (study.accession_number if study else ""),
                    study_uid=data.study_uid or (study.study_uid if study else ""),
                    patient_id=data.patient_id[:64] or (study.patient_id if study else ""), current_version=1,
                    status=status.value, patient_class=data.patient_class, created_at=now, updated_at=now)
    session.add(report)
    session.flush()
    _add_version(session, report, replace(data, status=status), 1)
    events.report_changed(session, report)
    return report


def _append(session: Session, report: Report, data: ReportInput) -> None:
    status = _next_status(Status(report.status), data.status)
    report.current_version += 1
    report.status, report.updated_at = status.value, utcnow()
    if data.patient_class:
        report.patient_class = data.patient_class
    if not report.study_uid and data.study_uid:
        report.study_uid = data.study_uid
    if report.study_fk is None:
        study = _find_study(session, replace(data, accession_number=report.accession_number,
                                             study_uid=report.study_uid))
        if study is not None:
            report.study_fk, report.study_uid = study.id, study.study_uid
    _add_version(session, report, replace(data, status=status), report.current_version)
    events.report_changed(session, report)


def receive(sessions: sessionmaker[Session], data: ReportInput) -> ReportView:
    """Store a report version from a sender (HL7, DICOM): a new report, or the next version of the exam's report.

    Idempotent for a repeated delivery (same source and ``source_ref``, e.g. an HL7 message resent
    because its ACK was lost): the existing report is returned unchanged.

    Raises
    ------
    ReportConflict
        The status does not follow the report's current one (:data:`NEXT`).
    """
    with write_session(sessions) as session:
        report = _find_report(session, data)
        if report is None:
            report = _new_report(session, data)
            session.commit()
            return _view(session, report, created=True)
        if data.source_ref and session.execute(select(ReportVersion.id).where(
                ReportVersion.report_fk == report.id, ReportVersion.source == data.source.value,
                ReportVersion.source_ref == data.source_ref[:200])).first() is not None:
            return _view(session, report)
        _append(session, report, data)
        session.commit()
        return _view(session, report)


def create(sessions: sessionmaker[Session], data: ReportInput) -> ReportView:
    """A new report (API). Raises :class:`ReportConflict` when the exam has one already (amend that instead)."""
    with write_session(sessions) as session:
        existing = _find_report(session, data)
        if existing is not None:
            raise ReportConflict(f"the exam has a report already (id {existing.id}): amend it")
        report = _new_report(session, data)
        session.commit()
        return _view(session, report, created=True)


def amend(sessions: sessionmaker[Session], report_id: int, data: ReportInput, scope: Scope) -> ReportView:
    """Add a version to report ``report_id`` if ``scope`` may see it (:class:`NotFound` otherwise)."""
    with write_session(sessions) as session:
        report = session.execute(select(Report).where(Report.id == report_id, visible_report(scope))
                                 .with_for_update()).scalar_one_or_none()
        if report is None:
            raise NotFound("no such report")
        _append(session, report, data)
        session.commit()
        return _view(session, report)


def link_study(sessions: sessionmaker[Session], study_uid: str) -> int:
    """Link the unlinked reports of study ``study_uid`` (same institution; by UID or accession); return how many.

    Called for every stored instance, so the common case (nothing to link) is one indexed read.
    """
    with sessions() as session:
        study = session.execute(select(Study.id, Study.institution_fk, Study.accession_number)
                                .where(Study.study_uid == study_uid)).one_or_none()
        if study is None or study.institution_fk is None:
            return 0
        match = Report.study_uid == study_uid
        if study.accession_number:
            match = or_(match, Report.accession_number == study.accession_number)
        pending = select(Report.id).where(Report.institution_fk == study.institution_fk, Report.study_fk.is_(None),
                                          match, or_(Report.study_uid == "", Report.study_uid == study_uid))
        if session.execute(pending.limit(1)).first() is None:
            return 0
    with write_session(sessions) as session:
        rows = session.execute(select(Report).where(Report.id.in_(pending)).with_for_update()).scalars().all()
        for report in rows:
            report.study_fk, report.study_uid = study.id, study_uid
            events.report_changed(session, report)
        session.commit()
        return len(rows)


def report_institution(sessions: sessionmaker[Session], study_uid: str, scope: Scope) -> int | None:
    """The institution a new report of study ``study_uid`` belongs to: the study's, when it is in the archive
    and ``scope`` may see it (:class:`NotFound` when it may not); None when the study is not (yet) stored."""
    if not study_uid:
        return None
    with sessions() as session:
        study = session.execute(select(Study.id, Study.institution_fk).where(Study.study_uid == study_uid)).one_or_none()
        if study is None:
            return None
        visible = session.execute(select(Study.id).where(Study.id == study.id, visible_study(scope))).first()
    if visible is None:
        raise NotFound("no such study")
    owner: int | None = study.institution_fk
    return owner


# --- reading ---------------------------------------------------------------------------------------------------------


def visible_report(scope: Scope) -> ColumnElement[bool]:
    """Reports ``scope`` may read: those of a visible study; unlinked ones of its own institution."""
    if scope.everything:
        return Report.id.is_not(None)
    linked = and_(Report.study_fk.is_not(None),
                  exists(select(Study.id).where(Study.id == Report.study_fk, visible_study(scope))))
    own_unlinked = and_(Report.study_fk.is_(None), Report.institution_fk == scope.institution_id)
    return or_(linked, own_unlinked)


def get(sessions: sessionmaker[Session], report_id: int, scope: Scope) -> ReportView:
    with sessions() as session:
        report = session.execute(select(Report).where(Report.id == report_id, visible_report(scope))).scalar_one_or_none()
        if report is None:
            raise NotFound("no such report")
        return _view(session, report)


def history(sessions: sessionmaker[Session], report_id: int, scope: Scope) -> tuple[ReportView, list[VersionView]]:
    """The report and every version, oldest first."""
    with sessions() as session:
        report = session.execute(select(Report).where(Report.id == report_id, visible_report(scope))).scalar_one_or_none()
        if report is None:
            raise NotFound("no such report")
        versions = session.execute(select(ReportVersion).where(ReportVersion.report_fk == report.id)
                                   .order_by(ReportVersion.version)).scalars()
        return _view(session, report), [_version_view(v) for v in versions]


def search(sessions: sessionmaker[Session], scope: Scope, *, study_uid: str | None = None,
           accession_number: str | None = None, limit: int = 100) -> list[ReportView]:
    """Visible reports of a study and/or accession number, newest first."""
    query = select(Report).where(visible_report(scope))
    if study_uid:
        query = query.where(Report.study_uid == study_uid)
    if accession_number:
        query = query.where(Report.accession_number == accession_number)
    with sessions() as session:
        rows = session.execute(query.order_by(Report.id.desc()).limit(limit)).scalars().all()
        return [_view(session, r) for r in rows]
