"""The phone viewer on the shared CT (134 axial slices, 512×512) in Chromium as a 390×844 touch phone, one page
for the module: real touch input (CDP) scrolls, windows, zooms and pans; measurements report millimetres;
invert/rotate/flip change the viewport; MPR switches between three orientations with MIP; 1×2 layout, cine,
presets and language. Values are read from Cornerstone (what the screen shows), screenshots kept."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.mobile.conftest import USER
from tests.support.mobile import Touch, phone_page, shot, stage_center, wait_ready
from tests.support.viewer import ViewerSite

VP = "window.yunyingViewer.ctx.engine.getViewport('vp-0')"


@pytest.fixture(scope="module")
def page(mobile_site: ViewerSite, ct_study: str) -> Iterator[Page]:
    with phone_page(mobile_site.browser, mobile_site.server.url, USER, f"/m/viewer?study={ct_study}") as opened:
        wait_ready(opened)
        opened.wait_for_function(f"() => !!{VP}.csImage", timeout=60_000)
        yield opened
        assert not opened.errors  # type: ignore[attr-defined]


@pytest.fixture
def touch(page: Page) -> Touch:
    page.evaluate("() => document.querySelector('.m-scrim:not([hidden])')?.click()")  # a sheet left open
    page.evaluate(f"""() => {{ const v = {VP}; if (!v || !v.getImageIds) return; v.resetCamera(); v.resetProperties();
                     v.setViewPresentation({{ rotation: 0, flipHorizontal: false, flipVertical: false }}); v.render(); }}""")
    return Touch(page)


def state(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(f"""() => {{ const v = {VP}; const c = v.getCamera(); const p = v.getProperties();
        return {{ index: v.getCurrentImageIdIndex(), total: v.getNumberOfSlices(), scale: c.parallelScale, zoom: v.getZoom(),
                 focal: Array.from(c.focalPoint), voi: p.voiRange, invert: !!p.invert,
                 presentation: v.getViewPresentation() }}; }}""")
    return found


def window_level(voi: dict[str, float]) -> tuple[float, float]:
    """Width and centre as Cornerstone (and DICOM's linear function) define them from the VOI range."""
    return voi["upper"] - voi["lower"] + 1, (voi["lower"] + voi["upper"] + 1) / 2


def test_opens_phone_first_with_overlay_watermark_and_large_targets(page: Page) -> None:
    first = state(page)
    assert first["total"] == 134 and first["index"] == 0
    page.wait_for_function("() => document.querySelector('[data-field=image]')?.textContent === '1/134'")
    assert page.locator("[data-field=patient-name]").first.text_content() == "Pancreas-CT-CB_001"
    assert page.locator("[data-field=study-date]").first.text_content() == "2012-07-06"
    assert page.locator("[data-field=wl]").first.text_content().startswith("窗宽")  # zh-CN by default
    assert page.locator("[data-field=scale]").count() == 1
    page.wait_for_function("() => document.querySelector('[data-field=watermark]').textContent.includes('rad-mobile')")
    sizes = page.evaluate("""() => [...document.querySelectorAll('.m-tool, .m-top button')]
        .map((b) => { const r = b.getBoundingClientRect(); return [b.dataset.action, r.width, r.height]; })""")
    assert len(sizes) >= 9
    assert all(w >= 44 and h >= 44 for _a, w, h in sizes), sizes
    assert page.evaluate("() => document.documentElement.scrollWidth") == 390  # nothing sticks out sideways
    shot(page, "ct-opened")


def test_vertical_swipe_scrolls_and_horizontal_drag_windows(page: Page, touch: Touch) -> None:
    x, y = stage_center(page)
    before = state(page)
    touch.swipe((x, y + 120), (x, y - 120))  # finger up: forward, one image per 14 px
    after = state(page)
    assert after["index"] - before["index"] == 240 // 14
    page.wait_for_function(f"() => document.querySelector('[data-field=image]').textContent === '{after['index'] + 1}/134'")
    assert after["voi"] == before["voi"]  # a vertical swipe does not window
    touch.swipe((x, y - 60), (x, y + 60))
    assert state(page)["index"] == after["index"] - 120 // 14

    width, center = window_level(before["voi"])
    touch.swipe((x - 100, y), (x + 100, y))  # right: wider window, same level, same image
    windowed = state(page)
    new_width, new_center = window_level(windowed["voi"])
    assert new_width == pytest.approx(width * math.e, rel=0.05)  # 200 px: × e (the axis is decided after 10 px)
    assert new_center == pytest.approx(center, abs=1)
    assert windowed["index"] == state(page)["index"]
    page.wait_for_function(f"() => document.querySelector('[data-field=wl]').textContent.includes('{round(new_width)}')")

    page.click("[data-action=wl]")  # W/L mode: one finger windows in both axes and never scrolls
    index = state(page)["index"]
    touch.swipe((x, y - 80), (x, y + 80))
    moved = state(page)
    assert moved["index"] == index
    assert window_level(moved["voi"])[1] > new_center + 50
    page.click("[data-action=wl]")


def test_pinch_zooms_steplessly_about_the_fingers_pans_and_double_tap_fits(page: Page, touch: Touch) -> None:
    x, y = stage_center(page)
    fit = state(page)
    touch.pinch((x, y), 100, 180)
    zoomed = state(page)
    assert zoomed["scale"] == pytest.approx(fit["scale"] * 100 / 180, rel=0.03)  # stepless: the finger ratio
    assert zoomed["index"] == fit["index"]
    # two fingers moving together pan: the image point under them follows
    anchor = page.evaluate(f"([x, y]) => {{ const v = {VP}; const b = v.canvas.getBoundingClientRect(); "
                           f"return Array.from(v.canvasToWorld([x - b.left, y - b.top])); }}", [x, y])
    touch.gesture([(x - 50, y), (x + 50, y)], [(x - 50 + 60, y + 40), (x + 50 + 60, y + 40)])
    under = page.evaluate(f"([x, y]) => {{ const v = {VP}; const b = v.canvas.getBoundingClientRect(); "
                          f"return Array.from(v.canvasToWorld([x - b.left, y - b.top])); }}", [x + 60, y + 40])
    assert math.dist(anchor, under) < 2.0  # mm
    assert state(page)["scale"] == pytest.approx(zoomed["scale"], rel=0.03)
    shot(page, "ct-pinched")
    touch.double_tap(x, y)
    assert state(page)["zoom"] == pytest.approx(1, abs=0.01)
    touch.double_tap(x, y)
    assert state(page)["zoom"] == pytest.approx(2.5, rel=0.02)


def test_distance_and_angle_measurements_on_touch(page: Page, touch: Touch) -> None:
    x, y = stage_center(page)
    page.evaluate("() => window.yunyingViewer.cs.tools.annotation.state.removeAllAnnotations()")
    page.click("[data-action=measure]")
    page.click("[data-action=measure-length]")
    mm_per_px = page.evaluate(f"""([x, y]) => {{ const v = {VP}; const b = v.canvas.getBoundingClientRect();
        const a = v.canvasToWorld([x - b.left, y - b.top]); const c = v.canvasToWorld([x - b.left + 1, y - b.top]);
        return Math.hypot(a[0] - c[0], a[1] - c[1], a[2] - c[2]); }}""", [x, y])
    index = state(page)["index"]
    touch.swipe((x - 90, y), (x + 90, y), steps=15)
    page.wait_for_function("""() => window.yunyingViewer.cs.tools.annotation.state.getAllAnnotations()
        .some((a) => a.metadata.toolName === 'Length' && Object.values(a.data.cachedStats || {})[0]?.length > 0)""")
    length = page.evaluate("""() => { const a = window.yunyingViewer.cs.tools.annotation.state.getAllAnnotations()
        .find((a) => a.metadata.toolName === 'Length'); return Object.values(a.data.cachedStats)[0]; }""")
    assert length["unit"] == "mm"
    assert length["length"] == pytest.approx(180 * mm_per_px, rel=0.05)
    assert state(page)["index"] == index  # measuring does not scroll

    page.click("[data-action=measure]")
    page.click("[data-action=measure-angle]")
    touch.swipe((x - 80, y + 60), (x, y - 40), steps=10)  # first arm drawn, then a second drag places the third point
    touch.swipe((x + 40, y + 10), (x + 80, y + 60), steps=10)
    page.wait_for_function("""() => window.yunyingViewer.cs.tools.annotation.state.getAllAnnotations()
        .some((a) => a.metadata.toolName === 'Angle' && Object.values(a.data.cachedStats || {})[0]?.angle > 0)""",
                           timeout=10_000)
    angle = page.evaluate("""() => Object.values(window.yunyingViewer.cs.tools.annotation.state.getAllAnnotations()
        .find((a) => a.metadata.toolName === 'Angle').data.cachedStats)[0].angle""")
    expected = math.degrees(2 * math.atan2(80, 100))  # the two arms meet at (x, y - 40)
    assert angle == pytest.approx(expected, abs=3)
    shot(page, "ct-measured")
    page.click("[data-action=measure]")
    page.click("[data-action=measure-off]")
    assert page.evaluate("() => window.yunyingViewer.mobile.mode()") == "browse"


def test_invert_rotate_flip_and_reset(page: Page, touch: Touch) -> None:
    page.click("[data-action=more]")
    page.click("[data-sheet=more] [data-action=invert]")
    page.click("[data-sheet=more] [data-action=rotate]")
    changed = state(page)
    assert changed["invert"] is True
    assert changed["presentation"]["rotation"] == 90
    page.click("[data-sheet=more] [data-action=flipH]")
    assert state(page)["presentation"]["flipHorizontal"] is True
    shot(page, "ct-inverted-rotated")
    page.click("[data-sheet=more] [data-action=reset]")
    back = state(page)
    assert back["invert"] is False and back["presentation"]["rotation"] == 0 and not back["presentation"]["flipHorizontal"]
    page.click("[data-action=more-close]")


def test_presets_cine_layout_and_language(page: Page, touch: Touch) -> None:
    page.click("[data-action=presets]")
    page.click("[data-preset=lung]")
    assert window_level(state(page)["voi"]) == pytest.approx((1500, -600), abs=0.01)

    start = state(page)["index"]
    page.click("[data-action=cine]")
    page.wait_for_function(f"() => {VP}.getCurrentImageIdIndex() !== {start}", timeout=20_000)
    page.click("[data-action=cine]")
    assert page.evaluate("() => window.yunyingViewer.mobileTools.playing()") == []

    page.click("[data-action=more]")
    page.click("[data-action=layout-2]")
    page.wait_for_function("() => window.yunyingViewer.ctx.slots().length === 2")
    boxes = [page.locator(".m-slot").nth(i).bounding_box() for i in range(2)]
    assert boxes[0] and boxes[1] and boxes[1]["y"] > boxes[0]["y"] + 100  # stacked in portrait: full width each
    shot(page, "ct-two-views")
    page.click("[data-action=more]")
    page.click("[data-action=layout-1]")
    page.wait_for_function("() => window.yunyingViewer.ctx.slots().length === 1")

    page.click("[data-action=language]")
    assert page.locator("[data-action=series] .m-tool-label").text_content() == "Series"
    page.wait_for_function("() => document.querySelector('[data-field=watermark]').textContent"
                           ".startsWith('Viewed by rad-mobile')")
    page.click("[data-action=language]")
    assert page.locator("[data-action=series] .m-tool-label").text_content() == "序列"


def test_mpr_one_plane_at_a_time_with_mip(page: Page, touch: Touch) -> None:
    page.click("[data-action=mpr]")
    page.wait_for_function("() => window.yunyingViewer.mobile3d.plane() === 'axial'", timeout=60_000)
    normals = {}
    labels = {"axial": "横断", "sagittal": "矢状", "coronal": "冠状"}
    for plane in ("axial", "sagittal", "coronal"):
        page.click(f"[data-plane={plane}]")
        page.wait_for_function(f"() => window.yunyingViewer.mobile3d.plane() === '{plane}'")
        normals[plane] = [round(abs(v), 3) for v in page.evaluate("() => window.yunyingViewer.mobile3d.normal()")]
        # the label follows the plane once the new camera is rendered (a moment later on a busy machine)
        page.wait_for_function(f"() => (document.querySelector('[data-field=plane]')?.textContent ?? '')"
                               f".startsWith('{labels[plane]}')", timeout=10_000)
    assert normals == {"axial": [0, 0, 1], "sagittal": [1, 0, 0], "coronal": [0, 1, 0]}
    x, y = stage_center(page)
    before = page.evaluate(f"() => {VP}.getCurrentImageIdIndex()")
    touch.swipe((x, y + 70), (x, y - 70))  # the same swipe scrolls coronal slices
    assert page.evaluate(f"() => {VP}.getCurrentImageIdIndex()") == before + 140 // 14
    page.click("[data-action=mip]")
    assert page.evaluate("() => window.yunyingViewer.mobile3d.mip()") is True
    assert page.evaluate(f"() => {VP}.getSlabThickness()") == pytest.approx(20)
    page.wait_for_timeout(500)
    shot(page, "ct-mpr-coronal-mip")
    page.click("[data-action=mpr-2d]")
    page.wait_for_function(f"() => {VP}.type === 'stack' && !!{VP}.csImage")
    assert page.evaluate("() => window.yunyingViewer.mobile3d.plane()") is None
