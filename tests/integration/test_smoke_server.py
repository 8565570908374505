"""The server starts on both databases, answers health publicly and refuses anonymous DICOMweb."""

from __future__ import annotations

import httpx

from tests.support.server import ServerProcess


def test_health_is_public_and_dicomweb_is_not(server: ServerProcess) -> None:
    health = httpx.get(server.url + "/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    anonymous = httpx.get(server.dicomweb + "/studies")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(server.dicomweb + "/studies", auth=server.auth).status_code == 200
