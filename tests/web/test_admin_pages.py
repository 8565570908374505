"""The administration web pages on a real server: sign-in, users, peers, grants, CSRF, audit.

Two hospitals share the platform (tests/web/conftest.py). Administrators sign in through the form with
a TOTP code, like in a browser; state-changing forms carry the session's CSRF token.
"""

from __future__ import annotations

import re

import httpx
import pyotp
import pytest

from tests.security.conftest import study_uids
from tests.web.conftest import HOSPITAL_A, PASSWORD, Authenticator, Platform, browser, csrf_of, sign_in
from yunying.auth.access import Role

pytestmark = pytest.mark.timeout(600)
NEW_PASSWORD = "Zx-New-pass-4567"


def _qido(platform: Platform, token_of: str, tenant: str = "a") -> httpx.Response:
    owner = platform.a if tenant == "a" else platform.b
    return httpx.get(platform.server.dicomweb + "/studies", headers=owner.headers(Role(token_of)), timeout=60)


def _error_text(page: str) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', page)
    return found.group(1) if found else ""


def test_sign_in_page_redirects_and_messages(platform: Platform) -> None:
    server = platform.server
    anonymous = browser(server)
    first = anonymous.get("/ui/studies?name=x")
    assert first.status_code == 303 and first.headers["location"] == "/ui/login?next=%2Fui%2Fstudies%3Fname%3Dx"
    # API clients (no text/html) keep the problem document; nothing redirects them
    assert httpx.get(server.url + "/ui/studies").status_code == 401
    # never an open redirect: `next` must be one of our pages
    assert 'name="next" value="/ui/"' in anonymous.get("/ui/login", params={"next": "https://evil.example/"}).text
    for evil in ("//evil.example/ui/", "https://evil.example/ui/", "/\\evil.example", "/api/session"):
        answer = anonymous.post("/ui/login", data={"username": "radiologist-hosp-a", "password": PASSWORD, "next": evil})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/", evil

    # wrong password and unknown user: the same answer (no account enumeration)
    wrong = anonymous.post("/ui/login", data={"username": "radiologist-hosp-a", "password": "Wrong-pass-word-1"})
    unknown = anonymous.post("/ui/login", data={"username": "nobody-here", "password": "Wrong-pass-word-1"})
    assert wrong.status_code == unknown.status_code == 401
    assert _error_text(wrong.text) == _error_text(unknown.text) == "用户名、密码或验证码错误。"
    assert 'name="totp_code"' not in wrong.text

    client = browser(server)
    signed = client.post("/ui/login", data={"username": "radiologist-hosp-a", "password": PASSWORD,
                                            "next": "/ui/studies"})
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/studies"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("yy_session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    home = client.get("/ui/")
    assert home.status_code == 200 and HOSPITAL_A in home.text and "放射科医师" in home.text
    assert home.headers["content-security-policy"].startswith("default-src 'self'")
    assert home.headers["cache-control"] == "no-store"
    assert 'href="/ui/admin/users"' not in home.text  # links by permission
    english = client.get("/ui/", params={"lang": "en"})
    assert "Radiologist" in english.text and "yy_lang=en" in english.headers["set-cookie"]
    assert "Studies" in client.get("/ui/").text  # remembered
    assert "User name" in browser(server).get("/ui/login", headers={"Accept-Language": "en-US,en;q=0.8"}).text

    # a page the role does not allow: 403 page, not the data
    refused = client.get("/ui/admin/users")
    assert refused.status_code == 403 and "admin-hosp-a" not in refused.text
    # sign out (a form with the CSRF token): the session is over
    out = client.post("/ui/logout", data={"csrf_token": csrf_of(client)})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login?done=logged-out"
    assert client.get("/ui/").status_code == 303


