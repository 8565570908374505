"""Two hospitals on a real ``yunying serve`` with TOTP available, and sign-in helpers for the web pages."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy import select, update

from tests.security.conftest import Tenant, make_tenant
from tests.support.server import ServerProcess
from tests.support.web import FIELD_KEYS
from yunying.auth import totp
from yunying.auth.access import Role
from yunying.compose import Archive, build_archive
from yunying.index.models import AuditEvent, Institution, User
from yunying.settings import Settings

PASSWORD = "Yy-Pass-word-123"  # every tenant user's (tests.security.conftest.make_tenant)
HOSPITAL_A = "云影市第一人民医院"
HTML = {"Accept": "text/html,application/xhtml+xml"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Platform:
    server: ServerProcess
    a: Tenant
    b: Tenant

    def archive(self) -> Archive:
        """The server's database opened in the test process, with the field keys (TOTP secrets)."""
        return build_archive(Settings(data_dir=self.server.data_dir, database_url=self.server.database_url, **FIELD_KEYS))

    def user(self, username: str) -> User | None:
        archive = self.archive()
        try:
            with archive.sessions() as session:
                return session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        finally:
            archive.close()

    def audit(self, action: str) -> list[AuditEvent]:
        archive = self.archive()
        try:
            with archive.sessions() as session:
                return list(session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                            .order_by(AuditEvent.id)).scalars())
        finally:
            archive.close()


class Authenticator:
    """A user's authenticator app: TOTP switched on for them, then one fresh code per sign-in (codes are
    single-use and must move forward, so at most three sign-ins per 30 s; it waits when needed)."""

    def __init__(self, platform: Platform, username: str) -> None:
        archive = platform.archive()
        try:
            with archive.sessions() as session:
                user_id = session.execute(select(User.id).where(User.username == username)).scalar_one()
            secret = totp.enroll(archive.sessions, user_id, username, archive.fields).secret
            with archive.sessions() as session:
                session.execute(update(User).where(User.id == user_id).values(totp_enabled=True))
                session.commit()
        finally:
            archive.close()
        self.generator = pyotp.TOTP(secret)
        self.last: int | None = None

    def code(self) -> str:
        now = int(time.time() // 30)
        step = now - 1 if self.last is None else max(self.last + 1, now - 1)
        while step > int(time.time() // 30) + 1:
            time.sleep(1)
        self.last = step
        return str(self.generator.at(step * 30))


def browser(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=HTML, follow_redirects=False, timeout=60)


def sign_in(server: ServerProcess, username: str, password: str = PASSWORD, app: Authenticator | None = None) -> httpx.Client:
    """A browser-like client signed in through the login form (with the TOTP code when given)."""
    client = browser(server)
    form = {"username": username, "password": password, "next": "/ui/"}
    if app is not None:
        form["totp_code"] = app.code()
    answer = client.post("/ui/login", data=form)
    assert answer.status_code == 303, answer.text[-500:]
    return client


def csrf_of(client: httpx.Client, path: str = "/ui/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[-300:]
    found = _CSRF.search(page.text)
    assert found, "no csrf_token field on the page"
    return found.group(1)


@pytest.fixture
def platform(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> Iterator[Platform]:
    server = server_factory(open_dicom=False, YUNYING_LOGIN_RATE_PER_MINUTE="1000", YUNYING_PUBLIC_RATE_PER_MINUTE="1000",
                            **{f"YUNYING_{name.upper()}": value for name, value in FIELD_KEYS.items()})
    a = make_tenant(server, "hosp-a", tmp_path, [Role.HOSPITAL_ADMIN, Role.TECHNICIAN, Role.RADIOLOGIST,
                                                 Role.CONSULTATION_COORDINATOR, Role.AUDITOR, Role.CLINICIAN])
    b = make_tenant(server, "hosp-b", tmp_path, [Role.HOSPITAL_ADMIN, Role.TECHNICIAN, Role.RADIOLOGIST])
    built = Platform(server, a, b)
    archive = built.archive()
    try:
        with archive.sessions() as session:
            session.execute(update(Institution).where(Institution.code == "hosp-a").values(name=HOSPITAL_A))
            session.commit()
    finally:
        archive.close()
    yield built
