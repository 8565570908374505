"""Web defences tried in a real browser (headless Chromium through Playwright): XSS and CSRF.

1. XSS: studies whose PatientName is markup are stored through STOW-RS; a radiologist signs in through
   the login page and opens the study list. The names show as literal text, no element comes from
   the data, no script ran (``window.__xss`` stays undefined), and the CSP header is there.
2. CSRF: while a hospital administrator is signed in, a page of another origin auto-submits a form
   creating a user: refused (403), nobody created. The same form on our own page works.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.security.conftest import stow
from tests.support.gateway_data import make_study
from tests.support.server import free_port
from tests.web.conftest import HOSPITAL_A, PASSWORD, Authenticator, Platform
from yunying.api.security import CSP
from yunying.auth.access import Role

pytestmark = pytest.mark.timeout(600)
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# PatientName values stored → how the page shows them. PN "=" separates component groups and DICOM has
# three: pydicom's DICOM JSON keeps "<img src", "x onerror", "window.__xss" and drops the 4th ("1>").
NAMES = {
    "XSS-IMG": ("<img src=x onerror=window.__xss=1>", "<img src=x onerror=window.__xss"),
    "XSS-SCRIPT": ("<script>window.__xss=2</script>", "<script>window.__xss=2</script>"),
    "XSS-ZH": ("张三^<b>x</b>", "张三 <b>x</b>"),
}
DESCRIPTION = '"><svg onload=window.__xss=3>'


@contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run scripts/system-deps.sh (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def _store_markup_studies(platform: Platform, tmp: Path) -> None:
    for accession, (name, _shown) in NAMES.items():
        study = make_study(tmp / accession, 1, accession=accession)
        for path in study.files:
            ds = pydicom.dcmread(path)
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.PatientName = name
            ds.PatientID = f"PID-{accession}"
            ds.StudyDescription = DESCRIPTION
            ds.save_as(path, enforce_file_format=True)
        stored = stow(platform.server, platform.a.headers(Role.TECHNICIAN), study.files)
        assert stored.status_code == 200, stored.text


def _sign_in(page: Page, base: str, username: str, app: Authenticator | None = None, start: str = "/ui/") -> None:
    page.goto(base + start)
    assert "/ui/login?next=" in page.url  # not signed in: sent to the sign-in page
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('form[action="/ui/login"] button[type="submit"]')
    if app is not None:  # the password was right: now the code of the authenticator app, and the password again
        page.wait_for_selector('input[name="totp_code"]')
        page.fill('input[name="password"]', PASSWORD)
        page.fill('input[name="totp_code"]', app.code())
        page.click('form[action="/ui/login"] button[type="submit"]')
    page.wait_for_url(base + start)


def test_patient_names_with_markup_are_shown_as_text(platform: Platform, tmp_path: Path) -> None:
    _store_markup_studies(platform, tmp_path)
    base = platform.server.url
    with chromium() as browser:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 860})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        _sign_in(page, base, "radiologist-hosp-a", start="/ui/studies")
        response = page.goto(base + "/ui/studies")
        assert response is not None and response.status == 200
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"

        names = page.locator("td.patient-name").all_inner_texts()
        for _stored, shown in NAMES.values():
            assert shown in names, (shown, names)
        assert page.locator("td", has_text=DESCRIPTION).count() == len(NAMES)
        assert page.evaluate("typeof window.__xss") == "undefined"
        # no element came from the data: the only images, scripts, bold or SVG are none (and our one script)
        assert page.evaluate("document.querySelectorAll('main img, main script, main b, main svg').length") == 0
        assert page.evaluate("Array.from(document.scripts).map(s => s.getAttribute('src'))") == ["/ui/static/app.js"]
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert page.locator("h1").inner_text() == "检查查询"
        page.screenshot(path=str(tmp_path / "studies.png"), full_page=True)

        # a Chinese name is searchable from the form
        page.fill('input[name="name"]', "张三")
        page.click('form[role="search"] button[type="submit"]')
        page.wait_for_url("**/ui/studies?*")
        assert page.locator("td.patient-name").all_inner_texts() == ["张三 <b>x</b>"]
        assert page.evaluate("typeof window.__xss") == "undefined"

        page.goto(base + "/ui/")
        assert HOSPITAL_A in page.locator("main").inner_text()
        assert errors == []
        context.close()


class _Attacker(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def attacker_site(target: str) -> Iterator[int]:
    """Another origin (another port) whose page submits a user-creation form to ``target`` on load."""
    page = f"""<!doctype html><html><body>
<form method="post" action="{target}">
<input name="username" value="evil-admin"><input name="password" value="Evil-pass-word-666">
<input name="roles" value="hospital-admin"><input name="csrf_token" value="guessed-token">
</form><script>document.forms[0].submit()</script></body></html>"""
    handler = type("Attacker", (_Attacker,), {"page": page.encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_forged_cross_site_form_is_refused_and_our_own_form_works(platform: Platform, tmp_path: Path) -> None:
    base = platform.server.url
    app = Authenticator(platform, "hospital-admin-hosp-a")
    with chromium() as browser, attacker_site(base + "/ui/admin/users") as port:
        context = browser.new_context(locale="zh-CN")
        page = context.new_page()
        _sign_in(page, base, "hospital-admin-hosp-a", app)
        # 127.0.0.1 on another port is the same *site* (the SameSite=Strict cookie goes along) but
        # another origin; localhost is another site altogether. Both are refused.
        for host in ("127.0.0.1", "localhost"):
            with page.expect_response(lambda r: r.url == base + "/ui/admin/users" and r.request.method == "POST") as seen:
                page.goto(f"http://{host}:{port}/")
            assert seen.value.status == 403, (host, seen.value.status)
        assert platform.user("evil-admin") is None

        page.goto(base + "/ui/admin/users")
        page.fill('#create-user input[name="username"]', "li-si")
        page.fill('#create-user input[name="display_name"]', "李四")
        page.fill('#create-user input[name="password"]', "Ward-4-pass-word-88")
        page.check('#create-user input[name="roles"][value="clinician"]')
        page.click('#create-user button[type="submit"]')
        page.wait_for_url(base + "/ui/admin/users?done=user-created")
        assert "李四" in page.locator("#users").inner_text()
        page.locator('tr[data-user="li-si"] summary').click()  # the row's actions
        page.screenshot(path=str(tmp_path / "users.png"), full_page=True)
        created = platform.user("li-si")
        assert created is not None and created.institution_fk == platform.a.institution_id
        context.close()
