"""Reports (RP, CF-1): create, amend (a new version), read, search, history, and the PDF of a report.

Reading needs ``study:read`` and a report of a study the caller may see (or, while the report waits
for its images, one of the caller's institution); writing needs ``report:write`` (``yunying.api.policy``).
A report the caller may not see answers 404, exactly like a missing one. Every call is audited with
the study UID as subject (``report:<id>`` while unlinked).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, ScopeDep, client_address
from yunying.api.problems import PROBLEM, JsonApiRoute, ProblemError
from yunying.auth import audit
from yunying.auth.access import Principal
from yunying.compose import Archive
from yunying.dicom.parse import valid_uid
from yunying.errors import NotFound
from yunying.index.access import Scope
from yunying.reports import service
from yunying.reports.dicom import pdf_bytes
from yunying.reports.service import ReportInput, ReportView, Source, Status, VersionView

router = APIRouter(prefix="/api/reports", tags=["reports"], route_class=JsonApiRoute)

Text = Annotated[str, Field(max_length=100_000)]
Name = Annotated[str, Field(max_length=200)]


class ReportCreate(BaseModel):
    """A new report for an exam, named by accession number and/or Study Instance UID."""

    model_config = ConfigDict(extra="forbid")

    accession_number: Annotated[str, Field(max_length=64)] = ""
    study_uid: Annotated[str, Field(max_length=64)] = ""
    status: Status
    findings: Text = ""
    impression: Text = ""
    author: Name = ""
    verifier: Name = ""

    @model_validator(mode="after")
    def _names_an_exam(self) -> ReportCreate:
        if not self.accession_number and not self.study_uid:
            raise ValueError("accession_number or study_uid is required")
        if self.study_uid and not valid_uid(self.study_uid):
            raise ValueError("study_uid is not a valid UID")
        return self


class ReportAmend(BaseModel):
    """The next version of a report (the previous versions stay as they were)."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    findings: Text = ""
    impression: Text = ""
    author: Name = ""
    verifier: Name = ""


class ReportVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int = Field(description="1, 2, … in the order the versions were stored")
    status: str = Field(description="preliminary | final | amended | cancelled")
    findings: str
    impression: str
    author: str
    verifier: str
    observed_at: datetime | None = Field(description="the sender's time of the report, when given")
    created_at: datetime = Field(description="when the archive stored this version")
    source: str = Field(description="hl7 | dicom-sr | dicom-pdf | api")
    source_ref: str = Field(description="HL7 facility:control id, SOP Instance UID, or the API user")
    has_pdf: bool


class ReportPublic(BaseModel):
    id: int
    accession_number: str
    study_uid: str
    linked: bool = Field(description="the study is in the archive and linked")
    status: str = Field(description="status of the current version")
    current: ReportVersionPublic
    has_pdf: bool = Field(description="GET /api/reports/{report_id}/pdf answers with a PDF")
    created_at: datetime
    updated_at: datetime


class ReportHistory(BaseModel):
    report: ReportPublic
    versions: list[ReportVersionPublic] = Field(description="oldest first")


