"""The patient-space views for a share visitor (docs/cloudfilm.md §3, §5): who am I, exam list, report.

Same paths and shapes as the patient's: the routes are in :mod:`yunying.api.routes.patient`, which calls
these functions for a ``yy_share`` session. The exams are the
share's, through the visitor's scope; anonymous shares answer without patient identifiers. Every view
is audited (``view``, actor ``share:<id>``, the share creator's identity hash in the detail).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Request
from pydantic import BaseModel, Field

from yunying.api.deps import client_address
from yunying.api.problems import ProblemError
from yunying.auth.access import Principal, scope_of
from yunying.compose import Archive
from yunying.shares import exams as views
from yunying.shares import service

StudyUid = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9.]+$")]


class Me(BaseModel):
    kind: str = Field(description="share (this module); patient for a patient session")
    anonymous: bool
    watermark: str = Field(description="to draw over every image and page of the session")
    exams: int
    expires_at: datetime


class Hospital(BaseModel):
    id: int | None
    name: str


class ReportStatus(BaseModel):
    status: str | None = Field(description="final when a released report exists")


class ExamPublic(BaseModel):
    study_uid: str
    hospital: Hospital
    modality: str
    modalities: list[str]
    date: str = Field(description="YYYYMMDD")
    description: str
    n_images: int
    report: ReportStatus
    films: int = Field(description="sheets of the exam's current film (0 until the film service has made them)")
    hidden: bool


class HospitalCount(BaseModel):
    id: int | None
    name: str
    count: int


class ExamList(BaseModel):
    exams: list[ExamPublic] = Field(description="newest first")
    hospitals: list[HospitalCount]


class ExamReportPublic(BaseModel):
    status: str
    findings: str
    impression: str
    author: str
    verifier: str
    observed_at: datetime | None
    hospital: str
    pdf: str | None = Field(description="URL of the report's PDF; null for anonymous shares")


def is_visitor(user: Principal) -> bool:
    return "share" in user.extra


def _visitor(user: Principal) -> Principal:
    if "share" not in user.extra:  # the patient session's branch is the patient routes'
        raise ProblemError(403, "Forbidden", "you are not allowed to do this")
    return user


def _anonymous(user: Principal) -> bool:
    return user.extra.get("anonymous") == "1"


def share_me(archive: Archive, user: Principal) -> Me:
    found = views.list_exams(archive.sessions, scope_of(user), _anonymous(user))
    return Me(kind="share", anonymous=_anonymous(user), watermark=user.extra.get("watermark", ""), exams=len(found),
              expires_at=datetime.fromisoformat(user.extra["expires_at"]))




def share_exams(archive: Archive, user: Principal, request: Request, f: views.ExamFilter) -> ExamList:
    found = views.list_exams(archive.sessions, scope_of(user), _anonymous(user), f)
    service.audit_view(archive.sessions, user, [e.study_uid for e in found], client_address(request), "exam list")
    counts: dict[tuple[int | None, str], int] = {}
    for e in found:
        counts[(e.hospital_id, e.hospital_name)] = counts.get((e.hospital_id, e.hospital_name), 0) + 1
    return ExamList(
        exams=[ExamPublic(study_uid=e.study_uid, hospital=Hospital(id=e.hospital_id, name=e.hospital_name),
                          modality=next((m for m in e.modalities if m not in ("SR", "PR", "KO", "DOC")),
                                        e.modalities[0] if e.modalities else ""),
                          modalities=list(e.modalities), date=e.date, description=e.description, n_images=e.n_images,
                          report=ReportStatus(status=e.report_status), films=e.films, hidden=False) for e in found],
        hospitals=[HospitalCount(id=i, name=n, count=c) for (i, n), c in counts.items()])




def share_report(archive: Archive, user: Principal, request: Request, study: str) -> ExamReportPublic:
    found = views.exam_report(archive.sessions, scope_of(user), study, _anonymous(user))
    service.audit_view(archive.sessions, user, [study], client_address(request), "report")
    return ExamReportPublic(status=found.status, findings=found.findings, impression=found.impression,
                            author=found.author, verifier=found.verifier, observed_at=found.observed_at,
                            hospital=found.hospital, pdf=f"/api/reports/{found.report_id}/pdf" if found.has_pdf else None)


