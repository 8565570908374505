"""FastAPI dependencies: the archive, and the authenticated caller (default deny)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from yunying.api.problems import ProblemError
from yunying.auth.credentials import Principal, verify_password, verify_token
from yunying.compose import Archive

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
            principal = await run_in_threadpool(verify_password, archive.sessions, username, password)
            if principal is not None:
                _basic_cache.put(key, principal)
    if principal is None:
        raise ProblemError(401, "Unauthorized", "valid credentials are required", headers=_CHALLENGE)
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"
