"""Without WebGL (Chromium started with WebGL and the 3D APIs switched off) the phone viewer shows images rendered
by the server (/rendered JPEGs): the first one appears, a swipe moves to other images, a pinch zooms the picture
(CSS transform), a preset asks the server for another window — and no Cornerstone code is downloaded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.mobile.conftest import USER
from tests.support.mobile import Touch, phone_page, shot, stage_center, wait_ready
from tests.support.viewer import CHROMIUM, FLAGS, ViewerSite

NO_WEBGL = [f for f in FLAGS if "swiftshader" not in f and "gpu" not in f] + ["--disable-webgl", "--disable-3d-apis",
                                                                                 "--disable-gpu"]


@pytest.fixture(scope="module")
def no_webgl_browser(mobile_site: ViewerSite) -> Iterator[Browser]:
    # a second Chromium from the package's Playwright (one sync Playwright per thread)
    browser = mobile_site.browser.browser_type.launch(executable_path=CHROMIUM, args=NO_WEBGL)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def page(mobile_site: ViewerSite, ct_study: str, no_webgl_browser: Browser) -> Iterator[Page]:
    with phone_page(no_webgl_browser, mobile_site.server.url, USER, f"/m/viewer?study={ct_study}") as opened:
        wait_ready(opened)
        yield opened
        assert not opened.errors  # type: ignore[attr-defined]


def mobile(page: Page, what: str) -> object:
    return page.evaluate(f"() => window.yunyingViewer.mobile.{what}()")


def test_rendered_frames_swipe_and_pinch_without_webgl(page: Page) -> None:
    assert page.evaluate("() => !!document.createElement('canvas').getContext('webgl2')") is False
    assert page.evaluate("() => window.yunyingViewer.mobile.render") == "server"
    page.wait_for_function("() => { const i = document.querySelector('.m-rendered'); return i.complete && i.naturalWidth > 0; }")
    first = str(mobile(page, "src"))
    assert "/rendered?" in first and "viewport=" in first
    assert page.evaluate("() => document.querySelector('.m-rendered').naturalWidth") <= 512  # never above the matrix
    assert page.locator("[data-key='m.fallback']").count() == 1
    assert page.locator("[data-field=image]").text_content() == "1/134"
    page.wait_for_function("() => document.querySelector('[data-field=watermark]').textContent.includes('rad-mobile')")
    shot(page, "fallback-opened")

    touch = Touch(page)
    x, y = stage_center(page)
    touch.swipe((x, y + 100), (x, y - 100))
    assert mobile(page, "index") == 200 // 14
    assert str(mobile(page, "src")) != first
    page.wait_for_function("() => { const i = document.querySelector('.m-rendered'); return i.complete && i.naturalWidth > 0; }")
    assert page.locator("[data-field=image]").text_content() == f"{200 // 14 + 1}/134"

    touch.pinch((x, y), 80, 200)
    assert mobile(page, "scale") == pytest.approx(2.5, rel=0.03)
    assert "scale(2.5" in page.evaluate("() => document.querySelector('.m-rendered-layer').style.transform")
    shot(page, "fallback-pinched")
    touch.double_tap(x, y)
    assert mobile(page, "scale") == 1

    page.click("[data-action=presets]")
    page.click("[data-preset=bone]")
    assert "window=500%2C2000%2Clinear" in str(mobile(page, "src"))
    page.wait_for_function("() => { const i = document.querySelector('.m-rendered'); return i.complete && i.naturalWidth > 0; }")
    loaded = page.evaluate("() => performance.getEntriesByType('resource').map((e) => e.name)")
    assert any("/fallback-" in name for name in loaded) and not any("/webgl-" in name or "/study-" in name
                                                                   for name in loaded), loaded