class ReportList(BaseModel):
    items: list[ReportPublic] = Field(description="newest first")


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {400: "Body is not JSON", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                    409: "Conflict with the report's workflow", 422: "Invalid request"}
    return {code: {"description": descriptions[code], "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}}} for code in codes}


def _version(v: VersionView) -> ReportVersionPublic:
    return ReportVersionPublic.model_validate(v)


def _public(view: ReportView) -> ReportPublic:
    return ReportPublic(id=view.id, accession_number=view.accession_number, study_uid=view.study_uid,
                        linked=view.linked, status=view.status, current=_version(view.current),
                        has_pdf=view.pdf_sop_uid is not None, created_at=view.created_at, updated_at=view.updated_at)


def _subject(view: ReportView | None, report_id: int | None = None) -> str:
    if view is not None:
        return view.study_uid or f"report:{view.id}"
    return f"report:{report_id}" if report_id is not None else ""


def _audit(archive: Archive, user: Principal, request: Request, action: str, subject: str, outcome: str = "success",
           detail: str = "") -> None:
    audit.record(archive.sessions, actor=user.username, action=action, subject=subject, source=client_address(request),
                 outcome=outcome, detail=detail, role=user.role,
                 institution=audit.institution_code(archive.sessions, user.institution_id))


ReportId = Annotated[int, Path(ge=1, le=2**53 - 1)]


def _for_reports(user: Principal, scope: Scope) -> Scope:
    """Anonymous share visitors read reports only through the patient-space view (identifiers masked)."""
    return Scope(None, None, study_ids=frozenset()) if user.extra.get("anonymous") == "1" else scope


def _read(archive: Archive, user: Principal, request: Request, report_id: int, scope: Scope,
          action: str = "report-read") -> ReportView:
    scope = _for_reports(user, scope)
    try:
        view = service.get(archive.sessions, report_id, scope)
    except NotFound:
        _audit(archive, user, request, action, _subject(None, report_id), "not-found")
        raise
    return view


def _input(user: Principal, body: ReportCreate | ReportAmend, institution_id: int, accession: str = "",
           study_uid: str = "") -> ReportInput:
    return ReportInput(institution_id=institution_id, status=body.status, source=Source.API, accession_number=accession,
                       study_uid=study_uid, findings=body.findings, impression=body.impression,
                       author=body.author or user.username, verifier=body.verifier, source_ref=user.username)


def _create(archive: Archive, user: Principal, request: Request, body: ReportCreate, scope: Scope) -> ReportView:
    try:  # a study in the archive must be visible to the caller; the report then belongs to the study's institution
        institution_id = service.report_institution(archive.sessions, body.study_uid, scope) or user.institution_id
    except NotFound:
        _audit(archive, user, request, "report-write", body.study_uid, "not-found")
        raise
    if institution_id is None:
        raise ProblemError(422, "Invalid request", "the caller belongs to no institution")
    try:
        view = service.create(archive.sessions, _input(user, body, institution_id, body.accession_number, body.study_uid))
    except service.ReportConflict as exc:
        raise ProblemError(409, "Conflict", str(exc)) from exc
    _audit(archive, user, request, "report-write", _subject(view), detail=f"report {view.id} created ({view.status})")
    return view


@router.post("", operation_id="reports_create", response_model=ReportPublic, status_code=201,
             summary="Create the report of an exam", responses=_problems(400, 401, 403, 404, 409, 422))
async def create_report(body: ReportCreate, request: Request, archive: ArchiveDep, user: CurrentUser,
                        scope: ScopeDep) -> ReportPublic:
    return _public(await run_in_threadpool(_create, archive, user, request, body, scope))


def _amend(archive: Archive, user: Principal, request: Request, report_id: int, body: ReportAmend,
           scope: Scope) -> ReportView:
    current = _read(archive, user, request, report_id, scope, "report-write")
    try:
        view = service.amend(archive.sessions, report_id, _input(user, body, current.institution_id), scope)
    except service.ReportConflict as exc:
        _audit(archive, user, request, "report-write", _subject(current), "refused", str(exc))
        raise ProblemError(409, "Conflict", str(exc)) from exc
    _audit(archive, user, request, "report-write", _subject(view),
           detail=f"report {view.id} version {view.current.version} ({view.status})")
    return view


@router.put("/{report_id}", operation_id="reports_amend", response_model=ReportPublic,
            summary="Amend a report: store its next version", responses=_problems(400, 401, 403, 404, 409, 422))
async def amend_report(report_id: ReportId, body: ReportAmend, request: Request, archive: ArchiveDep,
                       user: CurrentUser, scope: ScopeDep) -> ReportPublic:
    return _public(await run_in_threadpool(_amend, archive, user, request, report_id, body, scope))


def _get(archive: Archive, user: Principal, request: Request, report_id: int, scope: Scope) -> ReportView:
    view = _read(archive, user, request, report_id, scope)
    _audit(archive, user, request, "report-read", _subject(view), detail=f"report {view.id}")
    return view


@router.get("/{report_id}", operation_id="reports_get", response_model=ReportPublic,
            summary="A report (its current version)", responses=_problems(401, 403, 404, 422))
async def get_report(report_id: ReportId, request: Request, archive: ArchiveDep, user: CurrentUser,
                     scope: ScopeDep) -> ReportPublic:
    return _public(await run_in_threadpool(_get, archive, user, request, report_id, scope))


def _history(archive: Archive, user: Principal, request: Request, report_id: int, scope: Scope) -> ReportHistory:
    scope = _for_reports(user, scope)
    try:
        view, versions = service.history(archive.sessions, report_id, scope)
    except NotFound:
        _audit(archive, user, request, "report-read", _subject(None, report_id), "not-found")
        raise
    _audit(archive, user, request, "report-read", _subject(view), detail=f"report {view.id} history")
    return ReportHistory(report=_public(view), versions=[_version(v) for v in versions])


@router.get("/{report_id}/history", operation_id="reports_history", response_model=ReportHistory,
            summary="Every version of a report, oldest first", responses=_problems(401, 403, 404, 422))
async def report_history(report_id: ReportId, request: Request, archive: ArchiveDep, user: CurrentUser,
                         scope: ScopeDep) -> ReportHistory:
    return await run_in_threadpool(_history, archive, user, request, report_id, scope)


def _pdf(archive: Archive, user: Principal, request: Request, report_id: int, scope: Scope) -> bytes:
    view = _read(archive, user, request, report_id, scope)
    if view.pdf_sop_uid is None:
        _audit(archive, user, request, "report-read", _subject(view), "not-found", f"report {view.id}: no PDF")
        raise NotFound("this report has no PDF")
    instance = archive.retrieve.list(scope, view.study_uid, sop_uid=view.pdf_sop_uid)[0]
    data = pdf_bytes(archive.retrieve.dataset(instance))
    _audit(archive, user, request, "report-read", _subject(view), detail=f"report {view.id} PDF")
    return data


@router.get("/{report_id}/pdf", operation_id="reports_pdf", summary="The report's PDF (from its Encapsulated PDF)",
            responses={200: {"content": {"application/pdf": {}}, "description": "the PDF document"},
                       **_problems(401, 403, 404, 422)})
async def report_pdf(report_id: ReportId, request: Request, archive: ArchiveDep, user: CurrentUser,
                     scope: ScopeDep) -> Response:
    data = await run_in_threadpool(_pdf, archive, user, request, report_id, scope)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="report-{report_id}.pdf"'})


def _search(archive: Archive, user: Principal, request: Request, study: str | None, accession: str | None,
            limit: int, scope: Scope) -> ReportList:
    scope = _for_reports(user, scope)
    views = service.search(archive.sessions, scope, study_uid=study, accession_number=accession, limit=limit)
    subject = study or (views[0].study_uid if views and len({v.study_uid for v in views}) == 1 else "")
    _audit(archive, user, request, "report-read", subject or "report-search",
           detail=f"search study={'given' if study else '-'} accession={'given' if accession else '-'}: {len(views)}")
    return ReportList(items=[_public(v) for v in views])


@router.get("", operation_id="reports_list", response_model=ReportList,
            summary="Reports of a study or an accession number (neither: the newest visible reports)",
            responses=_problems(401, 403, 422))
async def list_reports(request: Request, archive: ArchiveDep, user: CurrentUser, scope: ScopeDep,
                       study: Annotated[str | None, Query(max_length=64, description="Study Instance UID")] = None,
                       accession: Annotated[str | None, Query(max_length=64, description="accession number")] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> ReportList:
    return await run_in_threadpool(_search, archive, user, request, study, accession, limit, scope)
