"""The patient's share routes over HTTP, in-process, on both databases.

The patient session belongs to another module; here a patient principal (``via="patient"``, an identity
hash, a scope of their exams) is put on requests that carry ``X-Test-Patient`` — everything after
authentication is the real app: policy, routes, domain, database. Proves: create (link + QR) refuses
exams outside the patient's scope (404) and over-long expiry (422); a share visitor or staff member
cannot use these routes (403); the list shows opens; DELETE ends the visitor's open session (401)
and another patient cannot revoke it (404).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.shares.exams import make_exam
from tests.support.archive import default_institution
from yunying.api.app import create_app
from yunying.auth.access import ROLE_PERMISSIONS, SHARE_STUDIES, Permission, Principal, Role
from yunying.compose import Archive
from yunying.index.models import Study

PATIENT = {"X-Test-Patient": "1"}


def _patient(study_ids: list[int], identity: str) -> Principal:
    """A stand-in patient: the patient role and its identity-hash scope are another module's, so the role here is
    share-viewer (given ``share:create`` by the test) and the scope the study-id scope of ``extra["studies"]``."""
    return Principal(None, f"patient:{identity[:8]}", frozenset({Role.SHARE_VIEWER}), None, "patient",
                     scopes=None, extra={"identity": identity, "share": "0",
                                         SHARE_STUDIES: ",".join(map(str, study_ids))})


def _as_patient(app: ASGIApp, principals: dict[str, Principal]) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            who = dict(scope["headers"]).get(b"x-test-patient")
            if who is not None:
                scope.setdefault("state", {})["principal"] = principals[who.decode()]
        await app(scope, receive, send)
    return wrapped


def test_patient_creates_lists_and_revokes(archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = default_institution(archive)
    exams = [make_exam(tmp_path, f"ACC-{i}") for i in range(2)]
    for exam in exams:
        assert archive.ingest.store_instance(exam.path.read_bytes(), origin="test", institution_id=home).ok
    with archive.sessions() as session:
        ids = {uid: sid for uid, sid in session.execute(select(Study.study_uid, Study.id))}
    mine = ids[exams[0].study_uid]  # the patient hid exams[1]: not in their scope
    principals = {"1": _patient([mine], "d" * 64), "2": _patient([mine], "e" * 64)}
    monkeypatch.setitem(ROLE_PERMISSIONS, Role.SHARE_VIEWER, ROLE_PERMISSIONS[Role.SHARE_VIEWER] | {Permission.SHARE_CREATE})
    app = create_app(archive)
    with TestClient(_as_patient(app, principals)) as client, TestClient(app) as visitor:
        body = {"studies": [exams[0].study_uid], "expires_in_hours": 24, "password": "8642", "history": True}
        hidden = client.post("/api/patient/shares", headers=PATIENT, json={**body, "studies": [exams[1].study_uid]})
        assert hidden.status_code == 404
        too_long = client.post("/api/patient/shares", headers=PATIENT, json={**body, "expires_in_hours": 24 * 31})
        assert too_long.status_code == 422
        created = client.post("/api/patient/shares", headers=PATIENT, json=body)
        assert created.status_code == 201, created.text
        share = created.json()
        token = share["url"].rsplit("/s/", 1)[1]
        assert share["qr_png"].startswith("data:image/png;base64,")

        assert visitor.post(f"/api/shares/{token}/open", json={"password": "8642"}).status_code == 200
        assert visitor.get("/api/patient/shares").status_code == 403  # a visitor is not the patient
        assert visitor.get("/api/patient/me").json()["exams"] == 1
        listed = client.get("/api/patient/shares", headers=PATIENT).json()["shares"]
        assert [(s["id"], s["studies"], s["history_studies"], s["opened"], s["password"]) for s in listed] == [
            (share["id"], [exams[0].study_uid], [], 1, True)]
        assert client.get("/api/patient/shares", headers={"X-Test-Patient": "2"}).json()["shares"] == []
        assert client.delete(f"/api/patient/shares/{share['id']}", headers={"X-Test-Patient": "2"}).status_code == 404
        assert client.delete(f"/api/patient/shares/{share['id']}", headers=PATIENT).status_code == 204
        assert visitor.get("/api/patient/me").status_code == 401
        assert client.get("/api/patient/shares", headers=PATIENT).json()["shares"][0]["revoked"] is True
