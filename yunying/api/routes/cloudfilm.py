"""Cloud film (docs/cloudfilm.md §1, §2, §8): open a link, one-time code, verify; cover sheet and SMS; settings.

The three ``/api/cloudfilm/open/{token}`` routes are public (rate-limited per address by
``yunying.api.policy.RATE_LIMITED``, and per token by ``yunying.cloudfilm.verify``) and audited with
the exam's Study Instance UID as subject, so the patient's access log shows every attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, ScopeDep, client_address, patient_cookie
from yunying.api.problems import JsonApiRoute, ProblemError
from yunying.api.routes.reports import _problems
from yunying.auth import audit
from yunying.auth.access import Permission, Principal
from yunying.cloudfilm import hospital, staff, tokens, verify
from yunying.cloudfilm import sessions as patient_sessions
from yunying.compose import Archive
from yunying.errors import NotFound
from yunying.index.access import Scope
from yunying.notify import service as notify

router = APIRouter(tags=["cloud film"], route_class=JsonApiRoute)

Token = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,64}$", description="the token of the QR code / SMS link")]
StudyUid = Annotated[str, Path(pattern=r"^[0-9.]{1,64}$", description="Study Instance UID")]
NEXT_PAGE = "/m/exams"


def _audit(archive: Archive, request: Request, *, actor: str, action: str, subject: str, outcome: str = "success",
           detail: str = "", role: str = "", institution: str = "") -> None:
    audit.record(archive.sessions, actor=actor, action=action, subject=subject, source=client_address(request),
                 outcome=outcome, detail=detail, role=role, institution=institution)


def _staff_audit(archive: Archive, user: Principal, request: Request, action: str, subject: str,
                 outcome: str = "success", detail: str = "") -> None:
    _audit(archive, request, actor=user.username, action=action, subject=subject, outcome=outcome, detail=detail,
           role=user.role, institution=audit.institution_code(archive.sessions, user.institution_id))


def _token_error(exc: Exception) -> ProblemError:
    if isinstance(exc, tokens.TokenGone):
        return ProblemError(410, "Gone", str(exc))
    if isinstance(exc, verify.Locked):
        return ProblemError(429, "Too Many Requests", str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, verify.NoPhone):
        return ProblemError(409, "Conflict", str(exc))
    if isinstance(exc, verify.Refused):
        return ProblemError(401, "Unauthorized", str(exc))
    return ProblemError(404, "Not Found", "no such link")


# --- public: open, code, verify --------------------------------------------------------------------------------


class ExamSummary(BaseModel):
    modality: str
    date: str = Field(description="YYYY-MM-DD")


class OpenInfo(BaseModel):
    hospital: str
    brand_color: str
    exam: ExamSummary
    methods: list[str] = Field(description="phone, id_card; empty: no phone on file (ask the hospital)")
    expires_at: datetime


def _open(archive: Archive, request: Request, raw: str) -> OpenInfo:
    with archive.sessions() as session:
        try:
            access = tokens.resolve(session, raw)
        except (NotFound, tokens.TokenGone) as exc:
            outcome = "gone" if isinstance(exc, tokens.TokenGone) else "not-found"
            _audit(archive, request, actor="anonymous", action="cloudfilm-open", subject="", outcome=outcome)
            raise _token_error(exc) from None
        methods = verify.methods(session, access)
        color = hospital.read(session, access.institution_id).brand_color
    _audit(archive, request, actor="anonymous", action="cloudfilm-open", subject=access.study_uid)
    date = access.date
    return OpenInfo(hospital=access.hospital, brand_color=color, methods=methods, expires_at=access.expires_at,
                    exam=ExamSummary(modality=access.modality,
                                     date=f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 else date))


@router.get("/api/cloudfilm/open/{token}", operation_id="cloudfilm_open", response_model=OpenInfo,
            summary="What a cloud-film link opens: the hospital and the exam's modality and date (public)",
            responses=_problems(404, 422) | {410: {"description": "expired, withdrawn, or the service is off"}})
async def open_link(token: Token, request: Request, archive: ArchiveDep) -> OpenInfo:
    return await run_in_threadpool(_open, archive, request, token)


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["phone", "id_card"]
    value: Annotated[str, Field(min_length=1, max_length=32)]


class CodeSent(BaseModel):
    sent_to: str = Field(description="the phone on file, masked (the same answer whether or not the value matched)")
    expires_in: int = Field(description="seconds the code is valid")


def _code(archive: Archive, request: Request, raw: str, body: CodeRequest) -> CodeSent:
    subject = _subject_of(archive, raw)
    try:
        sent = verify.request_code(archive.sessions, archive.fields, raw, body.method, body.value)
    except (NotFound, tokens.TokenGone, verify.Locked, verify.NoPhone) as exc:
        _audit(archive, request, actor="anonymous", action="cloudfilm-code", subject=subject,
               outcome=type(exc).__name__.lower())
        raise _token_error(exc) from None
    _audit(archive, request, actor="anonymous", action="cloudfilm-code", subject=subject,
           outcome="sent" if sent.notification_id else "no-match", detail=f"method {body.method}")
    if sent.notification_id is not None and archive.notifiers is not None and archive.fields is not None:
        notify.deliver(archive.sessions, archive.notifiers, archive.fields, sent.notification_id)
    return CodeSent(sent_to=sent.sent_to, expires_in=sent.expires_in)


def _subject_of(archive: Archive, raw: str) -> str:
    with archive.sessions() as session:
        try:
            return tokens.resolve(session, raw).study_uid
        except (NotFound, tokens.TokenGone):
            return ""


@router.post("/api/cloudfilm/open/{token}/code", operation_id="cloudfilm_code", response_model=CodeSent,
             status_code=202, summary="Send a one-time code to the phone on file (public, rate-limited)",
             responses=_problems(400, 404, 422) | {409: {"description": "no phone on file"},
                                                   410: {"description": "link gone"}, 429: {"description": "locked"}})
async def request_code(token: Token, body: CodeRequest, request: Request, archive: ArchiveDep) -> CodeSent:
    return await run_in_threadpool(_code, archive, request, token, body)


class VerifyRequest(CodeRequest):
    code: Annotated[str, Field(pattern=r"^\s*\d{6}\s*$")]


class Verified(BaseModel):
    next: str = Field(description="where the phone UI goes next")
    csrf_token: str = Field(description="send as X-CSRF-Token with every POST/PUT/DELETE of this patient session")
    expires_at: datetime


def _verify(archive: Archive, request: Request, raw: str, body: VerifyRequest) -> tuple[Verified, str]:
    subject = _subject_of(archive, raw)
    try:
        found = verify.verify_code(archive.sessions, archive.fields, raw, body.method, body.value, body.code)
    except (NotFound, tokens.TokenGone, verify.Locked, verify.Refused) as exc:
        _audit(archive, request, actor="anonymous", action="cloudfilm-verify", subject=subject,
               outcome=type(exc).__name__.lower(), detail=f"method {body.method}")
        raise _token_error(exc) from None
    made = patient_sessions.create(archive.sessions, found.identity, found.display_name, token_id=found.token_id,
                                   source=client_address(request))
    _audit(archive, request, actor=patient_sessions.patient_username(found.identity), action="cloudfilm-verify",
           subject=found.study_uid, detail=f"method {body.method}: patient session", role="patient")
    return Verified(next=NEXT_PAGE, csrf_token=made.csrf_token, expires_at=made.expires_at), made.cookie


@router.post("/api/cloudfilm/open/{token}/verify", operation_id="cloudfilm_verify", response_model=Verified,
             summary="Check the one-time code: a patient session (cookie yy_patient) (public, rate-limited)",
             responses=_problems(400, 401, 404, 422) | {410: {"description": "link gone"},
                                                        429: {"description": "locked (Retry-After)"}})
async def verify_code(token: Token, body: VerifyRequest, request: Request, response: Response,
                      archive: ArchiveDep) -> Verified:
    verified, cookie = await run_in_threadpool(_verify, archive, request, token, body)
    response.headers["Set-Cookie"] = patient_cookie(archive.settings, request, cookie)
    return verified


# --- staff: cover sheet, SMS --------------------------------------------------------------------------------------


def _cover(archive: Archive, user: Principal, request: Request, study: str, scope: Scope) -> staff.PrintedCover:
    try:
        printed = staff.print_cover(archive.sessions, scope, user.institution_id, study,
                                    archive.settings.effective_public_url, user.username)
    except (NotFound, staff.ServiceOff) as exc:
        _staff_audit(archive, user, request, "cloudfilm-cover", study, "not-found" if isinstance(exc, NotFound) else "off")
        if isinstance(exc, staff.ServiceOff):
            raise ProblemError(409, "Conflict", str(exc)) from None
        raise
    _staff_audit(archive, user, request, "cloudfilm-cover", study, detail="cover sheet with a new link")
    return printed


@router.get("/api/studies/{study}/cloudfilm/cover.pdf", operation_id="cloudfilm_cover",
            summary="The exam's cloud-film cover sheet (PDF with the QR code of a new link)",
            responses={200: {"content": {"application/pdf": {}}, "description": "the PDF"},
                       409: {"description": "cloud film is off for this exam"}, **_problems(401, 403, 404)})
async def cover_pdf(study: StudyUid, request: Request, archive: ArchiveDep, user: CurrentUser,
                    scope: ScopeDep) -> Response:
    printed = await run_in_threadpool(_cover, archive, user, request, study, scope)
    return Response(printed.pdf, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="cloudfilm-cover.pdf"', "Cache-Control": "no-store"})


class LinkSent(BaseModel):
    sent_to: str


def _send(archive: Archive, user: Principal, request: Request, study: str, scope: Scope) -> LinkSent:
    with archive.sessions() as session:
        config = tokens.config_of(session) or tokens.CloudfilmConfig(archive.settings.effective_public_url, archive.fields)
    try:
        notification_id, masked = staff.send_link(archive.sessions, config, scope, user.institution_id, study,
                                                  user.username)
    except (NotFound, staff.ServiceOff, verify.NoPhone) as exc:
        _staff_audit(archive, user, request, "cloudfilm-send", study, type(exc).__name__.lower())
        if isinstance(exc, NotFound):
            raise
        raise ProblemError(409, "Conflict", str(exc)) from None
    _staff_audit(archive, user, request, "cloudfilm-send", study, detail="link by SMS")
    if archive.notifiers is not None and archive.fields is not None:
        notify.deliver(archive.sessions, archive.notifiers, archive.fields, notification_id)
    return LinkSent(sent_to=masked)


@router.post("/api/studies/{study}/cloudfilm/send", operation_id="cloudfilm_send", response_model=LinkSent,
             status_code=202, summary="Send the exam's cloud-film link by SMS to the phone on file",
             responses={409: {"description": "no phone on file, or cloud film is off"}, **_problems(401, 403, 404)})
async def send_link(study: StudyUid, request: Request, archive: ArchiveDep, user: CurrentUser,
                    scope: ScopeDep) -> LinkSent:
    return await run_in_threadpool(_send, archive, user, request, study, scope)


# --- hospital settings (CF-12) ------------------------------------------------------------------------------------


class PatientClasses(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    outpatient: bool = True
    inpatient: bool = True
    emergency: bool = True
    physical_exam: bool = Field(default=True, alias="physical-exam")


class CloudfilmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    patient_classes: PatientClasses = Field(default_factory=PatientClasses)
    token_days: Annotated[int, Field(ge=1, le=hospital.MAX_TOKEN_DAYS)] = 30
    display_name: Annotated[str, Field(max_length=128)] = ""
    brand_color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = "#0a6cff"
    sms_on_final: bool = False


def _public(found: hospital.HospitalSettings) -> CloudfilmSettings:
    return CloudfilmSettings.model_validate({**found.as_dict(), "patient_classes": found.patient_classes})


def _reach(user: Principal, institution_id: int) -> None:
    """Platform administrators: any institution; hospital administrators: their own (others: 404)."""
    if not user.can(Permission.INSTITUTION_MANAGE) and user.institution_id != institution_id:
        raise NotFound("no such institution")


InstitutionId = Annotated[int, Path(ge=1, le=2**53 - 1)]


def _get_settings(archive: Archive, user: Principal, institution_id: int) -> CloudfilmSettings:
    _reach(user, institution_id)
    with archive.sessions() as session:
        if not hospital.hospital_name(session, institution_id):
            raise NotFound("no such institution")
    return _public(hospital.get(archive.sessions, institution_id))


@router.get("/api/institutions/{institution_id}/cloudfilm", operation_id="cloudfilm_settings_get",
            response_model=CloudfilmSettings, summary="A hospital's cloud-film settings (CF-12)",
            responses=_problems(401, 403, 404, 422))
async def get_settings(institution_id: InstitutionId, archive: ArchiveDep, user: CurrentUser) -> CloudfilmSettings:
    return await run_in_threadpool(_get_settings, archive, user, institution_id)


def _put_settings(archive: Archive, user: Principal, request: Request, institution_id: int,
                  body: CloudfilmSettings) -> CloudfilmSettings:
    _get_settings(archive, user, institution_id)
    wanted = hospital.HospitalSettings(body.enabled, body.patient_classes.model_dump(by_alias=True), body.token_days,
                                       body.display_name, body.brand_color, body.sms_on_final)
    stored = hospital.put(archive.sessions, institution_id, wanted)
    _staff_audit(archive, user, request, "cloudfilm-settings", f"institution:{institution_id}",
                 detail=f"enabled={stored.enabled} classes={sorted(k for k, v in stored.patient_classes.items() if v)} "
                        f"days={stored.token_days} sms_on_final={stored.sms_on_final}")
    return _public(stored)


@router.put("/api/institutions/{institution_id}/cloudfilm", operation_id="cloudfilm_settings_put",
            response_model=CloudfilmSettings, summary="Change a hospital's cloud-film settings (CF-12)",
            responses=_problems(400, 401, 403, 404, 422))
async def put_settings(institution_id: InstitutionId, body: CloudfilmSettings, request: Request, archive: ArchiveDep,
                       user: CurrentUser) -> CloudfilmSettings:
    return await run_in_threadpool(_put_settings, archive, user, request, institution_id, body)


# --- the outbox (admin API) -----------------------------------------------------------------------------------------


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    institution_id: int | None
    channel: str
    purpose: str
    recipient: str = Field(description="masked")
    body: str = Field(description="one-time codes and link tokens are removed once a real provider took the message")
    state: str = Field(description="queued | sending | sent | failed")
    attempts: int
    error: str
    provider: str
    provider_ref: str
    created_at: datetime
    sent_at: datetime | None


class MessageList(BaseModel):
    items: list[MessagePublic] = Field(description="newest first")


def _messages(archive: Archive, user: Principal, request: Request, limit: int) -> MessageList:
    everything = user.can(Permission.INSTITUTION_MANAGE)
    found = notify.list_messages(archive.sessions, user.institution_id, everything=everything, limit=limit)
    _staff_audit(archive, user, request, "notifications-read", "outbox", detail=f"{len(found)} messages")
    return MessageList(items=[MessagePublic.model_validate(m) for m in found])


@router.get("/api/notifications", operation_id="notifications_list", response_model=MessageList,
            summary="Messages (SMS, e-mail) of the caller's institution, newest first (platform admin: all)",
            responses=_problems(401, 403, 422))
async def list_messages(request: Request, archive: ArchiveDep, user: CurrentUser, limit: int = 100) -> MessageList:
    return await run_in_threadpool(_messages, archive, user, request, max(1, min(limit, 500)))