def test_administrators_sign_in_with_the_second_factor(platform: Platform) -> None:
    app = Authenticator(platform, "hospital-admin-hosp-a")
    client = browser(platform.server)
    first = client.post("/ui/login", data={"username": "hospital-admin-hosp-a", "password": PASSWORD})
    assert first.status_code == 401 and 'name="totp_code"' in first.text and 'value="hospital-admin-hosp-a"' in first.text
    assert PASSWORD not in first.text  # the password is never sent back
    bad = client.post("/ui/login", data={"username": "hospital-admin-hosp-a", "password": PASSWORD, "totp_code": "000000"})
    assert bad.status_code == 401 and _error_text(bad.text) == "用户名、密码或验证码错误。"
    ok = client.post("/ui/login", data={"username": "hospital-admin-hosp-a", "password": PASSWORD, "totp_code": app.code()})
    assert ok.status_code == 303
    assert client.get("/ui/admin/users").status_code == 200

    # an administrator without an authenticator is sent to enrol; administration stays closed until then
    other = browser(platform.server)
    pending = other.post("/ui/login", data={"username": "hospital-admin-hosp-b", "password": PASSWORD, "next": "/ui/"})
    assert pending.status_code == 303 and pending.headers["location"] == "/ui/account/totp"
    assert other.get("/ui/admin/users").status_code == 403
    assert "管理权限需要第二因素" in other.get("/ui/").text
    token = csrf_of(other, "/ui/account/totp")
    enrol = other.post("/ui/account/totp/enroll", data={"csrf_token": token})
    found = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', enrol.text)
    assert enrol.status_code == 200 and found and enrol.headers["cache-control"] == "no-store"
    generator = pyotp.TOTP(found.group(1).replace(" ", ""))
    assert other.post("/ui/account/totp/confirm", data={"csrf_token": token, "code": "123456"}).status_code == 400
    confirmed = other.post("/ui/account/totp/confirm", data={"csrf_token": token, "code": generator.now()})
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/ui/?done=totp-enabled"
    assert other.get("/ui/admin/users").status_code == 200  # this session now has the second factor


def test_hospital_admin_manages_users_of_own_institution_only(platform: Platform) -> None:
    admin = sign_in(platform.server, "hospital-admin-hosp-a", app=Authenticator(platform, "hospital-admin-hosp-a"))
    listing = admin.get("/ui/admin/users")
    assert "radiologist-hosp-a" in listing.text
    assert "hosp-b" not in listing.text  # another hospital's users are not even listed
    token = csrf_of(admin, "/ui/admin/users")

    created = admin.post("/ui/admin/users", data={"csrf_token": token, "username": "zhang-san", "display_name": "张三",
                                                  "password": NEW_PASSWORD, "roles": ["radiologist", "clinician"]})
    assert created.status_code == 303 and created.headers["location"] == "/ui/admin/users?done=user-created"
    user = platform.user("zhang-san")
    assert user is not None and user.institution_fk == platform.a.institution_id and user.display_name == "张三"
    assert user.roles == "clinician,radiologist"
    assert "张三" in admin.get("/ui/admin/users").text
    entry = platform.audit("admin:user-create")[-1]
    assert (entry.actor, entry.subject, entry.outcome) == ("hospital-admin-hosp-a", "user:zhang-san", "success")
    assert NEW_PASSWORD not in entry.detail and "hosp-a" in entry.detail

    # another hospital, or the platform-admin role: refused (403), nothing created, the attempt audited
    for username, extra in (("spy-b", {"institution": "hosp-b"}), ("boss", {"roles": ["platform-admin"]})):
        form = {"csrf_token": token, "username": username, "password": NEW_PASSWORD, "roles": ["radiologist"], **extra}
        refused = admin.post("/ui/admin/users", data=form)
        assert refused.status_code == 403, username
        assert platform.user(username) is None
    assert [e.outcome for e in platform.audit("admin:user-create")][-2:] == ["refused", "refused"]
    # a form to correct: 400, the page again with the message
    weak = admin.post("/ui/admin/users", data={"csrf_token": token, "username": "weak-one", "password": "short",
                                               "roles": ["clinician"]})
    assert weak.status_code == 400 and "密码不符合要求" in weak.text and platform.user("weak-one") is None

    # another hospital's user: not found (not "forbidden"), and untouched
    b_user = platform.user("radiologist-hosp-b")
    assert b_user is not None
    answer = admin.post(f"/ui/admin/users/{b_user.id}", data={"csrf_token": token, "action": "disable"})
    assert answer.status_code == 404
    assert _qido(platform, "radiologist", "b").status_code == 200


