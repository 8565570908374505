"""The cloud-film flow end to end against a real ``yunying serve`` (both databases).

A hospital turns on SMS on final; an exam with a phone and ID card on file is stored by STOW-RS; its
final report arrives over MLLP (PV1-2 outpatient) → the exam's token and the SMS with the link (outbox,
delivered by the server's worker). The link opens (hospital, modality, date), a code goes to the
phone on file, a wrong code is refused, the right one gives a patient session. The patient sees only
their exam: patient API, QIDO-RS, WADO-RS (another patient's study answers 404, not 403), the
report; hiding needs the CSRF token; every view is in the access log. Staff print the cover sheet
whose QR code (read back from the PDF with zxing-cpp) opens the exam, and send the link by SMS.
Neither code nor phone number reaches the server log.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
import zxingcpp

from tests.cloudfilm.conftest import CARD_1, CARD_2, KEY_ENV, PHONE_1, PHONE_1_MASKED, PHONE_2, exam, six_digits
from tests.reports.messages import oru, send
from tests.security.conftest import stow
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.timeout(300)


def _messages(server: ServerProcess, purpose: str) -> list[dict[str, Any]]:
    answer = httpx.get(server.url + "/api/notifications", headers=server.admin_headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return [m for m in answer.json()["items"] if m["purpose"] == purpose]


def _wait_sent(server: ServerProcess, purpose: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sent = [m for m in _messages(server, purpose) if m["state"] == "sent"]
        if sent:
            return sent[0]
        time.sleep(0.3)
    raise AssertionError(f"no {purpose} message was sent")


def _store(server: ServerProcess, tmp: Path, name: str, **kwargs: str) -> str:
    data, study_uid = exam(**kwargs)
    path = tmp / f"{name}.dcm"
    path.write_bytes(data)
    assert stow(server, server.admin_headers, [path]).status_code == 200
    return study_uid


def test_report_to_patient_session_to_own_exams_only(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    hl7_port = free_port()
    server = server_factory(YUNYING_HL7_PORT=str(hl7_port), YUNYING_HL7_FACILITIES=json.dumps({"RIS_A": "default"}),
                            **KEY_ENV)
    admin = server.admin_headers
    changed = httpx.put(server.url + "/api/institutions/1/cloudfilm", headers=admin, timeout=30, json={
        "sms_on_final": True, "display_name": "市第一人民医院", "token_days": 14,
        "patient_classes": {"physical-exam": False}})
    assert changed.status_code == 200 and changed.json()["patient_classes"]["physical-exam"] is False, changed.text
    mine = _store(server, tmp_path, "mine", card=CARD_1, phone=PHONE_1, patient_id="MRN-1", accession="CF-ACC-1")
    theirs = _store(server, tmp_path, "theirs", card=CARD_2, phone=PHONE_2, patient_id="MRN-2", accession="CF-ACC-2")

    message = oru("CF-1", "CF-ACC-1", "F").replace("\rOBR|", "\rPV1|1|O\rOBR|", 1)
    assert send(hl7_port, [message], tmp_path) == [("AA", "CF-1")]
    link = _wait_sent(server, "cloudfilm-link")
    assert link["recipient"] == PHONE_1_MASKED and "市第一人民医院" in link["body"]
    token = re.search(r"/m/open/([A-Za-z0-9_-]+)", link["body"]).group(1)  # type: ignore[union-attr]
    assert link["body"].count(server.url + "/m/open/") == 1

    opened = httpx.get(f"{server.url}/api/cloudfilm/open/{token}", timeout=30).json()
    assert opened["hospital"] == "市第一人民医院" and opened["methods"] == ["phone", "id_card"]
    assert opened["exam"] == {"modality": "CT", "date": "2026-11-20"}
    assert httpx.get(f"{server.url}/api/cloudfilm/open/{'A' * 43}", timeout=30).status_code == 404

    base = f"{server.url}/api/cloudfilm/open/{token}"
    asked = httpx.post(base + "/code", json={"method": "phone", "value": PHONE_1}, timeout=30)
    assert asked.status_code == 202 and asked.json() == {"sent_to": PHONE_1_MASKED, "expires_in": 300}
    code = six_digits(_messages(server, "cloudfilm-code")[0]["body"])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = httpx.post(base + "/verify", json={"method": "phone", "value": PHONE_1, "code": wrong}, timeout=30)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    verified = httpx.post(base + "/verify", json={"method": "id_card", "value": CARD_1, "code": code}, timeout=30)
    assert verified.status_code == 200 and verified.json()["next"] == "/m/exams", verified.text
    assert "HttpOnly" in verified.headers["set-cookie"] and "SameSite=Lax" in verified.headers["set-cookie"]
    csrf = verified.json()["csrf_token"]

    with httpx.Client(base_url=server.url, cookies=verified.cookies, timeout=30) as patient:
        me = patient.get("/api/patient/me").json()
        assert me["display_name"] == "Zhang *" and me["exams"] == 1
        exams = patient.get("/api/patient/exams").json()
        assert [e["study_uid"] for e in exams["exams"]] == [mine] and exams["exams"][0]["report"]["status"] == "final"
        assert exams["hospitals"][0]["name"] == "市第一人民医院" and exams["hospitals"][0]["count"] == 1
        assert patient.get("/api/patient/exams/" + mine + "/report").json()["impression"] == "Normal chest."
        assert patient.get(f"/dicom-web/studies/{mine}/metadata").status_code == 200
        other = patient.get(f"/dicom-web/studies/{theirs}/metadata")
        assert other.status_code == 404, other.text  # like a missing study, not 403
        found = patient.get("/dicom-web/studies", headers={"Accept": "application/dicom+json"}).json()
        assert [s["0020000D"]["Value"][0] for s in found] == [mine]
        assert patient.get(f"/api/patient/exams/{theirs}/report").status_code == 404
        assert patient.post(f"/api/patient/exams/{mine}/hide").status_code == 403  # no CSRF token
        assert patient.post(f"/api/patient/exams/{mine}/hide", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert patient.get(f"/dicom-web/studies/{mine}/metadata").status_code == 404
        assert patient.post(f"/api/patient/exams/{mine}/unhide", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert patient.get("/api/reports").status_code == 200  # staff routes answer within the patient's scope
        assert patient.get("/api/notifications").status_code == 403
        log = patient.get("/api/patient/access-log").json()["entries"]
        actions = {(e["action"], e["exam"]) for e in log}
        assert {("cloudfilm-open", mine), ("cloudfilm-verify", mine), ("report-read", mine), ("retrieve", mine),
                ("patient-hide", mine), ("patient-me", "")} <= actions, actions
        assert {e["who"] for e in log if e["action"] == "retrieve"} == {me_actor := log[0]["who"]}
        assert me_actor.startswith("patient:") and any(e["who"] == "anonymous" for e in log)
        assert all(e["exam"] in ("", mine) for e in log)
        assert patient.post("/api/patient/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert patient.get("/api/patient/me").status_code == 401

    # Staff: the cover sheet's QR code opens the exam; the link by SMS.
    cover = httpx.get(f"{server.url}/api/studies/{mine}/cloudfilm/cover.pdf", headers=admin, timeout=60)
    assert cover.status_code == 200 and cover.headers["content-type"] == "application/pdf"
    [image] = pypdf.PdfReader(io.BytesIO(cover.content)).pages[0].images
    [qr] = zxingcpp.read_barcodes(image.image)
    assert qr.text.startswith(server.url + "/m/open/")
    assert httpx.get(server.url + "/api/cloudfilm/open/" + qr.text.rsplit("/", 1)[1], timeout=30).status_code == 200
    sent = httpx.post(f"{server.url}/api/studies/{mine}/cloudfilm/send", headers=admin, json={}, timeout=30)
    assert sent.status_code == 202 and sent.json() == {"sent_to": PHONE_1_MASKED}
    outbox = httpx.get(server.url + "/ui/admin/outbox", headers=admin, timeout=30)
    assert outbox.status_code == 200 and PHONE_1_MASKED in outbox.text

    server_log = server.log()
    assert code not in server_log and PHONE_1 not in server_log and CARD_1 not in server_log
