"""FastAPI dependencies: the archive, and the authenticated caller (default deny)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from yunying.api.policy import PUBLIC, ROUTE_POLICY
from yunying.api.problems import ProblemError
from yunying.auth.access import ADMIN_ROLES, Principal, scope_of
from yunying.auth.audit import record
from yunying.auth.credentials import AccountLocked, verify_password, verify_token
from yunying.compose import Archive
from yunying.index.access import Scope

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="yunying", Basic realm="yunying"'}
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


_basic_cache = _BasicCache()


async def current_principal(request: Request, archive: ArchiveDep) -> Principal:
    """The caller, from ``Authorization: Bearer <token>`` or ``Basic``; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    principal: Principal | None = None
    if scheme.lower() == "bearer" and value:
        principal = await run_in_threadpool(verify_token, archive.sessions, value.strip())
    elif scheme.lower() == "basic" and value:
        try:
            username, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username, password = "", ""
        key = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
        principal = _basic_cache.get(key)
        if principal is None and username:
            try:
                principal = await run_in_threadpool(verify_password, archive.sessions, username, password)
            except AccountLocked:
                await run_in_threadpool(record, archive.sessions, actor=username[:64], action="login-locked",
                                        source=client_address(request), outcome="refused")
                principal = None  # the same answer as a wrong password: no account enumeration
            else:
                if principal is None:
                    await run_in_threadpool(record, archive.sessions, actor=username[:64], action="login",
                                            source=client_address(request), outcome="failed", detail="HTTP Basic")
            if principal is not None:
                # A password alone is one factor: administrative roles need a second (a session with
                # TOTP) or a scoped token issued by an operator.
                principal = replace(principal, roles=principal.roles - ADMIN_ROLES)
                _basic_cache.put(key, principal)
    if principal is None:
        raise ProblemError(401, "Unauthorized", "valid credentials are required", headers=_CHALLENGE)
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]

_FORBIDDEN = "you are not allowed to do this"


async def authorize(request: Request, archive: ArchiveDep) -> None:
    """App-wide dependency: the route's permission from ROUTE_POLICY, or 403 (default deny)."""
    route = request.scope.get("route")
    key = getattr(route, "operation_id", None) or getattr(route, "name", None)
    if key not in ROUTE_POLICY:
        raise ProblemError(403, "Forbidden", _FORBIDDEN)
    needed = ROUTE_POLICY[key]
    if needed is PUBLIC:
        return
    principal = await current_principal(request, archive)
    if not principal.can(needed):
        raise ProblemError(403, "Forbidden", _FORBIDDEN)


def current_scope(principal: CurrentUser) -> Scope:
    return scope_of(principal)


ScopeDep = Annotated[Scope, Depends(current_scope)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"
