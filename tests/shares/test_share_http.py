"""A share visitor over HTTP on a real ``yunying serve`` (both databases), two hospitals.

Proves: the link's entry answers 404 for an unknown token and 410 once ended; a wrong password is
refused (401) and, after ``share_password_failures``, the share is locked even for the right one (429);
with the ``yy_share`` cookie the visitor sees exactly the shared exams through QIDO-RS, WADO-RS and the
patient-space views (another exam of the same patient: 404), an anonymous share's exam list and report
carry no identifier, staff routes stay closed; revoking or expiring the share ends an open session on
its next request; a visitor's feedback ticket (with a screenshot) reaches only the exam's hospital's
administrators, who close it; every open, view and ticket is audited under ``share:<id>``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from tests.security.conftest import direct, make_tenant, stow
from tests.shares.exams import IDENTIFIERS, make_exam, png_data_url
from tests.support.server import ServerProcess
from yunying.auth.access import Role
from yunying.index.access import Scope
from yunying.index.models import AuditEvent, Share, Study
from yunying.shares import service

pytestmark = pytest.mark.timeout(300)
CREATOR = "c" * 64


def _ids(server: ServerProcess, uids: list[str]) -> dict[str, int]:
    archive = direct(server)
    try:
        with archive.sessions() as session:
            rows = session.execute(select(Study.study_uid, Study.id).where(Study.study_uid.in_(uids))).all()
            return {uid: sid for uid, sid in rows}
    finally:
        archive.close()


def _share(server: ServerProcess, visible: list[int], uids: list[str], **kw: object) -> service.NewShare:
    archive = direct(server)
    try:
        return service.create(archive.sessions, creator=CREATOR, actor="patient:test", study_uids=uids,
                              visible=Scope(None, None, study_ids=frozenset(visible)), expires_in=timedelta(days=2),
                              **kw)  # type: ignore[arg-type]
    finally:
        archive.close()


def _qido(client: httpx.Client) -> set[str]:
    response = client.get("/dicom-web/studies")
    assert response.status_code in (200, 204), response.text
    return {r["0020000D"]["Value"][0] for r in (response.json() if response.content else [])}


def test_share_visitor_end_to_end(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_factory(open_dicom=False, YUNYING_SHARE_PASSWORD_FAILURES="3", YUNYING_LOGIN_RATE_PER_MINUTE="500")
    a = make_tenant(server, "hosp-a", tmp_path, [Role.TECHNICIAN, Role.RADIOLOGIST, Role.HOSPITAL_ADMIN])
    b = make_tenant(server, "hosp-b", tmp_path, [Role.TECHNICIAN, Role.HOSPITAL_ADMIN])
    a1, a2 = make_exam(tmp_path / "a", "ACC-A1"), make_exam(tmp_path / "a", "ACC-A2")
    b1 = make_exam(tmp_path / "b", "ACC-B1", patient_id="B-555")
    for tenant, exams in ((a, [a1, a2]), (b, [b1])):
        assert stow(server, tenant.headers(Role.TECHNICIAN), [e.path for e in exams]).status_code == 200
    ids = _ids(server, [a1.study_uid, a2.study_uid, b1.study_uid])
    secrets = (*IDENTIFIERS, "B-555", "ACC-A1", "ACC-B1")
    report = httpx.post(server.url + "/api/reports", headers=a.headers(Role.RADIOLOGIST), timeout=30, json={
        "study_uid": a1.study_uid, "status": "final", "findings": "ZHANGSAN XIAOMING PID-73915: lungs clear.",
        "impression": "张三小明 normal"})
    assert report.status_code == 201, report.text
    anonymous = _share(server, list(ids.values()), [a1.study_uid, b1.study_uid], password="2468", anonymous=True)
    plain = _share(server, list(ids.values()), [a1.study_uid])
    token = anonymous.token

    with httpx.Client(base_url=server.url, timeout=30) as visitor, httpx.Client(base_url=server.url, timeout=30) as other:
        assert visitor.get(f"/api/shares/{'x' * 43}").status_code == 404
        assert visitor.get(f"/api/shares/{token}").json()["needs_password"] is True
        assert visitor.post(f"/api/shares/{token}/open", json={"password": "0000"}).status_code == 401
        assert visitor.get("/api/patient/me").status_code == 401  # no session yet
        opened = visitor.post(f"/api/shares/{token}/open", json={"password": "2468"})
        assert opened.status_code == 200 and opened.json() == {"next": "/m/exams"}
        assert "HttpOnly" in opened.headers["set-cookie"] and "SameSite=Lax" in opened.headers["set-cookie"]

        # Exactly the shared exams, across both hospitals; the patient's other exam is not there. The share is
        # anonymous: QIDO shows replaced UIDs (those of its metadata, which lead back to the exams), no
        # identifiers, and refuses to be searched by what it hides.
        shown_uids = _qido(visitor)
        assert len(shown_uids) == 2 and not shown_uids & {a1.study_uid, b1.study_uid}
        for uid in shown_uids:
            assert visitor.get(f"/dicom-web/studies/{uid}/metadata").status_code == 200
            series = visitor.get(f"/dicom-web/studies/{uid}/series")
            assert series.status_code == 200 and len(series.json()) == 1
        found = visitor.get("/dicom-web/studies", params={"includefield": "all"}).text
        for secret in secrets:
            assert secret.lower() not in found.lower(), secret
        assert visitor.get("/dicom-web/studies", params={"PatientName": "ZHANG*"}).status_code == 400
        assert visitor.get(f"/dicom-web/studies/{a1.study_uid}/metadata").status_code == 200
        assert visitor.get(f"/dicom-web/studies/{a2.study_uid}/metadata").status_code == 404
        assert visitor.get(f"/api/patient/exams/{a2.study_uid}/report").status_code == 404
        me = visitor.get("/api/patient/me").json()
        assert me["kind"] == "share" and me["anonymous"] is True and me["exams"] == 2
        assert me["watermark"].startswith(f"分享查看 · {anonymous.id} · ")
        listed = visitor.get("/api/patient/exams")
        assert {e["study_uid"] for e in listed.json()["exams"]} == {a1.study_uid, b1.study_uid}
        assert sorted(h["name"] for h in listed.json()["hospitals"]) == ["Hospital hosp-a", "Hospital hosp-b"]
        shown = visitor.get(f"/api/patient/exams/{a1.study_uid}/report")
        assert shown.status_code == 200 and "lungs clear" in shown.json()["findings"] and shown.json()["pdf"] is None
        for secret in secrets:
            assert secret.lower() not in (listed.text + shown.text + me["watermark"]).lower(), secret
        assert visitor.get("/api/reports", params={"study": a1.study_uid}).json()["items"] == []  # accession there
        for closed in ("/api/feedback", "/api/patient/shares", "/ui/admin/users"):
            assert visitor.get(closed).status_code == 403, closed

        # A ticket with a screenshot, about a shared exam: hospital A's administrators only.
        url, png = png_data_url()
        sent = visitor.post("/api/feedback", json={"study": a1.study_uid, "page": "/m/exams", "text": "看不到图像",
                                                   "screenshot": url})
        assert sent.status_code == 201, sent.text
        assert visitor.post("/api/feedback", json={"study": a2.study_uid, "text": "x"}).status_code == 404
        assert visitor.post("/api/feedback", json={"text": "x", "screenshot": "data:image/png;base64,AAAA"}
                            ).status_code == 422
        assert visitor.post("/api/feedback", json={"text": "x" * 2001}).status_code == 422
        admin_a, admin_b = a.headers(Role.HOSPITAL_ADMIN), b.headers(Role.HOSPITAL_ADMIN)
        tickets = visitor.get("/api/feedback", headers=admin_a).json()["tickets"]
        assert [(t["id"], t["study_uid"], t["who"]) for t in tickets] == [(sent.json()["id"], a1.study_uid,
                                                                            f"share:{anonymous.id}")]
        assert httpx.get(server.url + tickets[0]["screenshot"], headers=admin_a, timeout=30).content == png
        assert httpx.get(server.url + "/api/feedback", headers=admin_b, timeout=30).json()["tickets"] == []
        page = httpx.get(server.url + "/ui/admin/feedback", headers=admin_a, timeout=30)
        assert page.status_code == 200 and "看不到图像" in page.text
        assert httpx.post(server.url + f"/api/feedback/{tickets[0]['id']}/close", headers=admin_b,
                          timeout=30).status_code == 404
        assert httpx.post(server.url + f"/api/feedback/{tickets[0]['id']}/close", headers=admin_a,
                          timeout=30).status_code == 204
        assert httpx.get(server.url + "/api/feedback", params={"state": "open"}, headers=admin_a,
                         timeout=30).json()["tickets"] == []

        # Wrong passwords lock the share: the right one is refused too (the open session is not affected).
        assert [other.post(f"/api/shares/{token}/open", json={"password": "1111"}).status_code
                for _ in range(3)] == [401, 401, 429]
        locked = other.post(f"/api/shares/{token}/open", json={"password": "2468"})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 60
        assert visitor.get("/api/patient/me").status_code == 200

        # A second visitor of a share without password; then the patient revokes one share, the other expires.
        assert other.post(f"/api/shares/{plain.token}/open", json={}).status_code == 200
        assert _qido(other) == {a1.study_uid}
        archive = direct(server)
        try:
            service.revoke(archive.sessions, creator=CREATOR, actor="patient:test", share_id=anonymous.id)
            with archive.sessions() as session:
                session.execute(update(Share).where(Share.id == plain.id).values(
                    expires_at=datetime.now(UTC) - timedelta(seconds=1)))
                session.commit()
        finally:
            archive.close()
        for client in (visitor, other):
            assert client.get("/dicom-web/studies").status_code == 401
            assert client.get("/api/patient/exams").status_code == 401
        assert visitor.get(f"/api/shares/{token}").status_code == 410
        assert visitor.post(f"/api/shares/{plain.token}/open", json={}).status_code == 410

    archive = direct(server)
    try:
        with archive.sessions() as session:
            entries = {(r.actor, r.action, r.subject, r.outcome) for r in session.execute(
                select(AuditEvent.actor, AuditEvent.action, AuditEvent.subject, AuditEvent.outcome))}
    finally:
        archive.close()
    actor = f"share:{anonymous.id}"
    for action, outcome in (("share-open", "failed"), ("share-open", "success"), ("share-open", "locked"),
                            ("view", "success"), ("feedback", "success")):
        assert (actor, action, a1.study_uid, outcome) in entries, (action, outcome)
    assert (actor, "share-open", b1.study_uid, "success") in entries
    assert any(e[0] == actor and e[1] == "query" for e in entries)
