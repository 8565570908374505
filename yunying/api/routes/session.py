"""Interactive sessions for the web viewer and admin pages (cookie ``yy_session``).

``POST /api/session`` signs in (public, rate-limited per client address) and sets the cookie
(HttpOnly, SameSite=Strict, Secure over TLS); every other route needs ``self``. Unsafe requests of a
cookie session carry its ``csrf_token`` in ``X-CSRF-Token`` (or a ``csrf_token`` form field). The
rules (idle lock, absolute expiry, second factor for administrators, lockout) are in
``yunying.auth.sessions``; this module translates their outcomes to HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from yunying.api.deps import ArchiveDep, CurrentUser, client_address, session_cookie, session_policy
from yunying.api.problems import PROBLEM, JsonApiRoute, ProblemError
from yunying.auth import sessions, totp
from yunying.auth.access import Principal
from yunying.compose import Archive

router = APIRouter(prefix="/api/session", tags=["session"], route_class=JsonApiRoute)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="yunying"'}  # no Basic: a browser would pop up its own dialog
_REFUSED = "wrong user name, password or code"  # one answer for every failure: no account enumeration
_ENROL_NOTE = ("administrative permissions need a second factor: enrol an authenticator app with "
               "POST /api/session/totp/enroll and /totp/confirm; until then this session carries only your other roles")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Password = Annotated[str, Field(min_length=1, max_length=1024)]
Code = Annotated[str, Field(pattern=r"^\d{6}$", description="the 6-digit code of the authenticator app")]


class LoginRequest(_Strict):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Password
    totp_code: Code | None = Field(default=None, description="required when the user has enabled TOTP")


class UnlockRequest(_Strict):
    password: Password


class TotpConfirmRequest(_Strict):
    code: Code


class PasswordChange(_Strict):
    current_password: Password
    new_password: Annotated[str, Field(min_length=1, max_length=1024,
                                       description="12+ characters of three classes, not containing the user name")]


class UserSummary(BaseModel):
    id: int | None
    username: str
    display_name: str


class InstitutionSummary(BaseModel):
    id: int
    code: str
    name: str


class SessionPublic(BaseModel):
    """Who is calling and what this login may do."""

    csrf_token: str | None = Field(description="send as X-CSRF-Token with every unsafe request (cookie sessions only)")
    via: str = Field(description="session, password (HTTP Basic) or token:<name>")
    user: UserSummary
    roles: list[str] = Field(description="roles this login carries")
    permissions: list[str] = Field(description="permissions this login carries")
    institution: InstitutionSummary | None
    second_factor_enabled: bool
    second_factor_required: bool = Field(description="administrative permissions withheld until a TOTP code")
    enrolment_required: bool = Field(description="an administrator without TOTP: enrol before administering")
    locked: bool
    expires_at: datetime | None
    idle_minutes: int | None
    note: str | None = None


class TotpEnrolment(BaseModel):
    secret: str = Field(description="base32 secret, shown this once")
    otpauth_uri: str = Field(description="otpauth://totp/… for a QR code")


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()
_DESCRIPTIONS = {400: "Invalid request", 401: "Unauthorized", 403: "Forbidden (CSRF token or origin)",
                 409: "Already enrolled", 422: "Invalid request (schema or password policy)", 429: "Too many attempts",
                 503: "TOTP not configured"}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": _DESCRIPTIONS[code], "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}}} for code in codes}


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


def _describe(archive: Archive, principal: Principal, view: sessions.SessionView | None) -> SessionPublic:
    if principal.user_id is None:
        raise ProblemError(400, "Invalid request", "not a user")
    profile = sessions.profile(archive.sessions, principal.user_id)
    pending = view is not None and view.second_factor_required
    institution = InstitutionSummary(id=profile.institution[0], code=profile.institution[1],
                                     name=profile.institution[2]) if profile.institution else None
    return SessionPublic(
        csrf_token=view.csrf_token if view else None, via=principal.via,
        user=UserSummary(id=principal.user_id, username=principal.username, display_name=profile.display_name),
        roles=sorted(principal.roles), permissions=sorted(principal.permissions), institution=institution,
        second_factor_enabled=profile.totp_enabled, second_factor_required=pending,
        enrolment_required=profile.enrolment_required, locked=view.locked if view else False,
        expires_at=view.expires_at if view else None,
        idle_minutes=archive.settings.session_idle_minutes if view else None, note=_ENROL_NOTE if pending else None)


def _view(request: Request) -> sessions.SessionView | None:
    view: sessions.SessionView | None = getattr(request.state, "session", None)
    return view


def _session_only(request: Request) -> sessions.SessionView:
    view = _view(request)
    if view is None:
        raise ProblemError(400, "Invalid request", "this needs a cookie session (sign in with POST /api/session)")
    return view


@router.post("", operation_id="session_login", response_model=SessionPublic, summary="Sign in (sets the session cookie)",
             responses=_problems(400, 401, 403, 422, 429))
def login(body: LoginRequest, request: Request, response: Response, archive: ArchiveDep) -> SessionPublic:
    try:
        new = sessions.login(archive.sessions, body.username, body.password, body.totp_code or "",
                             policy=session_policy(archive.settings), cipher=archive.fields, source=client_address(request))
    except sessions.LoginRefused as refused:
        if refused.reason == "second-factor-required":
            raise ProblemError(401, "Second factor required", "enter the code of your authenticator app",
                               headers=_CHALLENGE, second_factor_required=True) from None
        raise ProblemError(401, "Unauthorized", _REFUSED, headers=_CHALLENGE) from None
    except totp.TotpUnavailable as exc:
        raise ProblemError(503, "Service Unavailable", str(exc)) from None
    response.headers.append("Set-Cookie", session_cookie(archive.settings, request, new.cookie))
    _no_store(response)
    return _describe(archive, new.view.principal, new.view)


@router.get("", operation_id="session_get", response_model=SessionPublic, summary="Who am I (any login)",
            responses=_problems(401))
def who_am_i(request: Request, response: Response, archive: ArchiveDep, user: CurrentUser) -> SessionPublic:
    _no_store(response)
    return _describe(archive, user, _view(request))


def _cleared(archive: Archive, request: Request) -> Response:
    answer = Response(status_code=204)
    answer.headers.append("Set-Cookie", session_cookie(archive.settings, request, ""))
    return answer


@router.delete("", operation_id="session_logout", status_code=204, summary="Sign out (this session)",
               responses=_problems(401, 403))
def logout(request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    sessions.logout(archive.sessions, user, client_address(request))
    return _cleared(archive, request)


@router.post("/logout-all", operation_id="session_logout_all", status_code=204,
             summary="Sign out everywhere (every session of this user, this one included)", responses=_problems(401, 403))
def logout_all(request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    sessions.logout_everywhere(archive.sessions, user, client_address(request))
    return _cleared(archive, request)


@router.post("/lock", operation_id="session_lock", status_code=204, summary="Lock this session (screen lock)",
             responses=_problems(400, 401, 403))
def lock(request: Request, archive: ArchiveDep, _user: CurrentUser) -> Response:
    sessions.lock(archive.sessions, _session_only(request), client_address(request))
    return Response(status_code=204)


@router.post("/unlock", operation_id="session_unlock", response_model=SessionPublic,
             summary="Unlock this session with the password", responses=_problems(400, 401, 403, 422))
def unlock(body: UnlockRequest, request: Request, response: Response, archive: ArchiveDep,
           user: CurrentUser) -> SessionPublic:
    view = _session_only(request)
    try:
        sessions.unlock(archive.sessions, view, body.password, client_address(request))
    except sessions.WrongPassword:
        raise ProblemError(401, "Unauthorized", "wrong password: the session stays locked", headers=_CHALLENGE,
                           session_locked=True) from None
    except sessions.AccountLocked:
        raise ProblemError(401, "Unauthorized", "the session has ended: sign in again", headers={
            **_CHALLENGE, "Set-Cookie": session_cookie(archive.settings, request, "")}) from None
    _no_store(response)
    fresh = sessions.view_of(archive.sessions, view.session_id)
    return _describe(archive, fresh.principal, fresh)


@router.post("/totp/enroll", operation_id="session_totp_enroll", response_model=TotpEnrolment,
             summary="Start TOTP enrolment: a new secret, shown once", responses=_problems(400, 401, 403, 409, 503))
def totp_enroll(request: Request, response: Response, archive: ArchiveDep, user: CurrentUser) -> TotpEnrolment:
    if user.user_id is None:
        raise ProblemError(400, "Invalid request", "not a user")
    try:
        enrolment = sessions.start_enrolment(archive.sessions, user, archive.fields, client_address(request))
    except totp.AlreadyEnrolled as exc:
        raise ProblemError(409, "Conflict", str(exc)) from None
    except totp.TotpUnavailable as exc:
        raise ProblemError(503, "Service Unavailable", str(exc)) from None
    _no_store(response)
    return TotpEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.uri)


@router.post("/totp/confirm", operation_id="session_totp_confirm", response_model=SessionPublic,
             summary="Finish TOTP enrolment with a current code", responses=_problems(400, 401, 403, 409, 422, 503))
def totp_confirm(body: TotpConfirmRequest, request: Request, response: Response, archive: ArchiveDep,
                 user: CurrentUser) -> SessionPublic:
    if user.user_id is None:
        raise ProblemError(400, "Invalid request", "not a user")
    try:
        confirmed = sessions.confirm_enrolment(archive.sessions, user, body.code, archive.fields, client_address(request))
    except totp.AlreadyEnrolled as exc:
        raise ProblemError(409, "Conflict", str(exc)) from None
    except totp.TotpUnavailable as exc:
        raise ProblemError(503, "Service Unavailable", str(exc)) from None
    if not confirmed:
        raise ProblemError(400, "Invalid request", "the code does not match (is the device's clock right?)")
    view = _view(request)
    _no_store(response)
    if view is None:
        return _describe(archive, user, None)
    fresh = sessions.view_of(archive.sessions, view.session_id)  # now with the permissions the second factor gives
    return _describe(archive, fresh.principal, fresh)


@router.post("/password", operation_id="session_password", status_code=204, summary="Change one's own password",
             responses=_problems(400, 401, 403, 422))
def change_password(body: PasswordChange, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    try:
        sessions.change_password(archive.sessions, user, body.current_password, body.new_password, client_address(request))
    except sessions.PasswordPolicyError as exc:
        raise ProblemError(422, "Invalid request", str(exc)) from None
    except sessions.WrongPassword:
        raise ProblemError(400, "Invalid request", "the current password is wrong") from None
    except sessions.AccountLocked:
        raise ProblemError(401, "Unauthorized", "the account is locked after repeated failures: sign in later",
                           headers={**_CHALLENGE, "Set-Cookie": session_cookie(archive.settings, request, "")}) from None
    return Response(status_code=204)
