"""The phone pages against the real archive, at 390x844 and 360x640 with touch (issue 6 acceptance 1-7).

Proves: the QR code of the printed cover sheet of an exam whose final report came over MLLP opens the verification
page; an unknown link, a wrong code and a locked link each say so; the right code lets the patient in, and the exam
list holds the patient's exams of both hospitals (none of another patient's), grouped by hospital, type and month,
each with its film's sheet count, and the keyword search narrows it; the film view shows the API's sheets of the
real film (its cells the exam's images in order), zooms steplessly with two fingers and a double tap fills the stage
with the tapped cell, a swipe goes to the next exam; the phone viewer opens for the patient's session with the
session's watermark; a download shows its password, validity and part sizes and the part opens with that password;
a share shows a QR code that decodes to its link, which a visitor opens with the password and then sees only the
shared exam until the patient revokes it (then the viewer, too, points back to the link); an anonymous share shows
list, report, phone viewer and download without identifiers, until it expires; the access log page shows the views,
downloads and shares; blocks can be set and lifted; feedback creates a ticket; large type, 44 px touch targets and
the English switch hold.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pydicom
import pytest
import pyzipper
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import text, update

from tests.mobile_app.conftest import ID_CARD, PHONE, SMALL_PHONE, PhoneSite, ready, shot
from tests.security.conftest import direct
from yunying.index.models import Share

TOUCH_PX = 44
IDENTIFIERS = ("Zhang", "张", "PA-1", "PB-9", "ACC-", ID_CARD, PHONE)  # what an anonymous visitor must never see


def _too_small_targets(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        """(min) => [...document.querySelectorAll('button, a.m-button, a.m-exam, a.m-nav-item, input, select, .m-tool')]
             .filter((e) => e.offsetParent !== null && e.type !== 'file' && e.type !== 'checkbox')
             .map((e) => [e, e.getBoundingClientRect()])
             .filter(([, r]) => r.height < min || r.width < min)
             .map(([e, r]) => `${e.className} ${Math.round(r.width)}x${Math.round(r.height)}`)""", TOUCH_PX)
    return found


def _untranslated(page: Page) -> list[str]:
    return re.findall(r"\bm\.[a-zA-Z]+\.[\w.]+", page.inner_text("body"))


def test_verification_and_exam_list(phone_site: PhoneSite) -> None:
    site = phone_site
    newest = site.exams[0]  # its final report came as HL7 ORU over MLLP
    with site.phone() as page:
        page.goto("/m/open/this-is-not-a-link")
        ready(page)
        assert page.locator("[data-state^=link-4]").count() == 1  # unknown (404) or expired (410): said so

        locked = site.exam_link(site.exams[1])  # ten failures within the hour lock a link
        for _ in range(10):
            refused = site.api("POST", f"/api/cloudfilm/open/{locked}/verify",
                               json={"method": "phone", "value": PHONE, "code": "000000"})
            assert refused.status_code == 401, refused.text
        page.goto(f"/m/open/{locked}")
        ready(page)
        page.fill(".m-value", PHONE)
        page.click(".m-send-code")
        page.wait_for_selector(".m-error[data-state=locked]")
        assert re.search(r"\d+", page.inner_text(".m-error"))  # with the time to wait
        shot(page, "verify-locked")

        url = site.cover_url(newest)  # the QR code of the printed cover sheet
        assert url.startswith(site.server.url + "/m/open/")
        page.goto(url)
        ready(page)
        assert page.inner_text(".m-hospital") == newest.hospital
        assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "17px"
        assert page.get_attribute(".m-code", "inputmode") == "numeric"
        assert _too_small_targets(page) == []
        shot(page, "verify")
        page.fill(".m-value", PHONE)
        page.click(".m-send-code")
        page.wait_for_selector(".m-status[data-state=sent]")
        assert "****" in page.inner_text(".m-status") and page.is_disabled(".m-send-code")  # masked; resend counts down
        code = site.latest_code()
        page.fill(".m-code", f"{(int(code) + 1) % 1_000_000:06d}")
        page.click(".m-verify")
        page.wait_for_selector(".m-error[data-state=wrong]")
        shot(page, "verify-wrong-code")
        page.fill(".m-code", code)
        page.click(".m-verify")
        page.wait_for_url("**/m/exams")
        ready(page)
        page.wait_for_function("(n) => document.querySelectorAll('.m-exam').length === n", arg=len(site.exams))

        shown = page.eval_on_selector_all(".m-exam", "(els) => els.map((e) => [e.dataset.study, Number(e.dataset.films)])")
        sheets = {e.study_uid: len(site.api("GET", f"/api/studies/{e.study_uid}/films", site.staff_of(e)).json()["sheets"])
                  for e in site.exams}
        assert shown == [[e.study_uid, sheets[e.study_uid]] for e in site.exams]  # newest first, films = sheets
        assert all(n > 0 for n in sheets.values()) and site.other and site.other.study_uid not in sheets
        groups = page.eval_on_selector_all(
            ".m-group", "(els) => els.map((e) => [e.dataset.groupName, e.querySelectorAll('.m-exam').length])")
        assert sorted(groups) == sorted([["云影第一医院", 2], ["云影中心医院", 1]])
        assert page.locator(".m-watermark span").first.inner_text().strip() != ""
        assert _too_small_targets(page) == []
        shot(page, "exams-by-hospital", full_page=True)
        page.click("[data-group=type]")
        types = page.eval_on_selector_all(".m-group", "(els) => els.map((e) => e.dataset.groupName)")
        assert [name.split(" ")[0] for name in types] == ["CT", "MR"]
        page.click("[data-group=date]")
        months = page.eval_on_selector_all(".m-group", "(els) => els.map((e) => e.dataset.groupName)")
        assert months == ["2026-11", "2026-10", "2025-06"]  # newest first

        mr = next(e for e in site.exams if e.modality == "MR")
        page.fill(".m-search", "HEAD")
        page.wait_for_function("() => document.querySelectorAll('.m-exam').length === 1")
        assert page.get_attribute(".m-exam", "data-study") == mr.study_uid
        page.fill(".m-search", "")
        page.wait_for_function("(n) => document.querySelectorAll('.m-exam').length === n", arg=len(site.exams))

        page.click(".m-lang")
        ready(page)
        assert page.inner_text("h1") == "My exams" and _untranslated(page) == []
        page.click(".m-lang")
        ready(page)
        assert page.inner_text("h1") == "我的检查" and _untranslated(page) == []
        page.click(".m-textsize")
        assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "20px"
        page.click(".m-textsize")
        page.click(".m-textsize")  # back to the base size (the choice is kept in this profile only)
        assert not page.errors  # type: ignore[attr-defined]

    with site.phone(SMALL_PHONE, patient_of=newest) as small:
        small.goto("/m/exams")
        ready(small)
        small.wait_for_selector(".m-exam")
        assert small.evaluate("() => document.documentElement.scrollWidth") <= SMALL_PHONE["width"]
        shot(small, "exams-360x640")


def _touch(page: Page, cdp: Any, kind: str, points: list[tuple[float, float]]) -> None:
    touches = [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touches})


def _view(page: Page) -> dict[str, float]:
    found: dict[str, float] = page.evaluate(
        """() => { const stage = document.querySelector('.m-film-stage'); const layer = stage.firstElementChild;
                   const m = new DOMMatrix(getComputedStyle(layer).transform); const r = stage.getBoundingClientRect();
                   return { s: m.a, x: m.e, y: m.f, scale: Number(stage.dataset.scale), w: r.width, h: r.height,
                            left: r.left, top: r.top, cell: stage.dataset.cell || '' }; }""")
    return found


def _double_tap(page: Page, x: float, y: float) -> None:
    page.touchscreen.tap(x, y)
    page.touchscreen.tap(x, y)


def _viewer_ready(page: Page) -> None:
    page.wait_for_function("() => document.body.dataset.viewerReady === 'true'", timeout=90_000)
    page.wait_for_function("() => !!document.querySelector('[data-field=patient-name]')", timeout=30_000)


def test_film_zoom_double_tap_swipe_and_viewer(phone_site: PhoneSite) -> None:
    site = phone_site
    newest, second = site.exams[0], site.exams[1]
    films = site.api("GET", f"/api/studies/{newest.study_uid}/films", site.staff_of(newest)).json()
    assert [c["sop_uid"] for s in films["sheets"] for c in s["images"]] == newest.sop_uids  # the exam, in order
    with site.phone(patient_of=newest) as page:
        page.goto(f"/m/exams/{newest.study_uid}")
        ready(page)
        page.click("[data-tab=film]")
        page.wait_for_selector(".m-film-stage[data-ready=true]", timeout=30_000)
        for n, sheet in enumerate(films["sheets"], start=1):  # the sheets shown are the API's, loaded as PNGs
            if n > 1:
                page.click(".m-sheet-next")
                page.wait_for_selector(f".m-film-stage[data-sheet='{n}'][data-ready=true]")
            assert page.get_attribute(".m-film-image", "src") == sheet["png"]
            assert page.get_attribute(".m-film-stage", "data-layout") == sheet["layout"]
            assert page.evaluate("() => document.querySelector('.m-film-image').naturalWidth") == sheet["width"]
            assert f"{n}" in page.inner_text(".m-sheet-counter") and f"{len(films['sheets'])}" in page.inner_text(
                ".m-sheet-counter")
        if len(films["sheets"]) > 1:
            page.click(".m-sheet-prev")
            page.wait_for_selector(".m-film-stage[data-sheet='1'][data-ready=true]")
        start = _view(page)
        assert start["s"] == pytest.approx(1) and start["scale"] == pytest.approx(1)
        cx, cy = start["left"] + start["w"] / 2, start["top"] + start["h"] / 2

        cdp = page.context.new_cdp_session(page)  # two fingers spread apart: a pinch
        _touch(page, cdp, "touchStart", [(cx - 30, cy), (cx + 30, cy)])
        for step in range(1, 11):
            _touch(page, cdp, "touchMove", [(cx - 30 - 9 * step, cy), (cx + 30 + 9 * step, cy)])
        _touch(page, cdp, "touchEnd", [])
        pinched = _view(page)
        assert pinched["s"] == pytest.approx(240 / 60, rel=0.05)  # fingers 60 px apart, then 240 px: four times
        assert pinched["scale"] == pytest.approx(pinched["s"], rel=0.01)
        shot(page, "film-pinched")
        _double_tap(page, cx, cy)
        assert _view(page)["s"] == pytest.approx(1)  # a double tap on a zoomed film: back to the whole sheet

        box = page.evaluate("() => window.yunyingMobile.film.sheetBox")
        layout = page.get_attribute(".m-film-stage", "data-layout") or "1x1"
        cols, rows = (int(v) for v in re.split(r"[x×,]", layout))  # columns x rows (docs/cloudfilm.md)
        assert cols * rows > 1, layout
        cell_w, cell_h = box["w"] / cols, box["h"] / rows
        tap_x, tap_y = start["left"] + box["x"] + cell_w / 2, start["top"] + box["y"] + cell_h / 2
        _double_tap(page, tap_x, tap_y)
        cell = _view(page)
        assert cell["cell"] == "0,0"
        assert cell["s"] == pytest.approx(min(start["w"] / cell_w, start["h"] / cell_h), rel=0.01)
        # the tapped cell is on the stage, whole, and fills it across or down
        left, top = cell["x"] + box["x"] * cell["s"], cell["y"] + box["y"] * cell["s"]
        width, height = cell_w * cell["s"], cell_h * cell["s"]
        assert left >= -1 and top >= -1 and left + width <= start["w"] + 1 and top + height <= start["h"] + 1
        assert width == pytest.approx(start["w"], abs=1) or height == pytest.approx(start["h"], abs=1)
        shot(page, "film-cell")
        _double_tap(page, cx, cy)
        assert _view(page)["s"] == pytest.approx(1)

        _touch(page, cdp, "touchStart", [(start["left"] + start["w"] - 20, cy)])  # one finger, right to left
        for step in range(1, 9):
            _touch(page, cdp, "touchMove", [(start["left"] + start["w"] - 20 - 35 * step, cy)])
        _touch(page, cdp, "touchEnd", [])
        page.wait_for_url(f"**/m/exams/{second.study_uid}")
        ready(page)
        assert page.get_attribute(".m-tab[aria-selected=true]", "data-tab") == "film"  # the tab is kept
        assert not page.errors  # type: ignore[attr-defined]

        # the phone viewer on the patient's own session, watermarked with the session's text
        page.click("[data-tab=images]")
        page.click(".m-open-viewer")
        page.wait_for_url(f"**/m/viewer?study={second.study_uid}")
        _viewer_ready(page)
        _watermarked(page, page.request.get("/api/patient/me").json()["watermark"])
        assert "Zhang" in page.inner_text("[data-field=patient-name]")  # the patient's own name in the overlay
        shot(page, "viewer-patient")


def _watermarked(page: Page, session_text: str) -> None:
    """The viewer's watermark is the session's text from /api/patient/me (who and since when), drawn once."""
    who = session_text.rsplit(" · ", 1)[0]  # without the time: the page and this call may be a minute apart
    page.wait_for_function("(who) => document.querySelector('[data-field=watermark]').textContent.startsWith(who)",
                           arg=who)
    assert len(re.findall(r"\d\d:\d\d", page.inner_text("[data-field=watermark]"))) == 1


def _zip_instances(body: bytes, password: str) -> list[pydicom.Dataset]:
    """The DICOM files of a download part, opened with the password shown (WinZip AES); the DICOMDIR is there."""
    with pyzipper.AESZipFile(io.BytesIO(body)) as archive:
        archive.setpassword(password.encode())
        names = archive.namelist()
        assert "DICOMDIR" in names, names
        return [pydicom.dcmread(io.BytesIO(archive.read(n))) for n in names if n != "DICOMDIR" and not n.endswith("/")]


def _download(page: Page) -> tuple[str, list[pydicom.Dataset]]:
    """Start the download on the images tab; check what is shown; fetch the part; return its password and files."""
    page.click("[data-tab=images]")
    page.click(".m-download-start")
    page.wait_for_selector(".m-download-out[data-state=ready]", timeout=180_000)
    password = page.get_attribute(".m-password", "data-password") or ""
    assert len(password) >= 8 and page.inner_text(".m-password") == password
    sizes = [int(s or 0) for s in page.eval_on_selector_all(".m-part", "(els) => els.map((e) => e.dataset.size)")]
    assert sizes and all(size > 0 for size in sizes)
    assert int(page.get_attribute(".m-total", "data-total") or 0) == sum(sizes)
    assert re.search(r"\d{4}", page.inner_text(".m-valid"))
    part = page.request.get(page.get_attribute(".m-part", "href") or "")
    assert part.status == 200 and len(part.body()) == sizes[0]
    return password, _zip_instances(part.body(), password)


def _make_share(page: Page, study: str, *, password: str = "", anonymous: bool = False) -> tuple[str, str]:
    """Share one exam on /m/shares; return the share's id and link (the QR code decodes to the link)."""
    import zxingcpp
    from PIL import Image

    page.goto("/m/shares")
    ready(page)
    for box in page.locator(".m-share-exam input[type=checkbox]").all():
        box.set_checked(box.get_attribute("value") == study)
    if password:
        page.fill(".m-share-form .m-share-password", password)
    page.locator(".m-anonymous").set_checked(anonymous)
    page.click(".m-share-create")
    page.wait_for_function(
        "() => { const q = document.querySelector('.m-qr'); return !!q && q.complete && q.naturalWidth > 0; }")
    link = page.inner_text(".m-link").strip()
    path = shot(page, "share-qr").with_name("share-qr-element.png")
    page.locator(".m-qr").screenshot(path=str(path))
    assert [d.text for d in zxingcpp.read_barcodes(Image.open(path))] == [link] and "/s/" in link
    return page.get_attribute(".m-share-made", "data-share") or "", "/s/" + link.split("/s/", 1)[1]


