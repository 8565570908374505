"""Web defences (issue 5): CSRF, origin check, strict CORS, security headers, body limits, path traversal.

The CSRF, CORS and size rules run in-process on both databases; headers, cookies over TLS and path
traversal are tried against a real ``yunying serve`` (raw paths reach the server as sent).
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess
from tests.support.tls import make_pki
from tests.support.web import CSRF, FIELD_KEYS, RADIOLOGIST, Site, site
from yunying.api.security import CSP
from yunying.auth.access import Role
from yunying.auth.credentials import create_user, institution_id
from yunying.compose import build_archive
from yunying.settings import Settings

HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "same-origin",
           "x-frame-options": "DENY"}


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Site]:
    with site(db_url, tmp_path) as built:
        yield built


def _has_security_headers(response: httpx.Response, csp: str = CSP) -> None:
    for name, value in {**HEADERS, "content-security-policy": csp}.items():
        assert response.headers.get(name) == value, (name, response.request.url)


# --- CSRF and origin -------------------------------------------------------------------------------------------


def test_cookie_requests_that_change_state_need_the_csrf_token(web: Site) -> None:
    browser = web.browser()
    token = web.login(browser)["csrf_token"]
    del browser.headers[CSRF]
    missing = browser.post("/api/session/lock")
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    assert browser.post("/api/session/lock", headers={CSRF: "forged-" + token[7:]}).status_code == 403
    assert browser.delete("/api/session").status_code == 403  # logout too: no forced logout from another site
    assert browser.get("/api/session").json()["locked"] is False  # nothing happened
    assert browser.post("/api/session/lock", headers={CSRF: token}).status_code == 204

    # An HTML form carries the token in a hidden field instead of the header.
    form = {"csrf_token": token}
    assert browser.post("/api/session/logout-all", data={"csrf_token": "wrong"}).status_code == 403
    assert browser.post("/api/session/unlock", json={"password": RADIOLOGIST[1]},
                        headers={CSRF: token}).status_code == 200
    assert browser.post("/api/session/logout-all", data=form).status_code == 204
    assert browser.get("/api/session").status_code == 401


def test_cross_origin_state_changes_are_refused(web: Site) -> None:
    browser = web.browser()
    token = web.login(browser)["csrf_token"]
    evil = {"Origin": "https://evil.example", CSRF: token}
    assert browser.post("/api/session/lock", headers=evil).status_code == 403
    assert browser.post("/api/session/lock", headers={"Origin": "null", CSRF: token}).status_code == 403
    # a forged login (login CSRF) and a browser's remembered Basic credentials are refused the same way
    assert browser.post("/api/session", headers={"Origin": "https://evil.example"},
                        json={"username": RADIOLOGIST[0], "password": RADIOLOGIST[1]}).status_code == 403
    assert browser.get("/api/session").json()["locked"] is False
    assert browser.post("/api/session/lock", headers={"Origin": "http://testserver", CSRF: token}).status_code == 204


# --- CORS ------------------------------------------------------------------------------------------------------


def test_no_cors_headers_by_default(web: Site) -> None:
    client = web.browser()
    preflight = client.options("/dicom-web/studies", headers={
        "Origin": "https://viewer.example", "Access-Control-Request-Method": "GET"})
    simple = client.get("/healthz", headers={"Origin": "https://viewer.example"})
    for answer in (preflight, simple):
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_cors_only_for_configured_origins(web: Site) -> None:
    client = web.browser(web.node(cors_origins=["https://viewer.example"]))
    allowed = client.options("/dicom-web/studies", headers={
        "Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://viewer.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    other = client.options("/dicom-web/studies", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in other.headers
    simple = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
    assert client.get("/healthz", headers={"Origin": "https://viewer.example"}).headers[
        "access-control-allow-origin"] == "https://viewer.example"
    # the configured origin may also change state (with the session's CSRF token)
    token = web.login(client)["csrf_token"]
    assert client.post("/api/session/lock", headers={"Origin": "https://viewer.example", CSRF: token}).status_code == 204


# --- headers, size ---------------------------------------------------------------------------------------------


def test_security_headers_everywhere_and_hsts_over_tls(web: Site) -> None:
    client = web.browser()
    token = f"Bearer {web.tokens[RADIOLOGIST[0]]}"
    for answer in (client.get("/dicom-web/studies", headers={"Authorization": token}), client.get("/healthz"),
                   client.get("/dicom-web/studies"), client.post("/api/session", json={})):
        _has_security_headers(answer)
        assert "strict-transport-security" not in answer.headers  # plain HTTP
    docs = client.get("/docs")
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    assert "script-src" not in client.get("/").headers["content-security-policy"]  # no scripts on the landing page

    behind_tls = web.browser(web.node(public_url="https://pacs.example"), base_url="https://pacs.example")
    assert behind_tls.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"
    login = behind_tls.post("/api/session", json={"username": RADIOLOGIST[0], "password": RADIOLOGIST[1]})
    assert "Secure" in [part.strip() for part in login.headers["set-cookie"].split(";")]


def test_oversized_json_bodies_are_refused(web: Site) -> None:
    client = web.browser(web.node(max_json_bytes=4096))
    big = {"username": "x" * 5000, "password": "y"}
    declared = client.post("/api/session", json=big)
    assert declared.status_code == 413
    assert declared.headers["content-type"].startswith("application/problem+json")
    _has_security_headers(declared)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'{"username": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'", "password": "y"}'

    streamed = client.post("/api/session", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert client.post("/api/session", json={"username": "x", "password": "y"}).status_code == 401


# --- against a real server -------------------------------------------------------------------------------------


def _raw_get(server: ServerProcess, target: str) -> bytes:
    """Send ``target`` exactly as written (clients would normalise ``..`` away)."""
    auth = "Basic " + base64.b64encode(":".join(server.auth).encode()).decode()
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as sock:
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


TRAVERSALS = [
    "/dicom-web/studies/..%2f..%2f..%2fetc%2fpasswd",
    "/dicom-web/studies/..%2F..%2F..%2Fetc%2Fpasswd/metadata",
    "/dicom-web/studies/1.2.3/series/..%2f..%2fetc/instances/..%2fpasswd",
    "/dicom-web/studies/1.2.3/series/4.5/instances/%2e%2e%2f%2e%2e%2fetc%2fpasswd/frames/1",
    "/dicom-web/studies/1.2.3/series/4.5/instances/6.7/bulkdata/..%2f..%2fetc%2fpasswd",
    "/dicom-web/../../../../etc/passwd",
    "/dicom-web/studies/../../../../etc/passwd",
    "/wado?requestType=WADO&studyUID=../../etc/passwd&seriesUID=../../etc/passwd&objectUID=../../etc/passwd"
    "&contentType=application/dicom",
    "/wado?requestType=WADO&studyUID=..%2f..%2fetc%2fpasswd&seriesUID=x&objectUID=%2fetc%2fpasswd",
    "/docs/..%2f..%2f..%2fetc%2fpasswd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
]


def test_path_traversal_headers_and_cookie_session_on_a_real_server(server: ServerProcess) -> None:
    for target in TRAVERSALS:
        answer = _raw_get(server, target)
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, (target, answer[:300])
        assert b"root:" not in answer and b"/bin/" not in answer, target

    home = httpx.get(server.url + "/")
    _has_security_headers(home, CSP + "; style-src 'self' 'unsafe-inline'")
    assert not [name for name in home.headers if name.startswith("access-control-")]
    _has_security_headers(httpx.get(server.dicomweb + "/studies", auth=server.auth))

    with httpx.Client(base_url=server.url) as browser:
        login = browser.post("/api/session", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        assert login.json()["second_factor_required"] is True  # the first account is an administrator
        assert browser.get("/api/session").json()["via"] == "session"
        assert browser.post("/api/session/lock").status_code == 403  # no CSRF token
        assert browser.post("/api/session/lock", headers={CSRF: login.json()["csrf_token"]}).status_code == 204


def test_cookie_is_secure_and_hsts_sent_over_tls(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    ca, cert, key = make_pki(tmp_path / "pki")
    server = server_factory("tls", YUNYING_TLS_CERT_FILE=str(cert), YUNYING_TLS_KEY_FILE=str(key),
                            **{f"YUNYING_{name.upper()}": value for name, value in FIELD_KEYS.items()})
    archive = build_archive(Settings(data_dir=server.data_dir, database_url=server.database_url))
    try:
        create_user(archive.sessions, RADIOLOGIST[0], RADIOLOGIST[1], [Role.RADIOLOGIST],
                    institution=institution_id(archive.sessions, "default"))
    finally:
        archive.close()
    with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=str(ca))) as browser:
        login = browser.post("/api/session", json={"username": RADIOLOGIST[0], "password": RADIOLOGIST[1]})
        assert login.status_code == 200, login.text
        assert login.headers["strict-transport-security"] == "max-age=31536000"
        assert "Secure" in [part.strip() for part in login.headers["set-cookie"].split(";")]
        assert browser.get("/dicom-web/studies").status_code in (200, 204)  # the Secure cookie goes back over TLS
