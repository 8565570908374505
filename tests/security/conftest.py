"""Two hospitals on one platform: institutions, a user (token) per role, DICOM peers, a study each."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.gateway_data import Study, make_study
from tests.support.server import ServerProcess
from yunying.auth.access import Role
from yunying.auth.credentials import create_token, create_user, institution_id
from yunying.compose import Archive, build_archive
from yunying.index.models import Institution
from yunying.settings import Settings

BOUNDARY = "tenant-test-boundary"


@dataclass
class Tenant:
    code: str
    institution_id: int = 0
    tokens: dict[Role, str] = field(default_factory=dict)  # bearer token per role
    study: Study | None = None

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def stow(server: ServerProcess, headers: dict[str, str], files: list[Path], study_uid: str | None = None) -> httpx.Response:
    body = b"".join(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p.read_bytes() + b"\r\n"
                    for p in files) + f"--{BOUNDARY}--\r\n".encode()
    url = f"{server.dicomweb}/studies" + (f"/{study_uid}" if study_uid else "")
    return httpx.post(url, content=body, timeout=60, headers={
        **headers, "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        "Accept": "application/dicom+json"})


def direct(server: ServerProcess) -> Archive:
    """The server's database and blobs opened in the test process (set-up without a CLI per user)."""
    return build_archive(Settings(data_dir=server.data_dir, database_url=server.database_url))


def make_tenant(server: ServerProcess, code: str, tmp: Path, roles: list[Role] | None = None) -> Tenant:
    archive = direct(server)
    try:
        with archive.sessions() as session:
            session.add(Institution(code=code, name=f"Hospital {code}"))
            session.commit()
        tenant = Tenant(code, institution_id=institution_id(archive.sessions, code))
        for role in roles or [r for r in Role if r is not Role.PATIENT]:  # patients are no users (decision 0010)
            user = f"{role.value}-{code}"
            create_user(archive.sessions, user, "Yy-Pass-word-123", [role], institution=tenant.institution_id)
            tenant.tokens[role] = create_token(archive.sessions, user, user)
    finally:
        archive.close()
    tenant.study = make_study(tmp / code, 3, accession=f"ACC-{code}")
    stored = stow(server, tenant.headers(Role.TECHNICIAN), tenant.study.files)
    assert stored.status_code == 200, stored.text
    return tenant


@pytest.fixture
def two_hospitals(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> tuple[ServerProcess, Tenant, Tenant]:
    server = server_factory(open_dicom=False)
    a = make_tenant(server, "hosp-a", tmp_path)
    b = make_tenant(server, "hosp-b", tmp_path, [Role.TECHNICIAN, Role.RADIOLOGIST, Role.GATEWAY])
    return server, a, b


def study_uids(response: httpx.Response) -> set[str]:
    assert response.status_code in (200, 204), response.text
    rows = json.loads(response.text) if response.content else []
    return {r["0020000D"]["Value"][0] for r in rows}
