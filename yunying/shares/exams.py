"""The patient-space exam list and report (docs/cloudfilm.md §3) for any scope, with anonymity.

Shared by share visitors now (and meant for patient sessions too): what a caller sees is decided by
its :class:`~yunying.index.access.Scope` alone. Only released reports (final, amended) are shown.

**Anonymous** views carry no patient identifiers: the answers have no name, patient ID, birth date or
accession number fields at all, and free text (exam description, findings, impression) has every
identifier of the exam's patient that the index knows (each name component and the whole name, patient
IDs, accession number, birth date in the DICOM and ISO forms) replaced by :data:`MASK`. Report PDFs are
not offered (they are rendered documents with identifiers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from yunying.errors import NotFound
from yunying.film.service import sheet_counts
from yunying.index.access import Scope, visible_study
from yunying.index.models import Institution, Patient, Report, Study
from yunying.reports import service as reports

MASK = "***"
RELEASED = frozenset({"final", "amended"})  # report statuses patients and their visitors may read
MIN_TOKEN = 2  # shorter name parts (initials) are not masked: they would mangle ordinary words


@dataclass(frozen=True)
class ExamFilter:
    q: str = ""  # in the description or the hospital's name
    hospital: int | None = None
    modality: str = ""
    date_from: str = ""  # YYYYMMDD
    date_to: str = ""


@dataclass(frozen=True)
class Exam:
    study_uid: str
    hospital_id: int | None
    hospital_name: str
    modalities: tuple[str, ...]
    date: str
    description: str
    n_images: int
    report_status: str | None  # "final" when a released report exists
    films: int = 0  # sheets of the current film


@dataclass(frozen=True)
class ExamReport:
    study_uid: str
    status: str
    findings: str
    impression: str
    author: str
    verifier: str
    observed_at: datetime | None
    hospital: str
    report_id: int
    has_pdf: bool


def identifiers(patient: Patient | None, study: Study) -> list[str]:
    """Every identifier of the exam's patient the index knows, longest first (masked in anonymous text)."""
    found: set[str] = {study.patient_id, study.accession_number}
    if patient is not None:
        found |= {patient.patient_id, patient.birth_date}
        if len(patient.birth_date) == 8:
            found.add(f"{patient.birth_date[:4]}-{patient.birth_date[4:6]}-{patient.birth_date[6:]}")
        for group in patient.patient_name.split("="):  # alphabetic=ideographic=phonetic
            parts = [p.strip() for p in group.split("^") if p.strip()]
            found |= set(parts) | {"".join(parts), " ".join(parts), " ".join(reversed(parts))}
    return sorted((t for t in found if len(t) >= MIN_TOKEN), key=len, reverse=True)


def redact(text: str, tokens: Iterable[str]) -> str:
    for token in tokens:
        text = re.sub(re.escape(token), MASK, text, flags=re.IGNORECASE)
    return text


def _exams_query(scope: Scope, f: ExamFilter) -> Select[Study, Institution, Patient]:
    query = (select(Study, Institution, Patient).outerjoin(Institution, Institution.id == Study.institution_fk)
             .outerjoin(Patient, Patient.id == Study.patient_fk).where(visible_study(scope)))
    if f.hospital is not None:
        query = query.where(Study.institution_fk == f.hospital)
    if f.modality:
        query = query.where(Study.modalities.contains(f"\\{f.modality.upper()}\\", autoescape=True))
    if f.date_from:
        query = query.where(Study.study_date >= f.date_from)
    if f.date_to:
        query = query.where(Study.study_date <= f.date_to)
    if f.q:
        needle = f"%{f.q.lower()}%"
        query = query.where(or_(func.lower(Study.study_description).like(needle),
                                func.lower(Institution.name).like(needle)))
    return query.order_by(Study.study_date.desc(), Study.study_time.desc(), Study.id.desc())


def list_exams(sessions: sessionmaker[Session], scope: Scope, anonymous: bool, f: ExamFilter = ExamFilter(),
               limit: int = 500) -> list[Exam]:
    """The exams ``scope`` may see, newest first."""
    with sessions() as session:
        rows = session.execute(_exams_query(scope, f).limit(limit)).all()
        released = set(session.execute(select(Report.study_fk).where(
            Report.study_fk.in_([s.id for s, _i, _p in rows]), Report.status.in_(RELEASED))).scalars())
        films = sheet_counts(session, (s.id for s, _i, _p in rows))
    exams = []
    for study, institution, patient in rows:
        description = redact(study.study_description, identifiers(patient, study)) if anonymous \
            else study.study_description
        exams.append(Exam(study.study_uid, institution.id if institution else None, institution.name if institution else "",
                          tuple(m for m in study.modalities.split("\\") if m), study.study_date, description,
                          study.n_instances, "final" if study.id in released else None, films.get(study.id, 0)))
    return exams


def exam_report(sessions: sessionmaker[Session], scope: Scope, study_uid: str, anonymous: bool) -> ExamReport:
    """The released report of a visible exam; NotFound when the exam is not visible or has none released."""
    with sessions() as session:
        row = session.execute(select(Study, Institution, Patient)
                              .outerjoin(Institution, Institution.id == Study.institution_fk)
                              .outerjoin(Patient, Patient.id == Study.patient_fk)
                              .where(Study.study_uid == study_uid, visible_study(scope))).first()
    if row is None:
        raise NotFound("no such exam")
    study, institution, patient = row
    found = [r for r in reports.search(sessions, scope, study_uid=study_uid) if r.status in RELEASED]
    if not found:
        raise NotFound("no report yet")
    report = found[0]
    text = report.current
    tokens = identifiers(patient, study) if anonymous else []
    return ExamReport(study_uid, report.status, redact(text.findings, tokens), redact(text.impression, tokens),
                      text.author, text.verifier, text.observed_at, institution.name if institution else "",
                      report.id, report.pdf_sop_uid is not None and not anonymous)
