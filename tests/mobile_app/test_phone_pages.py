"""The phone pages against the real archive, at 390x844 and 360x640 with touch.

Proves: the exam link asks for the phone number and a code (the code read from the outbox), says so on a wrong
code and lets the patient in with the right one; the exam list holds the patient's exams of both hospitals,
grouped by hospital, type and month, and the keyword search narrows it; the film view zooms steplessly with two
fingers and a double tap fills the stage with the tapped cell (both seen in the CSS transform), a swipe goes to the
next exam; a download shows its password, validity and part sizes and the part is a ZIP; a share shows a QR code
that decodes to its link, which a visitor opens with the password and then sees only the shared exam, until the
patient revokes it; blocks can be set and lifted; feedback creates a ticket; large type, 44 px touch targets and
the English switch hold.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page
from sqlalchemy import inspect, text

from tests.mobile_app.conftest import PHONE, SMALL_PHONE, PhoneSite, ready, shot
from tests.security.conftest import direct

pytest.importorskip("yunying.cloudfilm", reason="the cloud-film backend is not in this tree yet")

TOUCH_PX = 44


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
    newest = site.exams[0]
    with site.phone() as page:
        page.goto("/m/open/this-is-not-a-link")
        ready(page)
        assert page.locator("[data-state^=link-4]").count() == 1  # unknown (404) or expired (410): said so

        token = site.exam_link(newest)
        page.goto(f"/m/open/{token}")
        ready(page)
        assert page.inner_text(".m-hospital") == newest.hospital
        assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "17px"
        assert page.get_attribute(".m-code", "inputmode") == "numeric"
        assert _too_small_targets(page) == []
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


def test_film_zoom_double_tap_and_swipe(phone_site: PhoneSite) -> None:
    site = phone_site
    newest, second = site.exams[0], site.exams[1]
    with site.phone(patient_of=newest) as page:
        page.goto(f"/m/exams/{newest.study_uid}")
        ready(page)
        page.click("[data-tab=film]")
        page.wait_for_selector(".m-film-stage[data-ready=true]", timeout=30_000)
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


def test_download_share_visitor_and_blocks(phone_site: PhoneSite) -> None:
    import zxingcpp
    from PIL import Image

    site = phone_site
    newest = site.exams[0]
    with site.phone(patient_of=newest) as page:
        page.goto(f"/m/exams/{newest.study_uid}")
        ready(page)
        page.click("[data-tab=images]")
        assert page.get_attribute(".m-open-viewer", "href") == f"/m/viewer?study={newest.study_uid}"
        page.click(".m-download-start")
        page.wait_for_selector(".m-download-out[data-state=ready]", timeout=180_000)
        password = page.get_attribute(".m-password", "data-password") or ""
        assert len(password) >= 8 and page.inner_text(".m-password") == password
        sizes = [int(s or 0) for s in page.eval_on_selector_all(".m-part", "(els) => els.map((e) => e.dataset.size)")]
        assert sizes and all(size > 0 for size in sizes)
        assert int(page.get_attribute(".m-total", "data-total") or 0) == sum(sizes)
        assert re.search(r"\d{4}", page.inner_text(".m-valid"))
        part = page.request.get(page.get_attribute(".m-part", "href") or "")
        assert part.status == 200 and part.body()[:2] == b"PK"
        shot(page, "download", full_page=True)

        page.goto("/m/shares")
        ready(page)
        for box in page.locator(".m-share-exam input[type=checkbox]").all():
            if box.get_attribute("value") != newest.study_uid:
                box.uncheck()
        page.locator(f".m-share-exam[data-study='{newest.study_uid}'] input").check()
        page.fill(".m-share-form .m-share-password", "Pw-4711")
        page.click(".m-share-create")
        page.wait_for_function(
            "() => { const q = document.querySelector('.m-qr'); return !!q && q.complete && q.naturalWidth > 0; }")
        link = page.inner_text(".m-link").strip()
        qr = shot_element(page, ".m-qr", "share-qr")
        decoded = zxingcpp.read_barcodes(Image.open(qr))
        assert [d.text for d in decoded] == [link] and "/s/" in link
        shot(page, "share-made", full_page=True)

        path = "/s/" + link.split("/s/", 1)[1]
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
            page.click(".m-share:not(.m-revoked) .m-revoke")
            page.wait_for_selector(".m-share.m-revoked")
            visitor.goto("/m/exams")
            ready(visitor)
            assert visitor.locator("[data-state=no-session]").count() == 1  # the share's session ended with it

        page.goto("/m/access")
        ready(page)
        page.wait_for_selector(".m-access-entry")
        page.select_option(".m-block-hospital", label="云影中心医院")
        page.click(".m-block-add")
        page.wait_for_selector(".m-block")
        assert "云影中心医院" in page.inner_text(".m-block")
        shot(page, "access-and-blocks", full_page=True)
        page.click(".m-unblock")
        page.wait_for_function("() => !document.querySelector('.m-block')")
        assert not page.errors  # type: ignore[attr-defined]


def shot_element(page: Page, selector: str, name: str) -> str:
    path = shot(page, name).with_name(f"{name}-element.png")
    page.locator(selector).screenshot(path=str(path))
    return str(path)


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
        tables = [name for name in inspect(archive.engine).get_table_names() if "feedback" in name]
        assert tables, "no feedback table"
        with archive.sessions() as session:
            rows = [dict(row._mapping) for name in tables for row in session.execute(text(f"SELECT * FROM {name}"))]
    finally:
        archive.close()
    mine = [row for row in rows if any(isinstance(v, str) and words in v for v in row.values())]
    assert len(mine) == 1 and str(mine[0].get("id")) == ticket
