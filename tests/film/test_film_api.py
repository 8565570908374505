"""End to end on a real ``yunying serve`` (both databases): a study stored by STOW-RS, a final report by
HL7 ORU over MLLP (mllp_send), the film job run by the server's own worker thread, then the film read
through the API (JSON, PNG, PDF), re-queued by staff, a study that is not there a 404 on every film route
(another hospital's study: tests/security), every read audited, no patient identifier in the server log."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from tests.film.studies import PATIENT_ID, ct_study
from tests.reports.messages import oru, send
from tests.security.conftest import direct, stow
from tests.support.server import ServerProcess, free_port
from yunying.index.models import AuditEvent

pytestmark = pytest.mark.timeout(300)


def _films(server: ServerProcess, study_uid: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{server.url}/api/studies/{study_uid}/films", headers=headers, timeout=30)


def _wait_ready(server: ServerProcess, study_uid: str, version: int | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 120  # a generous bound for a busy machine, not a speed assertion
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = _films(server, study_uid, server.admin_headers).json()
        if body["state"] == "ready" and (version is None or body["version"] > version):
            return body
        time.sleep(0.3)
    raise AssertionError(f"the film did not become ready: {body}\n{server.log()[-3000:]}")


def test_hl7_final_report_to_film_sheets(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    port = free_port()
    server = server_factory(YUNYING_HL7_PORT=str(port), YUNYING_HL7_FACILITIES=json.dumps({"RIS_A": "default"}),
                            YUNYING_FILM_DPI="60", YUNYING_JOB_POLL_SECONDS="0.2", YUNYING_FILM_SETTLE_SECONDS="0")
    study = ct_study(tmp_path / "ct", 6, accession="ACC-FILM-E2E")
    assert stow(server, server.admin_headers, study.files).status_code == 200
    assert _films(server, study.study_uid, server.admin_headers).json() == {
        "state": "none", "version": None, "updating": False, "header": None, "pdf_size": None, "sheets": []}

    assert send(port, [oru("FILM-F", "ACC-FILM-E2E", "F")], tmp_path) == [("AA", "FILM-F")]
    body = _wait_ready(server, study.study_uid)
    [sheet] = body["sheets"]
    assert sheet["layout"] == "4x5" and [c["instance_number"] for c in sheet["images"]] == [1, 2, 3, 4, 5, 6]
    assert body["header"]["patient_id"] == PATIENT_ID and body["header"]["modality"] == "CT"

    png = httpx.get(server.url + sheet["png"], headers=server.admin_headers, timeout=30)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (sheet["width"], sheet["height"]) == (14 * 60, 17 * 60)
    pdf = httpx.get(server.url + sheet["pdf"], headers=server.admin_headers, timeout=30)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == 1
    missing = httpx.get(f"{server.url}/api/studies/{study.study_uid}/films/2.png", headers=server.admin_headers, timeout=30)
    assert missing.status_code == 404

    # Staff queue a new composition: 202, then a newer version replaces the old one.
    queued = httpx.post(f"{server.url}/api/studies/{study.study_uid}/films", headers=server.admin_headers, timeout=30)
    assert queued.status_code == 202 and queued.json()["state"] == "pending"
    newer = _wait_ready(server, study.study_uid, version=body["version"])
    assert newer["version"] == queued.json()["job"]
    assert httpx.get(server.url + sheet["png"], headers=server.admin_headers, timeout=30).content != b""

    # A study that is not there (or not visible) is a 404 for every film route.
    for method, path in (("GET", "films"), ("GET", "films/1.png"), ("GET", "films.pdf"), ("POST", "films")):
        response = httpx.request(method, f"{server.url}/api/studies/1.2.3.4/{path}", headers=server.admin_headers,
                                 timeout=30)
        assert response.status_code == 404, (method, path)

    archive = direct(server)
    try:
        with archive.sessions() as session:
            views = list(session.scalars(select(AuditEvent).where(AuditEvent.subject == study.study_uid,
                                                                  AuditEvent.action.in_(("view", "film-request")))))
    finally:
        archive.close()
    details = [v.detail for v in views]
    assert "film sheet 1" in details and "film PDF" in details and any(d.startswith("film requested") for d in details)
    assert PATIENT_ID not in server.log() and "王小东" not in server.log()
