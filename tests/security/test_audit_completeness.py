"""Acceptance 3 of the access issue (completeness half): every access to patient data leaves an audit entry.

Every route whose permission is study:read or study:store (taken from the route table and the
policy, so new routes are covered), and every DIMSE service, is called once; each call must add an
entry with the caller as actor and the study (or, for searches, the query) as subject.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from sqlalchemy import select

from tests.reports.pdf import pdf_instance
from tests.security.conftest import BOUNDARY, Tenant, direct, stow
from tests.security.test_authorization_matrix import _fill, _routes
from tests.support.gateway_data import make_study
from tests.support.server import ServerProcess
from yunying.api.policy import ROUTE_POLICY
from yunying.auth.access import Permission, Role
from yunying.auth.peers import add_peer
from yunying.index.models import AuditEvent

pytestmark = pytest.mark.timeout(600)
DCMTK = {**os.environ, "TCP_NODELAY": "1"}


def _entries_after(server: ServerProcess, last_id: int) -> list[AuditEvent]:
    archive = direct(server)
    try:
        with archive.sessions() as session:
            return list(session.execute(select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id))
                        .scalars())
    finally:
        archive.close()


def _last_id(server: ServerProcess) -> int:
    rows = _entries_after(server, 0)
    return rows[-1].id if rows else 0


def _wait_for_film(server: ServerProcess, tenant: Tenant) -> None:
    assert tenant.study is not None
    url = f"{server.url}/api/studies/{tenant.study.study_uid}/films"
    deadline = time.monotonic() + 120  # the server's job worker composes it; a bound, not a speed assertion
    while time.monotonic() < deadline:
        if httpx.get(url, headers=tenant.headers(Role.RADIOLOGIST), timeout=30).json().get("state") == "ready":
            return
        time.sleep(0.5)
    raise AssertionError("the study's film was not composed")


def test_every_patient_data_route_and_dimse_service_is_audited(
        two_hospitals: tuple[ServerProcess, Tenant, Tenant], tmp_path: Path) -> None:
    server, a, _b = two_hospitals
    assert a.study is not None
    patient_routes = [(op, m, p) for op, m, p in _routes(server)
                      if ROUTE_POLICY.get(op) in (Permission.STUDY_READ, Permission.STUDY_STORE)]
    assert len(patient_routes) >= 20
    # A PDF report of A's study, so the report routes ({report_id} is filled with 1) have something to show.
    first = pydicom.dcmread(a.study.files[0], stop_before_pixels=True)
    pdf_instance(tmp_path / "report.dcm", str(first.AccessionNumber), a.study.study_uid, str(first.PatientID))
    assert stow(server, a.headers(Role.TECHNICIAN), [tmp_path / "report.dcm"]).status_code == 200
    _wait_for_film(server, a)  # the final (PDF) report queues the study's film, so the film routes have sheets
    made = httpx.post(f"{server.url}/api/studies/{a.study.study_uid}/downloads", headers=a.headers(Role.RADIOLOGIST),
                      timeout=120)
    assert made.status_code == 202, made.text  # so the download routes ({download} below) have one to show
    for operation, method, path in patient_routes:
        before = _last_id(server)
        kwargs: dict[str, Any] = {"headers": a.headers(Role.RADIOLOGIST), "timeout": 60}
        url = _fill(path, a, server).replace("/api/downloads/1", f"/api/downloads/{made.json()['id']}")
        expected_subject = a.study.study_uid
        if operation == "cloudfilm_send":  # A's exam has no phone on file: refused (409), and audited
            method, kwargs["json"] = "POST-JSON", {}
        if operation in ("downloads_create", "films_compose"):  # act on the stored study: no body
            pass
        elif method == "POST":  # STOW: a new study
            new = make_study(tmp_path / operation, 1, accession="AUDIT")
            body = (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + new.files[0].read_bytes()
                    + f"\r\n--{BOUNDARY}--\r\n".encode())
            if "{study}" in path:
                url = url.replace(a.study.study_uid, new.study_uid)
            kwargs["content"] = body
            kwargs["headers"] = {**kwargs["headers"],
                                 "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'}
            expected_subject = new.study_uid
        if operation in ("viewer_page", "mobile_viewer_page"):
            kwargs["params"] = {"study": a.study.study_uid}
        if method == "PUT":  # JSON documents (viewer annotations): an empty first version
            kwargs["json"] = {"version": 0}
        if operation == "reports_list":
            kwargs["params"] = {"study": a.study.study_uid}
        if operation == "wado_uri":
            first = pydicom.dcmread(a.study.files[0], stop_before_pixels=True)
            kwargs["params"] = {"requestType": "WADO", "studyUID": a.study.study_uid,
                                "seriesUID": str(first.SeriesInstanceUID), "objectUID": a.study.sop_uids[0]}
        response = httpx.request(method.removesuffix("-JSON"), url, **kwargs)
        refused_but_audited = operation == "cloudfilm_send" and response.status_code == 409
        assert response.status_code < 400 or refused_but_audited, (operation, response.status_code, response.text[:300])
        entries = [e for e in _entries_after(server, before) if e.actor == f"radiologist-{a.code}"]
        assert entries, f"{operation} left no audit entry"
        if operation.startswith("qido") and "{study}" not in path:
            assert any(e.action == "query" for e in entries), operation
        else:
            assert any(e.subject == expected_subject for e in entries), (operation, [(e.action, e.subject) for e in entries])

    archive = direct(server)
    try:
        add_peer(archive.sessions, "PACS_A", "127.0.0.1", a.institution_id, "technician")
    finally:
        archive.close()
    dimse_calls = {
        "C-FIND": ["findscu", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={a.study.study_uid}"],
        "C-GET": ["getscu", "-S", "-od", str(tmp_path), "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={a.study.study_uid}"],
        "C-STORE": ["storescu"],
    }
    for service, command in dimse_calls.items():
        before = _last_id(server)
        tool, *rest = command
        files = [str(a.study.files[0])] if tool == "storescu" else []
        subprocess.run([tool, "-aet", "PACS_A", "-aec", server.ae_title, *rest, "127.0.0.1", str(server.dicom_port), *files],
                       capture_output=True, text=True, timeout=60, env=DCMTK, check=False)
        entries: list[AuditEvent] = []
        for _ in range(50):  # the association's summary entry is written as it is released
            entries = [e for e in _entries_after(server, before) if e.actor == "ae:PACS_A"]
            if any(e.subject == a.study.study_uid or e.action == "query" for e in entries):
                break
            time.sleep(0.1)
        assert entries, f"{service} left no audit entry"
        if service == "C-FIND":
            assert any(e.action == "query" for e in entries)
        else:
            assert any(e.subject == a.study.study_uid for e in entries), (service, [(e.action, e.subject) for e in entries])
    # and a refused peer is audited too
    before = _last_id(server)
    subprocess.run(["findscu", "-S", "-aet", "NOBODY", "-aec", server.ae_title, "-k", "QueryRetrieveLevel=STUDY",
                    "127.0.0.1", str(server.dicom_port)], capture_output=True, timeout=60, env=DCMTK, check=False)
    assert any(e.action == "denied" and e.actor == "ae:NOBODY" for e in _entries_after(server, before))
