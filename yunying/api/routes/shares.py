"""Shares (docs/cloudfilm.md §5): a patient makes, lists and revokes them; a visitor opens one.

The patient's routes (``/api/patient/shares``) need ``share:create`` and a patient session
(``principal.via == "patient"`` with ``extra["identity"]``); the exams must be in the patient's scope.
The visitor's routes (``/api/shares/{token}``) are public and rate-limited (``yunying.api.policy``);
opening sets the ``yy_share`` cookie. The domain (``yunying.shares.service``) audits every change and
every open, right or wrong.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import segno
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, client_address, share_cookie
from yunying.api.problems import JsonApiRoute, ProblemError
from yunying.api.routes.reports import _problems
from yunying.auth.access import Principal, scope_of
from yunying.compose import Archive
from yunying.shares import service
from yunying.shares.service import Limits

patient_router = APIRouter(prefix="/api/patient/shares", tags=["shares"], route_class=JsonApiRoute)
public_router = APIRouter(prefix="/api/shares", tags=["shares"], route_class=JsonApiRoute)
NEXT_PAGE = "/m/exams"

Uid = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9.]+$")]
Token = Annotated[str, Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    studies: list[Uid] = Field(min_length=1, max_length=100, description="Study Instance UIDs of the chosen exams")
    expires_in_hours: int = Field(default=72, ge=1, le=24 * 365, description="at most share_max_days")
    password: Annotated[str, Field(min_length=4, max_length=64)] | None = None
    anonymous: bool = Field(default=False, description="no patient identifiers in what the visitor sees")
    history: bool = Field(default=False, description="also every other exam the patient may see now (a snapshot)")


class ShareCreated(BaseModel):
    id: int
    url: str = Field(description="{public_url}/s/{token}: the only place the token appears")
    qr_png: str = Field(description="the URL as a QR code, a PNG data URL")
    expires_at: datetime


class SharePublic(BaseModel):
    id: int
    studies: list[str] = Field(description="the chosen exams")
    history_studies: list[str] = Field(description="exams added by the history option")
    created_at: datetime
    expires_at: datetime
    anonymous: bool
    password: bool = Field(description="a password protects the share")
    history: bool
    revoked: bool
    opened: int = Field(description="successful opens")
    last_opened_at: datetime | None


class ShareList(BaseModel):
    shares: list[SharePublic] = Field(description="newest first")


class ShareInfoPublic(BaseModel):
    needs_password: bool
    expires_at: datetime


class ShareOpen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, Field(max_length=64)] | None = None


class ShareOpened(BaseModel):
    next: str = Field(description="where the phone UI goes next")


def _limits(archive: Archive) -> Limits:
    s = archive.settings
    return Limits(s.share_max_days, s.share_password_failures, s.share_lock_minutes)


def _patient(user: Principal) -> str:
    """The patient's identity hash; 403 for anyone else (staff, share visitors)."""
    identity = user.extra.get("identity", "")
    if user.via != "patient" or not identity:
        raise ProblemError(403, "Forbidden", "you are not allowed to do this")
    return identity


def qr_data_url(url: str) -> str:
    return str(segno.make(url, error="m").png_data_uri(scale=4, border=2))


def _create(archive: Archive, user: Principal, request: Request, body: ShareCreate) -> ShareCreated:
    identity = _patient(user)
    try:
        new = service.create(archive.sessions, creator=identity, actor=user.username, visible=scope_of(user),
                             study_uids=body.studies, expires_in=timedelta(hours=body.expires_in_hours),
                             password=body.password, anonymous=body.anonymous, history=body.history,
                             limits=_limits(archive), source=client_address(request))
    except service.ShareRefused as exc:
        raise ProblemError(422, "Invalid request", str(exc)) from exc
    url = f"{archive.settings.effective_public_url}/s/{new.token}"
    return ShareCreated(id=new.id, url=url, qr_png=qr_data_url(url), expires_at=new.expires_at)


@patient_router.post("", operation_id="patient_shares_create", response_model=ShareCreated, status_code=201,
                     summary="Share chosen exams by a link and QR code", responses=_problems(400, 401, 403, 404, 422))
async def create_share(body: ShareCreate, request: Request, archive: ArchiveDep, user: CurrentUser) -> ShareCreated:
    return await run_in_threadpool(_create, archive, user, request, body)


@patient_router.get("", operation_id="patient_shares_list", response_model=ShareList,
                    summary="The caller's shares", responses=_problems(401, 403))
async def list_shares(archive: ArchiveDep, user: CurrentUser) -> ShareList:
    views = await run_in_threadpool(service.list_shares, archive.sessions, _patient(user))
    return ShareList(shares=[SharePublic(id=v.id, studies=list(v.studies), history_studies=list(v.history_studies),
                                         created_at=v.created_at, expires_at=v.expires_at, anonymous=v.anonymous,
                                         password=v.password, history=v.history, revoked=v.revoked, opened=v.opened,
                                         last_opened_at=v.last_opened_at) for v in views])


@patient_router.delete("/{share_id}", operation_id="patient_shares_revoke", status_code=204,
                       summary="Revoke a share: every open session ends at once", responses=_problems(401, 403, 404))
async def revoke_share(share_id: Annotated[int, Path(ge=1, le=2**53)], request: Request, archive: ArchiveDep,
                       user: CurrentUser) -> Response:
    await run_in_threadpool(lambda: service.revoke(archive.sessions, creator=_patient(user), actor=user.username,
                                                   share_id=share_id, source=client_address(request)))
    return Response(status_code=204)


def _gone(exc: Exception) -> ProblemError:
    return ProblemError(410, "Gone", str(exc))


@public_router.get("/{token}", operation_id="share_info", response_model=ShareInfoPublic,
                   summary="What a share's entry page needs (public)", responses={
                       **_problems(404), 410: {"description": "the share expired or was revoked"}})
async def share_info(token: Token, archive: ArchiveDep) -> ShareInfoPublic:
    try:
        found = await run_in_threadpool(service.info, archive.sessions, token)
    except service.ShareGone as exc:
        raise _gone(exc) from exc
    return ShareInfoPublic(needs_password=found.needs_password, expires_at=found.expires_at)


@public_router.post("/{token}/open", operation_id="share_open", response_model=ShareOpened,
                    summary="Open a share with its password (public): sets the yy_share cookie", responses={
                        **_problems(400, 404), 401: {"description": "wrong password"},
                        410: {"description": "the share expired or was revoked"},
                        429: {"description": "too many wrong passwords or attempts (Retry-After)"}})
async def open_share(token: Token, body: ShareOpen, request: Request, response: Response,
                     archive: ArchiveDep) -> ShareOpened:
    try:
        opened = await run_in_threadpool(lambda: service.open_share(
            archive.sessions, token, body.password, limits=_limits(archive), source=client_address(request)))
    except service.ShareGone as exc:
        raise _gone(exc) from exc
    except service.WrongPassword as exc:
        raise ProblemError(401, "Unauthorized", "wrong password") from exc
    except service.ShareLocked as exc:
        wait = max(1, int((exc.until - datetime.now(exc.until.tzinfo)).total_seconds()))
        raise ProblemError(429, "Too Many Requests", str(exc), headers={"Retry-After": str(wait)}) from exc
    response.headers["Set-Cookie"] = share_cookie(archive.settings, request, opened.cookie)
    return ShareOpened(next=NEXT_PAGE)
