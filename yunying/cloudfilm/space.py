"""The patient space (CF-3, CF-8): a verified patient's exams across hospitals, hide/unhide, access log, blocks.

Every function takes the patient's identity (keyed hashes); what the patient may see is the scope
clause of ``yunying.index.access.patient_exams``. The list also shows exams the patient hid (marked,
so they can be unhidden); everything else about a hidden exam answers like a missing one. Auditing
is the adapter's job, as for every read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from yunying.cloudfilm.tokens import first_modality
from yunying.errors import NotFound, YunyingError
from yunying.film.service import sheet_counts
from yunying.index.access import Scope, hidden_by, patient_exams
from yunying.index.db import write_session
from yunying.index.models import AuditEvent, CloudfilmSetting, Institution, PatientBlock, PatientHidden, Report, Study, User
from yunying.reports import service as reports


@dataclass(frozen=True)
class Hospital:
    id: int | None
    name: str


@dataclass(frozen=True)
class Exam:
    study_uid: str
    hospital: Hospital
    modality: str
    modalities: list[str]
    date: str
    description: str
    n_images: int
    report_status: str | None
    hidden: bool
    films: int = 0  # sheets of the current film


@dataclass(frozen=True)
class ExamFilter:
    q: str = ""
    hospital: int | None = None
    modality: str = ""
    date_from: str = ""  # YYYYMMDD
    date_to: str = ""


def _hospital_name() -> ColumnElement[str]:
    shown = select(CloudfilmSetting.display_name).where(CloudfilmSetting.institution_fk == Study.institution_fk,
                                                        CloudfilmSetting.display_name != "").scalar_subquery()
    return func.coalesce(shown, Institution.name, "")


def exams(sessions: sessionmaker[Session], identity: frozenset[str], flt: ExamFilter = ExamFilter(),
          limit: int = 500) -> list[Exam]:
    """The patient's exams at every hospital, newest first (hidden ones included and marked)."""
    name = _hospital_name()
    status = (select(Report.status).where(Report.study_fk == Study.id).order_by(Report.id.desc()).limit(1)
              .scalar_subquery())
    query = (select(Study, Institution.id, name, status, hidden_by(identity))
             .outerjoin(Institution, Institution.id == Study.institution_fk)
             .where(patient_exams(identity, include_hidden=True)))
    if flt.hospital is not None:
        query = query.where(Study.institution_fk == flt.hospital)
    if flt.modality:
        query = query.where(Study.modalities.contains(f"\\{flt.modality.upper()}\\"))
    if flt.date_from:
        query = query.where(Study.study_date >= flt.date_from)
    if flt.date_to:
        query = query.where(Study.study_date <= flt.date_to)
    if flt.q:
        words = f"%{flt.q.lower()}%"
        query = query.where(or_(func.lower(Study.study_description).like(words), func.lower(Study.modalities).like(words),
                                func.lower(name).like(words)))
    query = query.order_by(Study.study_date.desc(), Study.study_time.desc(), Study.id.desc()).limit(limit)
    with sessions() as session:
        rows = session.execute(query).all()
        films = sheet_counts(session, (row[0].id for row in rows))
        return [Exam(study.study_uid, Hospital(inst_id, hospital or ""), first_modality(study.modalities),
                     [m for m in study.modalities.split("\\") if m], study.study_date, study.study_description,
                     study.n_instances, report_status, bool(hidden), films.get(study.id, 0))
                for study, inst_id, hospital, report_status, hidden in rows]


def hospitals(found: list[Exam]) -> list[tuple[Hospital, int]]:
    """The hospitals of ``found`` with their number of exams, most exams first."""
    counts: dict[int | None, tuple[Hospital, int]] = {}
    for exam in found:
        hospital, n = counts.get(exam.hospital.id, (exam.hospital, 0))
        counts[exam.hospital.id] = (hospital, n + 1)
    return sorted(counts.values(), key=lambda item: (-item[1], item[0].name))


def _study_id(session: Session, identity: frozenset[str], study_uid: str, include_hidden: bool) -> int:
    found = session.execute(select(Study.id).where(Study.study_uid == study_uid,
                                                   patient_exams(identity, include_hidden=include_hidden))).scalar()
    if found is None:
        raise NotFound("no such exam")
    return int(found)


@dataclass(frozen=True)
class PatientReport:
    status: str
    findings: str
    impression: str
    author: str
    verifier: str
    observed_at: datetime | None
    hospital: str
    report_id: int
    has_pdf: bool


def report(sessions: sessionmaker[Session], identity: frozenset[str], study_uid: str) -> PatientReport:
    """The current version of the exam's report. NotFound: not the patient's exam, hidden, or no report yet."""
    found = reports.search(sessions, Scope(None, None, identity_hashes=identity), study_uid=study_uid, limit=1)
    if not found:
        raise NotFound("no report for this exam")
    view = found[0]
    with sessions() as session:
        name = session.execute(select(_hospital_name()).select_from(Study)
                               .outerjoin(Institution, Institution.id == Study.institution_fk)
                               .where(Study.study_uid == study_uid)).scalar() or ""
    current = view.current
    return PatientReport(view.status, current.findings, current.impression, current.author, current.verifier,
                         current.observed_at, name, view.id, view.pdf_sop_uid is not None)


