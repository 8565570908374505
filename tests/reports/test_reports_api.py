"""The reports REST API between two hospitals on one real ``yunying serve`` (both databases).

Proves: a radiologist creates a report of their hospital's study and amends it (versions kept, a
final after a final recorded as amended); the workflow refuses what does not fit (409); a second
report for the same exam is refused (409); a clinician may read but not write (403); the other
hospital's radiologist gets 404 for reading, amending, listing, and creating on the study, just as
for a report that does not exist; a report without images belongs to the author's institution;
every read and write is audited with the study UID as subject.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.security.conftest import direct, make_tenant
from tests.support.server import ServerProcess
from yunying.auth.access import Role
from yunying.index.models import AuditEvent

pytestmark = pytest.mark.timeout(300)
ROLES = [Role.RADIOLOGIST, Role.CLINICIAN, Role.TECHNICIAN]


def _call(method: str, server: ServerProcess, path: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    return httpx.request(method, server.url + "/api/reports" + path, headers=headers, timeout=30, **kwargs)


def test_create_amend_history_and_authorization(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_factory(open_dicom=False)
    a = make_tenant(server, "hosp-a", tmp_path, ROLES)
    b = make_tenant(server, "hosp-b", tmp_path, ROLES)
    assert a.study is not None
    rad_a, rad_b, clin_a = a.headers(Role.RADIOLOGIST), b.headers(Role.RADIOLOGIST), a.headers(Role.CLINICIAN)
    body = {"study_uid": a.study.study_uid, "status": "preliminary", "findings": "Small nodule right upper lobe.",
            "impression": "Follow-up CT in 6 months."}
    text = {k: v for k, v in body.items() if k != "study_uid"}  # an amendment names no exam: the report has one

    assert _call("POST", server, "", clin_a, json=body).status_code == 403  # may read, may not write
    assert _call("POST", server, "", rad_b, json=body).status_code == 404  # another hospital's study
    created = _call("POST", server, "", rad_a, json=body)
    assert created.status_code == 201, created.text
    report = created.json()
    rid = report["id"]
    assert report["linked"] is True and report["accession_number"] == "ACC-hosp-a" and report["status"] == "preliminary"
    assert report["current"]["author"] == "radiologist-hosp-a" and report["current"]["source"] == "api"
    assert _call("POST", server, "", rad_a, json=body).status_code == 409  # the exam has its report

    final = _call("PUT", server, f"/{rid}", rad_a, json={**text, "status": "final", "verifier": "Dr Li"})
    assert final.status_code == 200 and final.json()["status"] == "final"
    again = _call("PUT", server, f"/{rid}", rad_a, json={**text, "status": "final", "impression": "No follow-up."})
    assert again.status_code == 200 and again.json()["status"] == "amended"
    refused = _call("PUT", server, f"/{rid}", rad_a, json={**text, "status": "preliminary"})
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    assert _call("PUT", server, f"/{rid}", clin_a, json={**text, "status": "final"}).status_code == 403
    assert _call("PUT", server, "/1", rad_a, json={"status": "nonsense"}).status_code == 422

    history = _call("GET", server, f"/{rid}/history", clin_a)
    assert history.status_code == 200
    versions = history.json()["versions"]
    assert [(v["version"], v["status"]) for v in versions] == [(1, "preliminary"), (2, "final"), (3, "amended")]
    assert versions[0]["impression"] == "Follow-up CT in 6 months." and versions[2]["impression"] == "No follow-up."
    assert _call("GET", server, f"/{rid}", clin_a).json()["current"]["version"] == 3
    assert [r["id"] for r in _call("GET", server, "", clin_a, params={"study": a.study.study_uid}).json()["items"]] == [rid]

    # The other hospital: exactly like a report that does not exist.
    missing = _call("GET", server, "/999999", rad_b)
    for path in (f"/{rid}", f"/{rid}/history", f"/{rid}/pdf"):
        response = _call("GET", server, path, rad_b)
        assert response.status_code == 404 and response.json() == missing.json(), path
    assert _call("PUT", server, f"/{rid}", rad_b, json={**text, "status": "final"}).status_code == 404
    assert _call("GET", server, "", rad_b, params={"study": a.study.study_uid}).json()["items"] == []
    assert _call("GET", server, "", rad_b, params={"accession": "ACC-hosp-a"}).json()["items"] == []

    # A report before its images belongs to the author's hospital only.
    early = _call("POST", server, "", rad_b, json={"accession_number": "ACC-LATER", "status": "final", "findings": "x"})
    assert early.status_code == 201 and early.json()["linked"] is False
    assert _call("GET", server, f"/{early.json()['id']}", b.headers(Role.CLINICIAN)).status_code == 200
    assert _call("GET", server, f"/{early.json()['id']}", rad_a).status_code == 404

    archive = direct(server)
    try:
        with archive.sessions() as session:
            entries = session.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.subject, AuditEvent.outcome)
                                      .where(AuditEvent.action.in_(["report-read", "report-write"]))).all()
    finally:
        archive.close()
    assert ("radiologist-hosp-a", "report-write", a.study.study_uid, "success") in entries
    assert ("clinician-hosp-a", "report-read", a.study.study_uid, "success") in entries
    assert ("radiologist-hosp-b", "report-read", f"report:{rid}", "not-found") in entries