PAGE = 30  # access-log entries per request (viewer/src/mobile/pages/access.ts, the API's limit)


def _all_access_entries(page: Page) -> list[dict[str, str]]:
    page.goto("/m/access")
    ready(page)
    page.wait_for_selector(".m-access-entry")
    while page.locator(".m-more").count():
        seen = page.locator(".m-access-entry").count()
        page.click(".m-more")  # the button goes at once; the next page's entries come after the request
        try:
            page.wait_for_function("(n) => document.querySelectorAll('.m-access-entry').length > n", arg=seen,
                                   timeout=15_000)
        except PlaywrightTimeoutError:
            break  # an empty last page (the total was a multiple of the page size)
    entries: list[dict[str, str]] = page.eval_on_selector_all(
        ".m-access-entry", "(els) => els.map((e) => ({...e.dataset, text: e.innerText}))")
    return entries


def test_download_shares_access_log_and_blocks(phone_site: PhoneSite) -> None:
    site = phone_site
    newest, mr = site.exams[0], site.exams[1]
    with site.phone(patient_of=newest) as page:
        page.goto(f"/m/exams/{newest.study_uid}")
        ready(page)
        _password, files = _download(page)  # the patient's own download: the originals
        assert sorted(str(ds.SOPInstanceUID) for ds in files) == sorted(newest.sop_uids)
        assert {str(ds.PatientID) for ds in files} == {newest.patient_id}
        shot(page, "download", full_page=True)

        share_id, path = _make_share(page, newest.study_uid, password="Pw-4711")
        shot(page, "share-made", full_page=True)
        with site.phone(SMALL_PHONE) as visitor:
            visitor.goto(path)
            ready(visitor)
            visitor.fill(".m-share-password", "wrong-password")
            visitor.click(".m-share-open")
            visitor.wait_for_selector(".m-error:not([hidden])")
            visitor.fill(".m-share-password", "Pw-4711")
            visitor.click(".m-share-open")
            visitor.wait_for_url("**/m/exams")
            ready(visitor)
            visitor.wait_for_selector(".m-exam")
            assert visitor.eval_on_selector_all(".m-exam", "(els) => els.map((e) => e.dataset.study)") == [newest.study_uid]
            assert visitor.locator(".m-nav").count() == 0 and visitor.locator(".m-notice").count() == 1
            assert visitor.locator(".m-watermark span").first.inner_text().strip() != ""
            shot(visitor, "share-visitor-360x640", full_page=True)

            page.goto("/m/shares")
            ready(page)
            page.once("dialog", lambda dialog: dialog.accept())
            page.click(f".m-share[data-share='{share_id}'] .m-revoke")
            page.wait_for_selector(f".m-share.m-revoked[data-share='{share_id}']")
            visitor.goto("/m/exams")
            ready(visitor)
            assert visitor.locator("[data-state=no-session]").count() == 1  # the share's session ended with it
            ended = visitor.goto(f"/m/viewer?study={newest.study_uid}")  # the viewer too: back to the link, not sign-in
            assert ended is not None and ended.status == 401
            assert visitor.locator("[data-state=no-session] a[href='/m/exams']").count() == 1
            shot(visitor, "viewer-no-session")

        anonymous_id, path = _make_share(page, mr.study_uid, anonymous=True)
        with site.phone(SMALL_PHONE) as visitor:
            visitor.goto(path)
            ready(visitor)
            visitor.click(".m-share-open")  # no password on this one
            visitor.wait_for_url("**/m/exams")
            ready(visitor)
            visitor.wait_for_selector(".m-exam")
            assert visitor.eval_on_selector_all(".m-exam", "(els) => els.map((e) => e.dataset.study)") == [mr.study_uid]
            visitor.click(".m-exam")
            visitor.wait_for_url(f"**/m/exams/{mr.study_uid}")
            ready(visitor)
            visitor.click("[data-tab=report]")
            visitor.wait_for_selector(".m-report")
            assert "MR HEAD: no abnormality." in visitor.inner_text(".m-report")
            shown = visitor.inner_text("body")
            assert [i for i in IDENTIFIERS if i in shown] == []
            shot(visitor, "share-anonymous-report", full_page=True)
            _password, files = _download(visitor)  # de-identified files
            assert len(files) == len(mr.sop_uids)
            for ds in files:
                values = " ".join(str(ds.get(k, "")) for k in ("PatientName", "PatientID", "AccessionNumber"))
                assert [i for i in IDENTIFIERS if i in values] == [], values
            visitor.click(".m-open-viewer")
            visitor.wait_for_url("**/m/viewer?study=*")
            _viewer_ready(visitor)
            overlay = visitor.inner_text("[data-field=patient-name]") + visitor.inner_text("[data-field=title]")
            assert [i for i in IDENTIFIERS if i in overlay] == [], overlay
            _watermarked(visitor, visitor.request.get("/api/patient/me").json()["watermark"])
            assert visitor.inner_text("[data-field=watermark]").startswith(f"分享查看 · {anonymous_id} · ")
            shot(visitor, "viewer-share-anonymous")

            archive = direct(site.server)  # the share runs out: the open session ends on its next request
            try:
                with archive.sessions() as session:
                    session.execute(update(Share).where(Share.id == int(anonymous_id))
                                    .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
                    session.commit()
            finally:
                archive.close()
            visitor.goto("/m/exams")
            ready(visitor)
            assert visitor.locator("[data-state=no-session]").count() == 1
            visitor.goto(path)
            ready(visitor)
            assert visitor.locator("[data-state=link-410]").count() == 1

        for _ in range(PAGE):  # each look at "who am I" is an entry too: surely more than one request's worth
            assert page.request.get("/api/patient/me").status == 200
        entries = _all_access_entries(page)
        assert len(entries) > PAGE  # more than one request's worth: paged by seq
        done = {(e["action"], e["who"].split(":")[0] if ":" in e["who"] else e["who"], e["exam"]) for e in entries}
        mine = {e["who"] for e in entries if e["who"].startswith("patient:")}
        assert len(mine) == 1
        expected = {("report-read", "patient", newest.study_uid), ("download", "patient", newest.study_uid),
                    ("share-create", "patient", newest.study_uid),
                    ("share-create", "patient", mr.study_uid), ("share-revoke", "patient", newest.study_uid),
                    ("view", "share", newest.study_uid), ("view", "share", mr.study_uid),
                    ("download", "share", mr.study_uid), ("retrieve", "share", mr.study_uid)}
        assert expected <= done, expected - done
        assert {e["who"] for e in entries if e["action"] == "share-open"} >= {f"share:{share_id}", f"share:{anonymous_id}"}
        assert site.other is not None and all(e["exam"] != site.other.study_uid for e in entries)
        shot(page, "access-log")

        page.select_option(".m-block-hospital", label="云影中心医院")
        page.click(".m-block-add")
        page.wait_for_selector(".m-block")
        assert "云影中心医院" in page.inner_text(".m-block")
        shot(page, "access-and-blocks", full_page=True)
        page.click(".m-unblock")
        page.wait_for_function("() => !document.querySelector('.m-block')")
        assert not page.errors  # type: ignore[attr-defined]


def test_feedback_creates_a_ticket(phone_site: PhoneSite) -> None:
    site = phone_site
    newest = site.exams[0]
    words = "胶片第二张看不清 film sheet 2 is blurred"
    with site.phone(patient_of=newest) as page:
        page.goto(f"/m/exams/{newest.study_uid}")
        ready(page)
        picture = shot(page, "feedback-screenshot-source")
        page.click(".m-fab")
        page.click(".m-feedback-send")
        assert page.inner_text(".m-sheet .m-status") != ""  # empty text is refused before sending
        page.fill(".m-feedback-text", words)
        page.set_input_files(".m-feedback-file", str(picture))
        page.click(".m-feedback-send")
        page.wait_for_selector(".m-sheet[data-ticket]", timeout=30_000)
        ticket = page.get_attribute(".m-sheet", "data-ticket")
        shot(page, "feedback-sent")
        assert not page.errors  # type: ignore[attr-defined]

    archive = direct(site.server)
    try:
        with archive.sessions() as session:
            row = session.execute(text(
                "SELECT t.who, t.text, t.screenshot_key, s.study_uid FROM feedback_ticket t "
                "JOIN study s ON s.id = t.study_fk WHERE t.id = :id"), {"id": int(ticket or 0)}).one()
    finally:
        archive.close()
    assert row.text == words and row.study_uid == newest.study_uid and row.who.startswith("patient:")
    assert row.screenshot_key