def test_disabling_a_user_stops_their_token_and_sessions(platform: Platform) -> None:
    admin = sign_in(platform.server, "hospital-admin-hosp-a", app=Authenticator(platform, "hospital-admin-hosp-a"))
    token = csrf_of(admin, "/ui/admin/users")
    target = platform.user("radiologist-hosp-a")
    assert target is not None
    victim_session = sign_in(platform.server, "radiologist-hosp-a")
    assert _qido(platform, "radiologist").status_code == 200

    def act(action: str, **extra: str) -> httpx.Response:
        return admin.post(f"/ui/admin/users/{target.id}", data={"csrf_token": token, "action": action, **extra})

    cookie = victim_session.cookies["yy_session"]
    assert act("disable").status_code == 303
    assert _qido(platform, "radiologist").status_code == 401
    assert victim_session.get("/ui/studies").status_code == 303  # signed out
    assert "已停用" in admin.get("/ui/admin/users").text
    assert act("enable").status_code == 303
    assert _qido(platform, "radiologist").status_code == 200
    revived = browser(platform.server)
    revived.cookies.set("yy_session", cookie)
    assert revived.get("/ui/studies").status_code == 303  # enabling does not bring the old session back

    assert act("revoke-tokens").status_code == 303
    assert _qido(platform, "radiologist").status_code == 401
    assert act("reset-password", password="weak").status_code == 400
    assert act("reset-password", password=NEW_PASSWORD).status_code == 303
    assert browser(platform.server).post("/ui/login", data={"username": "radiologist-hosp-a",
                                                            "password": PASSWORD}).status_code == 401
    sign_in(platform.server, "radiologist-hosp-a", NEW_PASSWORD)
    assert act("nonsense").status_code == 400
    own = platform.user("hospital-admin-hosp-a")
    assert own is not None
    assert admin.post(f"/ui/admin/users/{own.id}", data={"csrf_token": token, "action": "disable"}).status_code == 400

    actions = [(e.action, e.subject) for e in platform.audit("admin:user-disabled") + platform.audit("admin:token-revoke")
               + platform.audit("admin:user-password")]
    assert actions == [("admin:user-disabled", "user:radiologist-hosp-a"), ("admin:token-revoke", "user:radiologist-hosp-a"),
                       ("admin:user-password", "user:radiologist-hosp-a")]
    assert all(NEW_PASSWORD not in e.detail for e in platform.audit("admin:user-password"))


def test_peers_and_grants_forms_work_and_are_audited(platform: Platform) -> None:
    a, b = platform.a, platform.b
    assert a.study is not None and b.study is not None
    admin = sign_in(platform.server, "hospital-admin-hosp-a", app=Authenticator(platform, "hospital-admin-hosp-a"))
    token = csrf_of(admin, "/ui/admin/peers")
    added = admin.post("/ui/admin/peers", data={"csrf_token": token, "ae_title": "CT_ROOM_1", "host": "10.1.2.0/24",
                                                "port": "104", "roles": ["technician"]})
    assert added.status_code == 303
    listing = admin.get("/ui/admin/peers").text
    assert 'data-peer="CT_ROOM_1@10.1.2.0/24"' in listing
    for bad in ({"ae_title": "ANY", "host": "0.0.0.0/0"}, {"ae_title": "X" * 17, "host": "10.0.0.1"},
                {"ae_title": "OK", "host": "pacs.example"}, {"ae_title": "OK", "host": "10.0.0.1", "roles": ["hospital-admin"]}):
        assert admin.post("/ui/admin/peers", data={"csrf_token": token, "roles": ["technician"], **bad}).status_code == 400
    assert admin.post("/ui/admin/peers", data={"csrf_token": token, "ae_title": "EVIL", "host": "10.9.9.9",
                                               "roles": ["technician"], "institution": "hosp-b"}).status_code == 403
    peer_id = re.search(r'action="/ui/admin/peers/(\d+)"', listing)
    assert peer_id is not None
    removed = admin.post(f"/ui/admin/peers/{peer_id.group(1)}", data={"csrf_token": token, "action": "remove"})
    assert removed.status_code == 303 and "CT_ROOM_1" not in admin.get("/ui/admin/peers").text
    assert [(e.subject, e.outcome) for e in platform.audit("admin:peer-add")] == [
        ("peer:CT_ROOM_1@10.1.2.0/24", "success"), ("peer:EVIL@10.9.9.9", "refused")]
    assert [e.subject for e in platform.audit("admin:peer-remove")] == ["peer:CT_ROOM_1@10.1.2.0/24"]

    # a consultation coordinator of hospital A lets hospital B's radiologist read one study
    coordinator = sign_in(platform.server, "consultation-coordinator-hosp-a")
    token = csrf_of(coordinator, "/ui/admin/grants")
    assert a.study.study_uid not in study_uids(_qido(platform, "radiologist", "b"))
    granted = coordinator.post("/ui/admin/grants", data={
        "csrf_token": token, "study_uid": a.study.study_uid, "kind": "consultation", "to_user": "radiologist-hosp-b",
        "days": "7", "reason": "会诊：肺结节"})
    assert granted.status_code == 303
    assert a.study.study_uid in study_uids(_qido(platform, "radiologist", "b"))
    listing = coordinator.get("/ui/admin/grants").text
    assert "radiologist-hosp-b" in listing and "会诊：肺结节" in listing
    # another hospital's study answers like one that does not exist
    theirs = coordinator.post("/ui/admin/grants", data={"csrf_token": token, "study_uid": b.study.study_uid,
                                                        "kind": "consultation", "to_institution": "hosp-a"})
    assert theirs.status_code == 400 and "本机构没有此检查" in theirs.text
    grant_id = re.search(r'action="/ui/admin/grants/(\d+)"', listing)
    assert grant_id is not None
    revoked = coordinator.post(f"/ui/admin/grants/{grant_id.group(1)}", data={"csrf_token": token, "action": "revoke"})
    assert revoked.status_code == 303
    assert a.study.study_uid not in study_uids(_qido(platform, "radiologist", "b"))
    # hospital B's administrator cannot revoke (or see) hospital A's grants: not their page, not their grant
    assert [(e.actor, e.subject) for e in platform.audit("admin:grant-create")] == [
        ("consultation-coordinator-hosp-a", a.study.study_uid)]
    assert [e.subject for e in platform.audit("admin:grant-revoke")] == [a.study.study_uid]