def set_hidden(sessions: sessionmaker[Session], identity: frozenset[str], study_uid: str, hidden: bool) -> None:
    """Hide (or unhide) one of the patient's exams. NotFound when it is not theirs."""
    with write_session(sessions) as session:
        study_id = _study_id(session, identity, study_uid, include_hidden=True)
        session.execute(delete(PatientHidden).where(PatientHidden.study_fk == study_id,
                                                    PatientHidden.identity_hash.in_(sorted(identity))))
        if hidden:
            session.add_all([PatientHidden(identity_hash=h, study_fk=study_id) for h in sorted(identity)])
        session.commit()


# --- access log -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessEntry:
    seq: int
    at: datetime
    who: str
    institution: str  # the institution's name (code when unknown)
    action: str
    exam: str  # study UID, or "" for the patient's own non-exam actions


def access_log(sessions: sessionmaker[Session], identity: frozenset[str], username: str, *, limit: int = 50,
               before: int | None = None) -> list[AccessEntry]:
    """Audit entries naming one of the patient's exams (hidden ones too) or made by the patient; newest first."""
    with sessions() as session:
        uids = list(session.execute(select(Study.study_uid).where(patient_exams(identity, include_hidden=True)))
                    .scalars())
        query = select(AuditEvent, Institution.name).outerjoin(Institution, Institution.code == AuditEvent.actor_institution)
        query = query.where(or_(AuditEvent.subject.in_(uids), AuditEvent.actor == username))
        if before is not None:
            query = query.where(AuditEvent.seq < before)
        rows = session.execute(query.order_by(AuditEvent.seq.desc()).limit(limit))
        return [AccessEntry(e.seq or 0, e.at, e.actor, name or e.actor_institution, e.action,
                            e.subject if e.subject in uids else "") for e, name in rows]


# --- blocks (CF-8) ----------------------------------------------------------------------------------------------


class UnknownTarget(YunyingError):
    """No such institution or user to block."""


@dataclass(frozen=True)
class Block:
    id: int
    institution_id: int | None
    institution: str
    username: str
    created_at: datetime


def blocks(sessions: sessionmaker[Session], identity: frozenset[str]) -> list[Block]:
    query = (select(PatientBlock, Institution.name, User.username)
             .outerjoin(Institution, Institution.id == PatientBlock.institution_fk)
             .outerjoin(User, User.id == PatientBlock.user_fk)
             .where(PatientBlock.identity_hash.in_(sorted(identity))).order_by(PatientBlock.id))
    seen: dict[tuple[int | None, str], Block] = {}
    with sessions() as session:
        for row, institution, username in session.execute(query):
            seen.setdefault((row.institution_fk, username or ""), Block(row.id, row.institution_fk, institution or "",
                                                                        username or "", row.created_at))
    return list(seen.values())


def add_block(sessions: sessionmaker[Session], identity: frozenset[str], *, institution_id: int | None = None,
              username: str = "") -> Block:
    """Revoke a hospital's (``institution_id``) or a doctor's (``username``) access to the patient's exams."""
    with write_session(sessions) as session:
        user_id: int | None = None
        if username:
            user_id = session.execute(select(User.id).where(User.username == username)).scalar()
            if user_id is None:
                raise UnknownTarget("no such user")
        elif institution_id is None or session.get(Institution, institution_id) is None:
            raise UnknownTarget("no such institution")
        rows = [PatientBlock(identity_hash=h, institution_fk=None if username else institution_id, user_fk=user_id)
                for h in sorted(identity)]
        session.add_all(rows)
        session.commit()
        name = session.get(Institution, institution_id).name if not username and institution_id else ""  # type: ignore[union-attr]
        return Block(rows[0].id, None if username else institution_id, name, username, rows[0].created_at)


def remove_block(sessions: sessionmaker[Session], identity: frozenset[str], block_id: int) -> None:
    """Lift a block (all its rows for the identity). NotFound when it is not the patient's."""
    with write_session(sessions) as session:
        row = session.execute(select(PatientBlock).where(PatientBlock.id == block_id,
                                                         PatientBlock.identity_hash.in_(sorted(identity)))).scalar()
        if row is None:
            raise NotFound("no such block")
        session.execute(delete(PatientBlock).where(PatientBlock.identity_hash.in_(sorted(identity)),
                                                   PatientBlock.institution_fk.is_(row.institution_fk)
                                                   if row.institution_fk is None
                                                   else PatientBlock.institution_fk == row.institution_fk,
                                                   PatientBlock.user_fk.is_(None) if row.user_fk is None
                                                   else PatientBlock.user_fk == row.user_fk))
        session.commit()
