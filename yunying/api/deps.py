"""FastAPI dependencies: the archive, and the authenticated caller (default deny).

Callers authenticate with ``Authorization: Bearer <token>`` (machine clients, scripts), HTTP ``Basic``
(one factor: administrative roles dropped), or the ``yy_session`` cookie of an interactive session
(``yunying.auth.sessions``), whose unsafe requests must carry the session's CSRF token; the ``yy_share``
cookie of a share visitor (``yunying.shares.service``: checked with its share on every request); or, for a
verified patient (cloud film, decision 0010), the ``yy_patient`` cookie (``yunying.cloudfilm.sessions``), whose
unsafe requests need that session's CSRF token the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from yunying.api.policy import PUBLIC, RATE_LIMITED, ROUTE_POLICY, WHILE_LOCKED
from yunying.api.problems import ProblemError
from yunying.api.security import SAFE_METHODS, is_https
from yunying.auth import sessions as auth_sessions
from yunying.auth import throttle
from yunying.auth.access import ADMIN_ROLES, Principal, scope_of
from yunying.auth.audit import record
from yunying.auth.credentials import AccountLocked, verify_password, verify_token
from yunying.cloudfilm import sessions as patient_sessions
from yunying.compose import Archive
from yunying.index.access import Scope
from yunying.settings import Settings
from yunying.shares import service as shares

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="yunying", Basic realm="yunying"'}
SESSION_COOKIE = "yy_session"
SHARE_COOKIE = "yy_share"
PATIENT_COOKIE = "yy_patient"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"  # the hidden field of HTML forms
_BASIC_CACHE_SECONDS = 60.0


def get_archive(request: Request) -> Archive:
    archive: Archive = request.app.state.archive
    return archive


ArchiveDep = Annotated[Archive, Depends(get_archive)]


class _BasicCache:
    """Short-lived cache of successful Basic logins so argon2 is not paid on every request.

    Keys are SHA-256 of the credentials; entries expire after a minute. Purely an
    optimisation: every node verifies against the shared database on a miss.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry and entry[0] > time.monotonic():
                return entry[1]
            self._entries.pop(key, None)
            return None

    def put(self, key: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + _BASIC_CACHE_SECONDS, principal)


def _basic_cache(request: Request) -> _BasicCache:
    """The cache of this app (one archive): never shared between apps on other databases."""
    cache: _BasicCache | None = getattr(request.app.state, "basic_cache", None)
    if cache is None:
        cache = request.app.state.basic_cache = _BasicCache()
    return cache


async def current_principal(request: Request, archive: ArchiveDep) -> Principal:
    """The caller, from ``Authorization: Bearer <token>`` or ``Basic``, else the ``yy_session`` cookie; 401 otherwise."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:  # authorize() and the route both ask: authenticate once per request
        return known
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    principal: Principal | None = None
    if scheme.lower() == "bearer" and value:
        principal = await run_in_threadpool(verify_token, archive.sessions, value.strip())
    elif scheme.lower() == "basic" and value:
        principal = await _basic_principal(request, archive, value)
    elif not header and SESSION_COOKIE in request.cookies:
        principal = await _session_principal(request, archive, request.cookies[SESSION_COOKIE])
    elif not header and SHARE_COOKIE in request.cookies:
        principal = await _share_principal(request, archive, request.cookies[SHARE_COOKIE])
    elif not header and PATIENT_COOKIE in request.cookies:
        principal = await _patient_principal(request, archive, request.cookies[PATIENT_COOKIE])
    if principal is None:
        raise ProblemError(401, "Unauthorized", "valid credentials are required", headers=_CHALLENGE)
    request.state.principal = principal
    return principal


async def _basic_principal(request: Request, archive: ArchiveDep, value: str) -> Principal | None:
    try:
        username, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        username, password = "", ""
    key = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
    cache = _basic_cache(request)
    principal = cache.get(key)
    if principal is not None or not username:
        return principal
    source = client_address(request)
    limit = archive.settings.login_rate_per_minute
    verdict = await run_in_threadpool(throttle.peek, archive.sessions, f"login:{source}", limit)
    if not verdict.allowed:
        raise _too_many(verdict)
    try:
        principal = await run_in_threadpool(verify_password, archive.sessions, username, password)
    except AccountLocked:
        await run_in_threadpool(record, archive.sessions, actor=username[:64], action="login", source=source,
                                outcome="locked", detail="HTTP Basic")
        principal = None  # the same answer as a wrong password: no account enumeration
    else:
        if principal is None:
            await run_in_threadpool(record, archive.sessions, actor=username[:64], action="login", source=source,
                                    outcome="failed", detail="HTTP Basic")
    if principal is None:
        await run_in_threadpool(throttle.hit, archive.sessions, f"login:{source}", limit)  # failures only
        return None
    # A password alone is one factor: administrative roles need a second (a session with
    # TOTP) or a scoped token issued by an operator.
    principal = replace(principal, roles=principal.roles - ADMIN_ROLES)
    cache.put(key, principal)
    return principal


def session_policy(settings: Settings) -> auth_sessions.SessionPolicy:
    return auth_sessions.SessionPolicy.of(settings.session_idle_minutes, settings.session_max_hours)


def session_cookie(settings: Settings, request: Request, value: str) -> str:
    """``Set-Cookie`` value of the session cookie (``value`` empty: delete it)."""
    attributes = [f"{SESSION_COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if not value:
        attributes.append("Max-Age=0")
    if is_https(settings, request.scope):
        attributes.append("Secure")
    return "; ".join(attributes)


async def _session_principal(request: Request, archive: ArchiveDep, cookie: str) -> Principal:
    view = await run_in_threadpool(auth_sessions.authenticate, archive.sessions, cookie, session_policy(archive.settings))
    if view is None:
        raise ProblemError(401, "Unauthorized", "the session has ended: sign in again",
                           headers={**_CHALLENGE, "Set-Cookie": session_cookie(archive.settings, request, "")})
    if request.method not in SAFE_METHODS:
        await _check_csrf(request, view.csrf_token)
    if view.locked and operation_of(request) not in WHILE_LOCKED:
        raise ProblemError(401, "Session locked", "the session is locked: unlock it with your password",
                           headers=_CHALLENGE, session_locked=True)
    request.state.session = view
    return view.principal


def share_cookie(settings: Settings, request: Request, value: str) -> str:
    """``Set-Cookie`` value of a share visitor's cookie (``value`` empty: delete it); decision 0010: Lax."""
    return _lax_cookie(SHARE_COOKIE, settings, request, value)


