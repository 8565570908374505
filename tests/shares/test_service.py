"""The share rules in the domain, on both databases: what a share holds, passwords and lockout, sessions
that end with their share, anonymous views, tickets and their owners, and the audit trail.

The patient's scope is stood in for by a ``Scope`` of the exams the patient may see (the patient session
itself is another module's): an exam outside it (hidden, someone else's) cannot be shared.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.shares.exams import IDENTIFIERS, make_exam, png_data_url
from tests.support.archive import default_institution
from yunying.auth.access import Principal, Role, scope_of
from yunying.compose import Archive
from yunying.errors import NotFound
from yunying.feedback import service as feedback
from yunying.index.access import Scope
from yunying.index.models import AuditEvent, Institution, Study
from yunying.reports import service as reports
from yunying.shares import exams, service
from yunying.shares.service import Limits

CREATOR = "a" * 64  # the patient's identity hash
LIMITS = Limits(max_days=30, failures=3, lock_minutes=30)


def _store(archive: Archive, tmp: Path, accession: str, institution: int, **kwargs: str) -> tuple[str, int]:
    exam = make_exam(tmp, accession, **kwargs)
    result = archive.ingest.store_instance(exam.path.read_bytes(), origin="test", institution_id=institution)
    assert result.ok, result
    with archive.sessions() as session:
        return exam.study_uid, session.execute(select(Study.id).where(Study.study_uid == exam.study_uid)).scalar_one()


def _audit(archive: Archive, action: str) -> list[tuple[str, str, str, str]]:
    with archive.sessions() as session:
        return [tuple(r) for r in session.execute(select(AuditEvent.actor, AuditEvent.subject, AuditEvent.outcome,
                                                         AuditEvent.detail).where(AuditEvent.action == action))]


def test_shares_sessions_anonymity_and_tickets(archive: Archive, tmp_path: Path) -> None:
    home = default_institution(archive)
    with archive.sessions() as session:
        other = Institution(code="hosp-b", name="Hospital B")
        session.add(other)
        session.commit()
        other_id = other.id
    chosen, chosen_id = _store(archive, tmp_path, "ACC-1", home)
    older, older_id = _store(archive, tmp_path, "ACC-2", other_id, date="20200101")  # another hospital, same patient
    hidden, _hidden_id = _store(archive, tmp_path, "ACC-3", home)  # hidden by the patient: not in their scope
    patient = Scope(None, None, study_ids=frozenset({chosen_id, older_id}))
    now = datetime.now(UTC)

    def create(uids: list[str], **kw: object) -> service.NewShare:
        return service.create(archive.sessions, creator=CREATOR, actor="patient:test", visible=patient, study_uids=uids,
                              expires_in=timedelta(days=3), limits=LIMITS, now=now, **kw)  # type: ignore[arg-type]

    # What may be shared, and for how long.
    with pytest.raises(NotFound):
        create([chosen, hidden])
    with pytest.raises(service.ShareRefused):
        service.create(archive.sessions, creator=CREATOR, actor="p", visible=patient, study_uids=[chosen],
                       expires_in=timedelta(days=31), limits=LIMITS)
    with pytest.raises(service.ShareRefused):
        create([chosen], password="123")
    guarded = create([chosen], password="2468", anonymous=True)
    with_history = create([chosen], history=True)
    assert guarded.study_uids == (chosen,) and with_history.study_uids == (chosen, older)  # the hidden exam is not added
    mine = {v.id: v for v in service.list_shares(archive.sessions, CREATOR)}
    assert mine[with_history.id].studies == (chosen,) and mine[with_history.id].history_studies == (older,)
    assert mine[guarded.id].password and mine[guarded.id].anonymous and not mine[guarded.id].revoked
    assert service.list_shares(archive.sessions, "b" * 64) == []

    # Wrong passwords lock the share for everyone, even against the right one, until the lock ends.
    for _ in range(LIMITS.failures - 1):
        with pytest.raises(service.WrongPassword):
            service.open_share(archive.sessions, guarded.token, "1357", limits=LIMITS, now=now)
    with pytest.raises(service.ShareLocked) as locked:
        service.open_share(archive.sessions, guarded.token, "1357", limits=LIMITS, now=now)
    assert locked.value.until == now + timedelta(minutes=LIMITS.lock_minutes)
    with pytest.raises(service.ShareLocked):
        service.open_share(archive.sessions, guarded.token, "2468", limits=LIMITS, now=now)
    later = now + timedelta(minutes=LIMITS.lock_minutes + 1)
    opened = service.open_share(archive.sessions, guarded.token, "2468", limits=LIMITS, now=later)
    visitor = service.authenticate(archive.sessions, opened.cookie, now=later)
    assert visitor is not None and visitor.roles == {Role.SHARE_VIEWER} and visitor.username == f"share:{guarded.id}"
    assert visitor.extra["anonymous"] == "1" and visitor.extra["watermark"].startswith(f"分享查看 · {guarded.id} · ")
    assert scope_of(visitor) == Scope(None, None, study_ids=frozenset({chosen_id}))
    assert service.list_shares(archive.sessions, CREATOR)[-1].opened == 1  # guarded: the older share, listed last

    # History is a snapshot: an exam stored after the share was made is not in it.
    newer, _newer_id = _store(archive, tmp_path, "ACC-4", home)  # the patient sees it now; the share does not
    history_visit = service.open_share(archive.sessions, with_history.token, None, limits=LIMITS, now=now)
    history_visitor = service.authenticate(archive.sessions, history_visit.cookie, now=now)
    assert history_visitor is not None
    assert scope_of(history_visitor).study_ids == {chosen_id, older_id}

    # Anonymous views: no identifier of the patient in the exam list or the report.
    reports.create(archive.sessions, reports.ReportInput(
        institution_id=home, status=reports.Status.FINAL, source=reports.Source.API, study_uid=chosen,
        findings="张三小明 (PID-73915, born 1980-01-02): no nodule.", impression="ZhangSan normal, ACC-1"))
    listed = exams.list_exams(archive.sessions, scope_of(visitor), anonymous=True)
    assert [e.study_uid for e in listed] == [chosen] and listed[0].report_status == "final"
    report = exams.exam_report(archive.sessions, scope_of(visitor), chosen, anonymous=True)
    shown = repr([dataclasses.asdict(e) for e in listed]) + repr(dataclasses.asdict(report))
    for secret in (*IDENTIFIERS, "ACC-1"):
        assert secret.lower() not in shown.lower(), secret
    assert "no nodule" in report.findings and not report.has_pdf
    named = exams.exam_report(archive.sessions, scope_of(history_visitor), chosen, anonymous=False)
    assert "张三小明" in named.findings
    with pytest.raises(NotFound):
        exams.exam_report(archive.sessions, scope_of(visitor), newer, anonymous=True)

    # Tickets: a visitor's ticket on a shared exam belongs to that exam's hospital; not on others.
    url, png = png_data_url()
    ticket = feedback.submit(archive.sessions, archive.blobs, who=visitor.username, via=visitor.via,
                             scope=scope_of(visitor), study_uid=chosen, page="/m/exams", text="图像无法加载",
                             screenshot=feedback.parse_screenshot(url))
    with pytest.raises(NotFound):
        feedback.submit(archive.sessions, archive.blobs, who=visitor.username, via=visitor.via, scope=scope_of(visitor),
                        study_uid=older, page="", text="x", screenshot=None)
    for bad in ("data:image/png;base64,aGVsbG8=", url.replace("image/png", "image/jpeg"), "http://x/y.png"):
        with pytest.raises(feedback.BadFeedback):
            feedback.parse_screenshot(bad)
    admin_a = Principal(1, "admin-a", frozenset({Role.HOSPITAL_ADMIN}), home, "token:x")
    admin_b = Principal(2, "admin-b", frozenset({Role.HOSPITAL_ADMIN}), other_id, "token:y")
    assert [t.id for t in feedback.tickets_for(archive.sessions, admin_a, "open", "test")] == [ticket]
    assert feedback.tickets_for(archive.sessions, admin_b, None, "test") == []
    assert feedback.screenshot_for(archive.sessions, archive.blobs, admin_a, ticket, "test").data == png
    with pytest.raises(NotFound):
        feedback.close_for(archive.sessions, admin_b, ticket, "test")
    feedback.close_for(archive.sessions, admin_a, ticket, "test")
    assert feedback.tickets_for(archive.sessions, admin_a, "closed", "test")[0].closed_by == "admin-a"

    # Revoking or expiring a share ends its open sessions at once.
    with pytest.raises(NotFound):
        service.revoke(archive.sessions, creator="b" * 64, actor="p", share_id=guarded.id)
    service.revoke(archive.sessions, creator=CREATOR, actor="patient:test", share_id=guarded.id)
    assert service.authenticate(archive.sessions, opened.cookie, now=later) is None
    with pytest.raises(service.ShareGone):
        service.info(archive.sessions, guarded.token)
    after = with_history.expires_at + timedelta(seconds=1)
    assert service.authenticate(archive.sessions, history_visit.cookie, now=after) is None
    with pytest.raises(service.ShareGone):
        service.open_share(archive.sessions, with_history.token, None, now=after)

    # Every open, right or wrong, names the share, the exam and the creator.
    opens = _audit(archive, "share-open")
    creator = f"creator:{CREATOR}"
    assert opens.count((f"share:{guarded.id}", chosen, "failed", creator)) == LIMITS.failures - 1
    assert opens.count((f"share:{guarded.id}", chosen, "locked", creator)) == 2
    assert (f"share:{guarded.id}", chosen, "success", creator) in opens
    assert {(a, s) for a, s, _o, _d in _audit(archive, "share-create")} >= {("patient:test", chosen),
                                                                           ("patient:test", older)}
    assert ("patient:test", chosen, "success", f"share:{guarded.id}") in _audit(archive, "share-revoke")
