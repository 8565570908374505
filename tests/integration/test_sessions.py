"""Interactive sessions (issue 5): login, lockout, throttling, TOTP, idle lock, logout everywhere, password change.

In-process apps on SQLite and PostgreSQL; several apps on one database play several API nodes.
Time passing is simulated by moving the stored timestamps back.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select, text, update

from tests.support.web import ADMIN, CSRF, RADIOLOGIST, Site, site
from yunying.index.models import AuditEvent, User, UserSession


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Site]:
    with site(db_url, tmp_path) as built:
        yield built


def _audit(web: Site, actor: str, action: str = "login") -> list[str]:
    with web.archive.sessions() as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.actor == actor, AuditEvent.action == action)
                               .order_by(AuditEvent.id)).scalars().all()
    return [row.outcome for row in rows]


def _all_audit_text(web: Site) -> str:
    with web.archive.sessions() as session:
        rows = session.execute(select(AuditEvent)).scalars().all()
    return "\n".join(f"{r.actor} {r.action} {r.subject} {r.source} {r.outcome} {r.detail}" for r in rows)


def _age_sessions(web: Site, **moved: timedelta) -> None:
    """Pretend time passed: move the given session timestamps back."""
    with web.archive.sessions() as session:
        for row in session.execute(select(UserSession)).scalars():
            for column, delta in moved.items():
                setattr(row, column, getattr(row, column) - delta)
        session.commit()


def test_login_who_am_i_and_logout(web: Site) -> None:
    browser = web.browser()
    answer = browser.post("/api/session", json={"username": RADIOLOGIST[0], "password": RADIOLOGIST[1]})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("yy_session=")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {part.strip() for part in cookie.split(";")}
    assert "Secure" not in cookie  # plain HTTP here; see test_web_defences for TLS
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["user"] == {"id": body["user"]["id"], "username": RADIOLOGIST[0], "display_name": "Li Radiologist"}
    assert body["roles"] == ["radiologist"] and "study:read" in body["permissions"]
    assert body["institution"]["code"] == "default"
    assert body["via"] == "session" and len(body["csrf_token"]) >= 32
    assert body["second_factor_required"] is False and body["enrolment_required"] is False and body["locked"] is False
    browser.headers[CSRF] = body["csrf_token"]

    assert browser.get("/api/session").json()["user"]["username"] == RADIOLOGIST[0]
    assert browser.get("/dicom-web/studies").status_code in (200, 204)  # the cookie authenticates DICOMweb too

    assert browser.delete("/api/session").status_code == 204
    assert browser.get("/api/session").status_code == 401
    with web.archive.sessions() as session:
        assert session.execute(select(UserSession.revoked_at)).scalar_one() is not None
        assert "yy_session" not in session.execute(select(UserSession.id)).scalar_one()
    assert _audit(web, RADIOLOGIST[0]) == ["success"]
    assert _audit(web, RADIOLOGIST[0], "logout") == ["success"]


def test_bearer_and_basic_still_work_without_cookie(web: Site) -> None:
    client = web.browser()
    token = client.get("/api/session", headers={"Authorization": f"Bearer {web.tokens[RADIOLOGIST[0]]}"})
    assert token.status_code == 200 and token.json()["via"] == "token:rad-script" and token.json()["csrf_token"] is None
    basic = base64.b64encode(f"{RADIOLOGIST[0]}:{RADIOLOGIST[1]}".encode()).decode()
    assert client.get("/api/session", headers={"Authorization": f"Basic {basic}"}).json()["via"] == "password"
    assert client.get("/api/session").status_code == 401


def test_five_wrong_passwords_lock_the_account_without_telling(web: Site) -> None:
    browser = web.browser()
    unknown = browser.post("/api/session", json={"username": "nobody-here", "password": "Whatever-123456"})
    assert unknown.status_code == 401
    for _ in range(5):
        wrong = browser.post("/api/session", json={"username": RADIOLOGIST[0], "password": "Wrong-pass-1234"})
        assert wrong.status_code == 401
        assert wrong.json() == unknown.json()
    right = browser.post("/api/session", json={"username": RADIOLOGIST[0], "password": RADIOLOGIST[1]})
    assert right.status_code == 401 and right.json() == unknown.json()  # locked: the same answer as a wrong password
    assert "set-cookie" not in right.headers
    basic = base64.b64encode(f"{RADIOLOGIST[0]}:{RADIOLOGIST[1]}".encode()).decode()
    assert browser.get("/dicom-web/studies", headers={"Authorization": f"Basic {basic}"}).status_code == 401
    assert _audit(web, RADIOLOGIST[0]) == ["failed"] * 4 + ["locked"] * 3  # the 5th failure, the session, Basic
    assert _audit(web, "nobody-here") == ["failed"]

    with web.archive.sessions() as session:  # the lock time passes
        session.execute(update(User).where(User.username == RADIOLOGIST[0])
                        .values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    web.login(browser)
    audit = _all_audit_text(web)
    assert RADIOLOGIST[1] not in audit and "Wrong-pass-1234" not in audit and "Whatever-123456" not in audit


def test_login_attempts_are_throttled_per_address_on_every_node(web: Site) -> None:
    node_a = web.browser(web.node(login_rate_per_minute=3))
    node_b = web.browser(web.node(login_rate_per_minute=3))  # another API node behind the load balancer
    if time.time() % 60 > 55:  # keep the attempts in one fixed window
        time.sleep(61 - time.time() % 60)
    for client in (node_a, node_b, node_a):
        assert client.post("/api/session", json={"username": "x", "password": "y"}).status_code == 401
    refused = node_b.post("/api/session", json={"username": RADIOLOGIST[0], "password": RADIOLOGIST[1]})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    basic = base64.b64encode(f"{RADIOLOGIST[0]}:{RADIOLOGIST[1]}".encode()).decode()
    assert node_a.get("/dicom-web/studies", headers={"Authorization": f"Basic {basic}"}).status_code == 429
    assert node_a.get("/healthz").status_code == 200  # the health check is never throttled


def test_admin_needs_totp_for_admin_permissions(web: Site) -> None:
    browser = web.browser()
    first = web.login(browser, ADMIN)
    assert first["roles"] == ["hospital-admin"] and first["permissions"] == ["self"]
    assert first["second_factor_required"] is True and first["enrolment_required"] is True
    assert "enrol" in first["note"]
    assert browser.get("/api/gateways").status_code == 403  # gateway:view withheld without a second factor

    enrol = browser.post("/api/session/totp/enroll")
    assert enrol.status_code == 200 and enrol.headers["cache-control"] == "no-store"
    secret = enrol.json()["secret"]
    assert enrol.json()["otpauth_uri"].startswith("otpauth://totp/Yunying:boss-wang?")
    with web.archive.sessions() as session:  # stored encrypted, bound to the user
        stored = session.execute(text("SELECT totp_secret_enc FROM app_user WHERE username = :u"),
                                 {"u": ADMIN[0]}).scalar_one()
    assert secret not in stored and stored.startswith("v1:aes-256-gcm:")

    generator = pyotp.TOTP(secret)
    wrong = f"{(int(generator.now()) + 1) % 1_000_000:06d}"
    assert browser.post("/api/session/totp/confirm", json={"code": wrong}).status_code == 400
    used = generator.now()
    confirmed = browser.post("/api/session/totp/confirm", json={"code": used})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["second_factor_required"] is False and "gateway:view" in confirmed.json()["permissions"]
    assert browser.get("/api/gateways").status_code == 200
    assert browser.post("/api/session/totp/enroll").status_code == 409  # on: an administrator resets a lost device

    other = web.browser()
    bare = other.post("/api/session", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert bare.status_code == 401 and bare.json()["second_factor_required"] is True
    refused = other.post("/api/session", json={"username": "nobody-here", "password": "Whatever-123456"})
    bad = other.post("/api/session", json={"username": ADMIN[0], "password": ADMIN[1], "totp_code": wrong})
    assert bad.status_code == 401 and bad.json() == refused.json()
    replayed = other.post("/api/session", json={"username": ADMIN[0], "password": ADMIN[1], "totp_code": used})
    assert replayed.status_code == 401  # the code used to confirm cannot be used again
    code = generator.at(time.time() + 30)  # the next step's code (one step of skew is allowed)
    session = web.login(other, ADMIN, code)
    assert session["second_factor_required"] is False and "gateway:view" in session["permissions"]
    assert other.get("/api/gateways").status_code == 200
    assert _audit(web, ADMIN[0], "totp-enroll") == ["started", "failed", "success"]
    assert code not in _all_audit_text(web)


def test_wrong_totp_codes_count_towards_the_lockout(web: Site) -> None:
    browser = web.browser()
    web.login(browser, ADMIN)
    secret = browser.post("/api/session/totp/enroll").json()["secret"]
    generator = pyotp.TOTP(secret)
    assert browser.post("/api/session/totp/confirm", json={"code": generator.now()}).status_code == 200
    wrong = f"{(int(generator.now()) + 500_000) % 1_000_000:06d}"
    attacker = web.browser()
    for attempt in range(5):  # the right password, a wrong code; a code-less try in between resets nothing
        attacker.post("/api/session", json={"username": ADMIN[0], "password": ADMIN[1]})
        assert attacker.post("/api/session", json={"username": ADMIN[0], "password": ADMIN[1],
                                                   "totp_code": wrong}).status_code == 401, attempt
    locked = attacker.post("/api/session", json={"username": ADMIN[0], "password": ADMIN[1],
                                                 "totp_code": generator.at(time.time() + 30)})
    assert locked.status_code == 401
    assert "locked" in _audit(web, ADMIN[0])


def test_idle_session_locks_and_unlocks_with_the_password(web: Site) -> None:
    browser = web.browser()
    web.login(browser)
    _age_sessions(web, last_seen_at=timedelta(minutes=31))  # idle longer than session_idle_minutes (30)
    refused = browser.get("/dicom-web/studies")
    assert refused.status_code == 401 and refused.json()["session_locked"] is True
    assert browser.get("/api/session").json()["locked"] is True
    assert browser.post("/api/session/lock").status_code == 401  # nothing but unlock, who-am-I and logout
    wrong = browser.post("/api/session/unlock", json={"password": "Wrong-pass-1234"})
    assert wrong.status_code == 401 and wrong.json()["session_locked"] is True
    unlocked = browser.post("/api/session/unlock", json={"password": RADIOLOGIST[1]})
    assert unlocked.status_code == 200 and unlocked.json()["locked"] is False
    assert browser.get("/dicom-web/studies").status_code in (200, 204)

    assert browser.post("/api/session/lock").status_code == 204  # the user's own screen lock
    assert browser.get("/dicom-web/studies").status_code == 401
    assert browser.post("/api/session/unlock", json={"password": RADIOLOGIST[1]}).status_code == 200
    assert _audit(web, RADIOLOGIST[0], "session-unlock") == ["failed", "success", "success"]


def test_session_ends_after_the_absolute_limit(web: Site) -> None:
    browser = web.browser()
    web.login(browser)
    _age_sessions(web, created_at=timedelta(hours=13), expires_at=timedelta(hours=13))
    ended = browser.get("/api/session")
    assert ended.status_code == 401
    assert "yy_session=" in ended.headers["set-cookie"] and "Max-Age=0" in ended.headers["set-cookie"]


def test_logout_everywhere_ends_every_session(web: Site) -> None:
    desk, ward = web.browser(), web.browser(web.node())  # two devices, on two nodes
    web.login(desk)
    web.login(ward)
    assert ward.get("/api/session").status_code == 200
    assert desk.post("/api/session/logout-all").status_code == 204
    assert desk.get("/api/session").status_code == 401
    assert ward.get("/api/session").status_code == 401
    again = web.browser()
    web.login(again)  # a new session after "logout everywhere" works
    assert again.get("/api/session").status_code == 200


def test_change_own_password(web: Site) -> None:
    browser, other = web.browser(), web.browser()
    web.login(browser)
    web.login(other)
    change = "/api/session/password"
    weak = browser.post(change, json={"current_password": RADIOLOGIST[1], "new_password": "short"})
    assert weak.status_code == 422 and "12 characters" in weak.json()["detail"]
    named = browser.post(change, json={"current_password": RADIOLOGIST[1], "new_password": "X-rad-li-9876543"})
    assert named.status_code == 422 and "user name" in named.json()["detail"]
    wrong = browser.post(change, json={"current_password": "Wrong-pass-1234", "new_password": "New-pass-word-77"})
    assert wrong.status_code == 400 and "current password" in wrong.json()["detail"]
    assert browser.post(change, json={"current_password": RADIOLOGIST[1], "new_password": "New-pass-word-77"}).status_code == 204
    assert browser.get("/api/session").status_code == 200  # this session goes on
    assert other.get("/api/session").status_code == 401  # the others end
    assert web.browser().post("/api/session", json={"username": RADIOLOGIST[0], "password": RADIOLOGIST[1]}).status_code == 401
    web.login(web.browser(), (RADIOLOGIST[0], "New-pass-word-77"))
    assert "New-pass-word-77" not in _all_audit_text(web)


def test_login_input_is_validated(web: Site) -> None:
    client = web.browser()
    for body in ({"username": RADIOLOGIST[0]}, {"username": "", "password": "x"},
                 {"username": RADIOLOGIST[0], "password": RADIOLOGIST[1], "totp_code": "12ab56"},
                 {"username": RADIOLOGIST[0], "password": RADIOLOGIST[1], "role": "platform-admin"}):
        answer = client.post("/api/session", json=body)
        assert answer.status_code == 422, body
        assert RADIOLOGIST[1] not in answer.text  # errors never echo the input
    not_json = client.post("/api/session", content=b"{username", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert "set-cookie" not in not_json.headers
