"""Acceptance 1 of the access issue: every route of the app, called by everyone.

The route list comes from the running app's own OpenAPI document (so a new route is covered the
day it is added), the expectation from the permission table in code: a caller is allowed exactly
when its roles grant the route's permission. Anything not allowed answers 401 (no credentials) or
403 and leaks nothing: the body is the same fixed problem for every route and names no patient,
study or count. A user of another hospital, allowed to read in general, sees none of this
hospital's data: its requests for the study answer exactly like a study that does not exist.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pydicom
import pytest

from tests.security.conftest import BOUNDARY, Tenant
from tests.support.gateway_data import make_study
from tests.support.server import ServerProcess
from yunying.api.policy import PUBLIC, ROUTE_POLICY
from yunying.auth.access import Permission, Role, permissions_of

pytestmark = pytest.mark.timeout(900)
DENIED_BODIES = ({"title": "Unauthorized", "detail": "valid credentials are required"},
                 {"title": "Forbidden", "detail": "you are not allowed to do this"})


def _routes(server: ServerProcess) -> list[tuple[str, str, str]]:
    spec = httpx.get(server.url + "/openapi.json", timeout=30).json()
    routes = [(op["operationId"], method.upper(), path) for path, ops in spec["paths"].items()
              for method, op in ops.items()]
    assert len(routes) >= 25
    return routes


def _fill(path: str, tenant: Tenant, server: ServerProcess) -> str:
    study = tenant.study
    assert study is not None
    first = pydicom.dcmread(study.files[0], stop_before_pixels=True)
    values = {"study": study.study_uid, "series": str(first.SeriesInstanceUID), "instance": study.sop_uids[0],
              "frames": "1", "frame": "1", "tag": "7FE00010", "gateway_id": "gw-a"}
    for name in re.findall(r"{(\w+)}", path):
        path = path.replace("{" + name + "}", values.get(name, "1"))
    return server.url + path


def _request(method: str, url: str, headers: dict[str, str], body: tuple[bytes, str] | None) -> httpx.Response:
    extra = dict(headers)
    content = None
    if body is not None:
        content, extra["Content-Type"] = body
    return httpx.request(method, url, headers=extra, content=content, timeout=60)


def _body_for(operation: str, tmp: Any) -> tuple[bytes, str] | None:
    if operation.startswith("stow"):
        study = make_study(tmp, 1, accession="MATRIX")
        part = study.files[0].read_bytes()
        return (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part
                + f"\r\n--{BOUNDARY}--\r\n".encode(), f'multipart/related; type="application/dicom"; boundary={BOUNDARY}')
    if operation == "gateway_heartbeat":
        beat = {"gateway_id": "gw-a", "version": "1", "sent_at": "2026-11-22T00:00:00+00:00",
                "lanes": {}, "throughput": {"instances_per_s": 0.0, "mb_per_s": 0.0, "window_s": 60.0},
                "disk": {"used_bytes": 0, "budget_bytes": 1, "free_bytes": 1},
                "compression": {"original_bytes": 0, "sent_bytes": 0}, "uploaded_today": 0, "failed": 0,
                "last_errors": [], "warnings": []}
        return json.dumps(beat).encode(), "application/json"
    return (b"{}", "application/json") if operation else None


def _assert_denied(response: httpx.Response, who: str, operation: str, secrets: list[str]) -> None:
    assert response.status_code in (401, 403), f"{who} was let through to {operation}: {response.status_code}"
    body = response.json()
    assert {"title": body.get("title"), "detail": body.get("detail")} in DENIED_BODIES, (who, operation, body)
    for secret in secrets:
        assert secret not in response.text, (who, operation)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the policy does not depend on the database
def test_every_route_for_anonymous_other_hospital_and_every_role(
        two_hospitals: tuple[ServerProcess, Tenant, Tenant], tmp_path: Any) -> None:
    server, a, b = two_hospitals
    assert a.study is not None
    first = pydicom.dcmread(a.study.files[0], stop_before_pixels=True)
    secrets = [a.study.study_uid, str(first.PatientName), str(first.PatientID)]
    routes = _routes(server)
    unlisted = [op for op, _m, _p in routes if op not in ROUTE_POLICY]
    assert not unlisted, f"routes without a policy entry (they answer 403 to everyone): {unlisted}"
    callers: list[tuple[str, dict[str, str], frozenset[Any]]] = [("anonymous", {}, frozenset())]
    callers += [(f"{role.value}@{a.code}", a.headers(role), permissions_of([role])) for role in Role
                if role is not Role.PATIENT]  # patients: tests/cloudfilm
    checked = 0
    for n, (operation, method, path) in enumerate(routes):
        url = _fill(path, a, server)
        needed = ROUTE_POLICY[operation]
        for who, headers, granted in callers:
            body = _body_for(operation, tmp_path / f"body-{n}-{who}") if method in ("POST", "PUT", "PATCH") else None
            response = _request(method, url, headers, body)
            allowed = needed is PUBLIC or needed in granted
            if allowed:
                assert response.status_code not in (401, 403), f"{who} refused {operation}: {response.text[:200]}"
            else:
                _assert_denied(response, who, operation, secrets)
                if who == "anonymous":
                    assert response.status_code == 401
            checked += 1
        # The other hospital's reader: may read in general, but none of hospital A's data.
        if needed not in (PUBLIC, Permission.PATIENT_SELF) and "{study}" in path and method == "GET":
            response = _request(method, url, b.headers(Role.RADIOLOGIST), None)
            if operation.startswith("qido"):  # a search below a study it cannot see: nothing
                assert response.status_code in (200, 204) and (not response.content or response.json() == []), operation
            else:
                assert response.status_code == 404, f"another hospital reached {operation}: {response.status_code}"
            for secret in secrets:
                assert secret not in response.text
            checked += 1
    assert checked > 300
