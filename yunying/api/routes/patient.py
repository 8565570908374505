"""The patient space (docs/cloudfilm.md §3): a verified patient's exams, reports, hiding, access log, blocks, logout.

Every route needs ``patient:self`` (``yunying.api.policy``) and a patient session (cookie
``yy_patient``); unsafe ones the session's ``X-CSRF-Token``. The three views a share visitor has too
(``me``, ``exams``, the report: ``cloudfilm:view``) answer for a ``yy_share`` session through
:mod:`yunying.api.routes.share_views`, scoped to the share. Every call is audited with the patient
as actor (``patient:<hash8>``) and the exam's Study Instance UID as subject where there is one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, client_address, patient_cookie
from yunying.api.problems import JsonApiRoute, ProblemError
from yunying.api.routes import share_views
from yunying.api.routes.reports import _problems
from yunying.auth import audit
from yunying.auth.access import Principal, identity_of
from yunying.cloudfilm import sessions as patient_sessions
from yunying.cloudfilm import space
from yunying.compose import Archive
from yunying.errors import NotFound
from yunying.shares import exams as share_exams

router = APIRouter(prefix="/api/patient", tags=["patient"], route_class=JsonApiRoute)
StudyUid = Annotated[str, Path(pattern=r"^[0-9.]{1,64}$", description="Study Instance UID")]
DATE = r"^(\d{8})?$"


def _patient(user: CurrentUser) -> Principal:
    if not identity_of(user):
        raise ProblemError(403, "Forbidden", "you are not allowed to do this")
    return user


PatientDep = Annotated[Principal, Depends(_patient)]


def _patient_or_visitor(user: CurrentUser) -> Principal:
    if share_views.is_visitor(user):
        return user
    return _patient(user)


ViewerDep = Annotated[Principal, Depends(_patient_or_visitor)]


def _audit(archive: Archive, user: Principal, request: Request, action: str, subject: str = "",
           outcome: str = "success", detail: str = "") -> None:
    audit.record(archive.sessions, actor=user.username, action=action, subject=subject, source=client_address(request),
                 outcome=outcome, detail=detail, role=user.role)


class Me(BaseModel):
    kind: str = Field(description="patient (a verified patient) or share (a visitor of a patient's share)")
    display_name: str = Field("", description="masked, e.g. 张* (empty for a share visitor)")
    anonymous: bool = Field(False, description="an anonymous share: no identifiers anywhere")
    watermark: str = Field(description="to draw over every image and page of the session")
    exams: int
    expires_at: datetime
    csrf_token: str | None = Field(None, description="a patient: send as X-CSRF-Token with every POST/PUT/DELETE")


def _me(archive: Archive, user: Principal, request: Request) -> Me:
    if share_views.is_visitor(user):
        return Me(**share_views.share_me(archive, user).model_dump())
    view: patient_sessions.PatientSessionView = request.state.patient_session
    found = space.exams(archive.sessions, identity_of(user))
    _audit(archive, user, request, "patient-me", detail=f"{len(found)} exams")
    opened = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Me(kind="patient", display_name=view.display_name, exams=len([e for e in found if not e.hidden]),
              watermark=f"本人查看 · {view.display_name} · {opened}", expires_at=view.expires_at,
              csrf_token=view.csrf_token)


@router.get("/me", operation_id="patient_me", response_model=Me, summary="Who the patient-space caller is",
            responses=_problems(401, 403))
async def me(request: Request, archive: ArchiveDep, user: ViewerDep) -> Me:
    return await run_in_threadpool(_me, archive, user, request)


def _subjects(uids: list[str], limit: int = 200) -> str:
    """Whole UIDs, comma-separated, as many as fit the audit subject."""
    taken: list[str] = []
    for uid in uids:
        if len(",".join([*taken, uid])) > limit:
            break
        taken.append(uid)
    return ",".join(taken)


class HospitalRef(BaseModel):
    id: int | None
    name: str


class ReportState(BaseModel):
    status: str | None


class ExamPublic(BaseModel):
    study_uid: str
    hospital: HospitalRef
    modality: str
    modalities: list[str]
    date: str = Field(description="YYYYMMDD")
    description: str
    n_images: int
    report: ReportState
    films: int = Field(description="sheets of the exam's current film (0 until the film service has made them)")
    hidden: bool


class HospitalGroup(HospitalRef):
    count: int


class ExamList(BaseModel):
    exams: list[ExamPublic] = Field(description="newest first")
    hospitals: list[HospitalGroup]


def _exams(archive: Archive, user: Principal, request: Request, flt: space.ExamFilter) -> ExamList:
    if share_views.is_visitor(user):
        shared = share_views.share_exams(archive, user, request, share_exams.ExamFilter(
            flt.q, flt.hospital, flt.modality, flt.date_from, flt.date_to))
        return ExamList.model_validate(shared.model_dump())
    found = space.exams(archive.sessions, identity_of(user), flt)
    _audit(archive, user, request, "patient-exams", _subjects([e.study_uid for e in found]),
           detail=f"{len(found)} exams")
    return ExamList(
        exams=[ExamPublic(study_uid=e.study_uid, hospital=HospitalRef(id=e.hospital.id, name=e.hospital.name),
                          modality=e.modality, modalities=e.modalities, date=e.date, description=e.description,
                          n_images=e.n_images, report=ReportState(status=e.report_status), films=e.films, hidden=e.hidden)
               for e in found],
        hospitals=[HospitalGroup(id=h.id, name=h.name, count=n) for h, n in space.hospitals(found)])


@router.get("/exams", operation_id="patient_exams", response_model=ExamList,
            summary="The patient's exams at every hospital, with hospital groups", responses=_problems(401, 403, 422))
async def exams(request: Request, archive: ArchiveDep, user: ViewerDep,
                q: Annotated[str, Query(max_length=64)] = "", hospital: Annotated[int | None, Query(ge=1)] = None,
                modality: Annotated[str, Query(pattern=r"^[A-Za-z]{0,16}$")] = "",
                date_from: Annotated[str, Query(alias="from", pattern=DATE, description="YYYYMMDD")] = "",
                date_to: Annotated[str, Query(alias="to", pattern=DATE, description="YYYYMMDD")] = "") -> ExamList:
    flt = space.ExamFilter(q.strip(), hospital, modality, date_from, date_to)
    return await run_in_threadpool(_exams, archive, user, request, flt)


class PatientReportPublic(BaseModel):
    status: str
    findings: str
    impression: str
    author: str
    verifier: str
    observed_at: datetime | None
    hospital: str
    pdf: str | None = Field(description="URL of the report's PDF, when it has one")


def _report(archive: Archive, user: Principal, request: Request, study: str) -> PatientReportPublic:
    if share_views.is_visitor(user):
        return PatientReportPublic.model_validate(share_views.share_report(archive, user, request, study).model_dump())
    try:
        found = space.report(archive.sessions, identity_of(user), study)
    except NotFound:
        _audit(archive, user, request, "report-read", study, "not-found")
        raise
    _audit(archive, user, request, "report-read", study, detail=f"report {found.report_id}")
    return PatientReportPublic(status=found.status, findings=found.findings, impression=found.impression,
                               author=found.author, verifier=found.verifier, observed_at=found.observed_at,
                               hospital=found.hospital,
                               pdf=f"/api/reports/{found.report_id}/pdf" if found.has_pdf else None)


@router.get("/exams/{study}/report", operation_id="patient_report", response_model=PatientReportPublic,
            summary="The current version of the exam's report", responses=_problems(401, 403, 404, 422))
async def report(study: StudyUid, request: Request, archive: ArchiveDep, user: ViewerDep) -> PatientReportPublic:
    return await run_in_threadpool(_report, archive, user, request, study)


def _hide(archive: Archive, user: Principal, request: Request, study: str, hidden: bool) -> None:
    action = "patient-hide" if hidden else "patient-unhide"
    try:
        space.set_hidden(archive.sessions, identity_of(user), study, hidden)
    except NotFound:
        _audit(archive, user, request, action, study, "not-found")
        raise
    _audit(archive, user, request, action, study)


@router.post("/exams/{study}/hide", operation_id="patient_hide", status_code=204, response_class=Response,
             summary="Hide an exam (from the patient's views and from new shares)", responses=_problems(401, 403, 404))
async def hide(study: StudyUid, request: Request, archive: ArchiveDep, user: PatientDep) -> Response:
    await run_in_threadpool(_hide, archive, user, request, study, True)
    return Response(status_code=204)


@router.post("/exams/{study}/unhide", operation_id="patient_unhide", status_code=204, response_class=Response,
             summary="Show a hidden exam again", responses=_problems(401, 403, 404))
async def unhide(study: StudyUid, request: Request, archive: ArchiveDep, user: PatientDep) -> Response:
    await run_in_threadpool(_hide, archive, user, request, study, False)
    return Response(status_code=204)


class AccessEntryPublic(BaseModel):
    seq: int = Field(description="pass as `before` for the next page")
    at: datetime
    who: str
    institution: str
    action: str
    exam: str = Field(description="Study Instance UID, or empty for the patient's own other actions")


class AccessLog(BaseModel):
    entries: list[AccessEntryPublic] = Field(description="newest first")


def _access_log(archive: Archive, user: Principal, request: Request, limit: int, before: int | None) -> AccessLog:
    found = space.access_log(archive.sessions, identity_of(user), user.username, limit=limit, before=before)
    _audit(archive, user, request, "patient-access-log", detail=f"{len(found)} entries")
    return AccessLog(entries=[AccessEntryPublic(seq=e.seq, at=e.at, who=e.who, institution=e.institution,
                                                action=e.action, exam=e.exam) for e in found])


@router.get("/access-log", operation_id="patient_access_log", response_model=AccessLog,
            summary="Who accessed the patient's exams, and the patient's own actions (from the audit trail)",
            responses=_problems(401, 403, 422))
async def access_log(request: Request, archive: ArchiveDep, user: PatientDep,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50,
                     before: Annotated[int | None, Query(ge=1)] = None) -> AccessLog:
    return await run_in_threadpool(_access_log, archive, user, request, limit, before)


class BlockPublic(BaseModel):
    id: int
    institution_id: int | None
    institution: str
    username: str
    created_at: datetime


class BlockList(BaseModel):
    blocks: list[BlockPublic]


class BlockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    institution_id: Annotated[int | None, Field(ge=1)] = None
    username: Annotated[str, Field(max_length=64)] = ""

    @model_validator(mode="after")
    def _one_target(self) -> BlockCreate:
        if (self.institution_id is None) == (not self.username):
            raise ValueError("give institution_id or username")
        return self


def _public_block(b: space.Block) -> BlockPublic:
    return BlockPublic(id=b.id, institution_id=b.institution_id, institution=b.institution, username=b.username,
                       created_at=b.created_at)


def _blocks(archive: Archive, user: Principal, request: Request) -> BlockList:
    found = space.blocks(archive.sessions, identity_of(user))
    _audit(archive, user, request, "patient-blocks", detail=f"{len(found)} blocks")
    return BlockList(blocks=[_public_block(b) for b in found])


@router.get("/blocks", operation_id="patient_blocks", response_model=BlockList,
            summary="Hospitals and doctors the patient has cut off (CF-8)", responses=_problems(401, 403))
async def blocks(request: Request, archive: ArchiveDep, user: PatientDep) -> BlockList:
    return await run_in_threadpool(_blocks, archive, user, request)


def _add_block(archive: Archive, user: Principal, request: Request, body: BlockCreate) -> BlockPublic:
    target = f"user:{body.username}" if body.username else f"institution:{body.institution_id}"
    try:
        made = space.add_block(archive.sessions, identity_of(user), institution_id=body.institution_id,
                               username=body.username)
    except space.UnknownTarget as exc:
        _audit(archive, user, request, "patient-block", target, "not-found")
        raise ProblemError(404, "Not Found", str(exc)) from None
    _audit(archive, user, request, "patient-block", target)
    return _public_block(made)


@router.post("/blocks", operation_id="patient_block_add", response_model=BlockPublic, status_code=201,
             summary="Revoke a hospital's or a doctor's access to the patient's exams (CF-8)",
             responses=_problems(400, 401, 403, 404, 422))
async def add_block(body: BlockCreate, request: Request, archive: ArchiveDep, user: PatientDep) -> BlockPublic:
    return await run_in_threadpool(_add_block, archive, user, request, body)


def _remove_block(archive: Archive, user: Principal, request: Request, block_id: int) -> None:
    try:
        space.remove_block(archive.sessions, identity_of(user), block_id)
    except NotFound:
        _audit(archive, user, request, "patient-unblock", f"block:{block_id}", "not-found")
        raise
    _audit(archive, user, request, "patient-unblock", f"block:{block_id}")


@router.delete("/blocks/{block_id}", operation_id="patient_block_remove", status_code=204, response_class=Response,
               summary="Lift a block", responses=_problems(401, 403, 404, 422))
async def remove_block(block_id: Annotated[int, Path(ge=1, le=2**53 - 1)], request: Request, archive: ArchiveDep,
                       user: PatientDep) -> Response:
    await run_in_threadpool(_remove_block, archive, user, request, block_id)
    return Response(status_code=204)


def _logout(archive: Archive, user: Principal, request: Request) -> None:
    if user.session_id:
        patient_sessions.logout(archive.sessions, user.session_id)
    _audit(archive, user, request, "patient-logout")


@router.post("/logout", operation_id="patient_logout", status_code=204, response_class=Response,
             summary="End the patient session", responses=_problems(401, 403))
async def logout(request: Request, archive: ArchiveDep, user: PatientDep) -> Response:
    await run_in_threadpool(_logout, archive, user, request)
    return Response(status_code=204, headers={"Set-Cookie": patient_cookie(archive.settings, request, "")})