def patient_cookie(settings: Settings, request: Request, value: str) -> str:
    """``Set-Cookie`` value of the patient session cookie (``value`` empty: delete it). SameSite=Lax: the
    QR code / SMS link is a top-level navigation from elsewhere; unsafe requests still need the CSRF token."""
    return _lax_cookie(PATIENT_COOKIE, settings, request, value)


def _lax_cookie(name: str, settings: Settings, request: Request, value: str) -> str:
    attributes = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if not value:
        attributes.append("Max-Age=0")
    if is_https(settings, request.scope):
        attributes.append("Secure")
    return "; ".join(attributes)


async def _share_principal(request: Request, archive: ArchiveDep, cookie: str) -> Principal:
    """The share visitor; 401 (and the cookie deleted) once the session or its share has ended."""
    principal = await run_in_threadpool(shares.authenticate, archive.sessions, cookie)
    if principal is None:
        raise ProblemError(401, "Unauthorized", "the share has ended or was revoked",
                           headers={**_CHALLENGE, "Set-Cookie": share_cookie(archive.settings, request, "")})
    return principal


async def _patient_principal(request: Request, archive: ArchiveDep, cookie: str) -> Principal:
    view = await run_in_threadpool(patient_sessions.authenticate, archive.sessions, cookie)
    if view is None:
        raise ProblemError(401, "Unauthorized", "valid credentials are required",
                           headers={**_CHALLENGE, "Set-Cookie": patient_cookie(archive.settings, request, "")})
    if request.method not in SAFE_METHODS:
        await _check_csrf(request, view.csrf_token)
    request.state.patient_session = view
    return view.principal


async def _check_csrf(request: Request, expected: str) -> None:
    """A cookie alone never changes anything: the session's CSRF token must come along (header or form field)."""
    sent = request.headers.get(CSRF_HEADER, "")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not sent and media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        field = (await request.form()).get(CSRF_FIELD)
        sent = field if isinstance(field, str) else ""
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ProblemError(403, "Forbidden", "CSRF token missing or wrong (send the session's X-CSRF-Token)")


CurrentUser = Annotated[Principal, Depends(current_principal)]

_FORBIDDEN = "you are not allowed to do this"


def operation_of(request: Request) -> str | None:
    route = request.scope.get("route")
    key = getattr(route, "operation_id", None) or getattr(route, "name", None)
    return key if isinstance(key, str) else None


def _too_many(verdict: throttle.Verdict) -> ProblemError:
    return ProblemError(429, "Too Many Requests", "too many attempts from this address: try again later",
                        headers={"Retry-After": str(verdict.retry_after_s)})


async def _rate_limit(request: Request, archive: ArchiveDep, key: str) -> None:
    bucket = RATE_LIMITED.get(key)
    if bucket is None:
        return
    settings = archive.settings
    limit = settings.login_rate_per_minute if bucket == "login" else settings.public_rate_per_minute
    verdict = await run_in_threadpool(throttle.hit, archive.sessions, f"{bucket}:{client_address(request)}", limit)
    if not verdict.allowed:
        raise _too_many(verdict)


async def authorize(request: Request, archive: ArchiveDep) -> None:
    """App-wide dependency: the route's permission from ROUTE_POLICY, or 403 (default deny)."""
    key = operation_of(request)
    if key not in ROUTE_POLICY:
        raise ProblemError(403, "Forbidden", _FORBIDDEN)
    needed = ROUTE_POLICY[key]
    if needed is PUBLIC:
        await _rate_limit(request, archive, key)
        return
    principal = await current_principal(request, archive)
    if not principal.can(needed):
        raise ProblemError(403, "Forbidden", _FORBIDDEN)


def current_scope(principal: CurrentUser) -> Scope:
    return scope_of(principal)


ScopeDep = Annotated[Scope, Depends(current_scope)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"