def test_state_changes_need_the_csrf_token_and_our_origin(platform: Platform) -> None:
    admin = sign_in(platform.server, "hospital-admin-hosp-a", app=Authenticator(platform, "hospital-admin-hosp-a"))
    token = csrf_of(admin, "/ui/admin/users")
    target = platform.user("clinician-hosp-a")
    assert target is not None
    form = {"username": "forged-user", "password": NEW_PASSWORD, "roles": ["radiologist"]}
    attempts = [
        ("/ui/admin/users", form),
        (f"/ui/admin/users/{target.id}", {"action": "disable"}),
        ("/ui/admin/peers", {"ae_title": "FORGED", "host": "10.6.6.6", "roles": ["technician"]}),
        ("/ui/logout", {}),
    ]
    for path, data in attempts:
        assert admin.post(path, data=data).status_code == 403, path  # no token
        assert admin.post(path, data={**data, "csrf_token": token[:-4] + "AAAA"}).status_code == 403, path  # wrong
        assert admin.post(path, data={**data, "csrf_token": token},  # right token, another site
                          headers={"Origin": "http://evil.example"}).status_code == 403, path
    assert platform.user("forged-user") is None
    target = platform.user("clinician-hosp-a")
    assert target is not None and not target.disabled
    assert "FORGED" not in admin.get("/ui/admin/peers").text
    assert admin.get("/ui/").status_code == 200  # still signed in: no forced logout either
    # the same form with the session's token, from our own pages, works
    assert admin.post("/ui/admin/users", data={**form, "csrf_token": token}).status_code == 303
    assert platform.user("forged-user") is not None


def test_study_list_and_audit_pages(platform: Platform) -> None:
    a, b = platform.a, platform.b
    assert a.study is not None and b.study is not None
    reader = sign_in(platform.server, "radiologist-hosp-a")
    listing = reader.get("/ui/studies")
    assert listing.status_code == 200
    assert "ACC-hosp-a" in listing.text and "ACC-hosp-b" not in listing.text  # the caller's scope only
    assert "ACC-hosp-a" not in reader.get("/ui/studies", params={"accession": "NOPE"}).text
    assert reader.get("/ui/studies", params={"date_from": "2024-13-45"}).status_code == 400
    entries = [e for e in platform.audit("query") if e.actor == "radiologist-hosp-a"]
    assert a.study.study_uid in [e.subject for e in entries] and b.study.study_uid not in [e.subject for e in entries]

    auditor = sign_in(platform.server, "auditor-hosp-a")
    trail = auditor.get("/ui/audit", params={"action": "query", "actor": "radiologist-hosp-a"})
    assert trail.status_code == 200 and a.study.study_uid in trail.text
    assert auditor.get("/ui/studies").status_code == 403  # an auditor reads the trail, not patient data
    assert platform.audit("audit-read")[-1].actor == "auditor-hosp-a"
    assert reader.get("/ui/audit").status_code == 403
