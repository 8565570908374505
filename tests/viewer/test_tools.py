"""The 2D reading tools in a real browser, on synthetic images of known pixel spacing and values: every
measurement is drawn with the mouse at image positions (converted through Cornerstone) and its value is
checked against the geometry; rotations, flips, inversion, colour maps, presets and cine change what they
should."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.viewer import (
    SYNTHETIC_BACKGROUND,
    SYNTHETIC_INTERCEPT,
    SYNTHETIC_SPACING,
    SyntheticStudies,
    ViewerSite,
    annotations,
    canvas_stats,
    image_to_page,
    load_synthetic,
    open_study,
    screenshot,
    wait_rendered,
)


@pytest.fixture(scope="module")
def synthetic(viewer_site: ViewerSite) -> SyntheticStudies:
    return load_synthetic(viewer_site)


@pytest.fixture
def ct_page(viewer_site: ViewerSite, synthetic: SyntheticStudies) -> Iterator[Page]:
    """A fresh page on the synthetic CT (tools keep drawing state per page: no sharing between tests)."""
    with viewer_site.page() as page:
        open_study(page, synthetic.ct)
        wait_rendered(page)
        yield page
        assert not page.errors  # type: ignore[attr-defined]


def use_tool(page: Page, button: str) -> None:
    page.evaluate("() => window.yunyingViewer.cs.tools.annotation.state.removeAllAnnotations()")
    page.click(f"[data-action={button}]")


def drag(page: Page, start: tuple[float, float], end: tuple[float, float], steps: int = 6) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()
    page.wait_for_timeout(150)


def only(page: Page, tool: str, key: str) -> dict[str, Any]:
    """The one annotation of ``tool``, once its statistic ``key`` is computed."""
    page.wait_for_function(
        """([tool, key]) => window.yunyingViewer.cs.tools.annotation.state.getAllAnnotations()
             .some((a) => a.metadata.toolName === tool && (Object.values(a.data.cachedStats || {})[0] || {})[key] != null)""",
        arg=[tool, key], timeout=10_000)
    found = annotations(page, tool)
    assert len(found) == 1, found
    return found[0]


def angle_between(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float], d: tuple[float, float]) -> float:
    """Angle in degrees between the lines a–b and c–d (0…90: lines, not rays)."""
    u = (b[0] - a[0], b[1] - a[1])
    v = (d[0] - c[0], d[1] - c[1])
    cos = abs(u[0] * v[0] + u[1] * v[1]) / (math.hypot(*u) * math.hypot(*v))
    return math.degrees(math.acos(min(1.0, cos)))


def test_length_equals_pixel_distance_times_spacing(ct_page: Page) -> None:
    use_tool(ct_page, "measure-length")
    a, b = (100.0, 250.0), (400.0, 300.0)
    drag(ct_page, image_to_page(ct_page, *a), image_to_page(ct_page, *b))
    stats = only(ct_page, "Length", "length")["stats"]
    true_length = math.dist(a, b) * SYNTHETIC_SPACING
    assert stats["unit"] == "mm", stats
    assert abs(stats["length"] - true_length) / true_length < 0.01, (stats, true_length)
    screenshot(ct_page, "tools-length")


def test_probe_reads_hounsfield_units(ct_page: Page) -> None:
    use_tool(ct_page, "measure-probe")
    inside_block = image_to_page(ct_page, 350, 150)  # stored 1424 → HU 400
    ct_page.mouse.click(*inside_block)
    stats = only(ct_page, "Probe", "value")["stats"]
    assert stats["value"] == 1424 + SYNTHETIC_INTERCEPT, stats
    use_tool(ct_page, "measure-probe")
    ct_page.mouse.click(*image_to_page(ct_page, 250, 300))  # background
    assert only(ct_page, "Probe", "value")["stats"]["value"] == SYNTHETIC_BACKGROUND + SYNTHETIC_INTERCEPT


@pytest.mark.parametrize(("button", "tool"), [("measure-rectangle", "RectangleROI"), ("measure-ellipse", "EllipticalROI")])
def test_region_statistics_in_hu(ct_page: Page, button: str, tool: str) -> None:
    use_tool(ct_page, button)
    # a region well inside the HU 400 block: mean 400, SD 0 (the ellipse is drawn from its centre outwards)
    start = (320, 120) if tool == "RectangleROI" else (350, 150)
    drag(ct_page, image_to_page(ct_page, *start), image_to_page(ct_page, 380, 180))
    stats = only(ct_page, tool, "mean")["stats"]
    assert stats["area"] > 0, stats
    expected_area = (60 * SYNTHETIC_SPACING) ** 2 * (1 if tool == "RectangleROI" else math.pi / 4)  # 60 px across
    assert abs(stats["area"] - expected_area) / expected_area < 0.05, (stats, expected_area)
    assert abs(stats["mean"] - 400) < 1 and stats["max"] == 400 and stats["min"] == 400, stats
    assert "mm" in stats["areaUnit"], stats


def test_freehand_region(ct_page: Page) -> None:
    use_tool(ct_page, "measure-freehand")
    corners = [(60, 60), (460, 60), (460, 460), (60, 460), (60, 62)]
    start = image_to_page(ct_page, *corners[0])
    ct_page.mouse.move(*start)
    ct_page.mouse.down()
    for corner in corners[1:]:
        ct_page.mouse.move(*image_to_page(ct_page, *corner), steps=12)
    ct_page.mouse.up()
    stats = only(ct_page, "PlanarFreehandROI", "mean")["stats"]
    assert stats["area"] > 0.8 * (400 * SYNTHETIC_SPACING) ** 2, stats
    # background HU 40 with the HU 400 block and part of the air block inside: a plausible CT mean
    assert -1000 < stats["mean"] < 400 and stats["max"] == 400 and stats["min"] == -1000, stats
    assert stats["stdDev"] > 0
    screenshot(ct_page, "tools-freehand")


def test_angle_matches_the_drawn_geometry(ct_page: Page) -> None:
    use_tool(ct_page, "measure-angle")
    a, vertex, c = (100.0, 400.0), (250.0, 250.0), (400.0, 330.0)
    drag(ct_page, image_to_page(ct_page, *a), image_to_page(ct_page, *vertex))
    ct_page.mouse.move(*image_to_page(ct_page, *c), steps=6)
    ct_page.mouse.down()
    ct_page.mouse.up()
    angle = only(ct_page, "Angle", "angle")["stats"]["angle"]
    u = (a[0] - vertex[0], a[1] - vertex[1])
    v = (c[0] - vertex[0], c[1] - vertex[1])
    expected = math.degrees(math.acos((u[0] * v[0] + u[1] * v[1]) / (math.hypot(*u) * math.hypot(*v))))
    assert abs(angle - expected) < 1, (angle, expected)


def test_cobb_angle_matches_the_drawn_lines(ct_page: Page) -> None:
    use_tool(ct_page, "measure-cobb")
    lines = [(80.0, 120.0), (220.0, 160.0), (90.0, 380.0), (230.0, 300.0)]
    drag(ct_page, image_to_page(ct_page, *lines[0]), image_to_page(ct_page, *lines[1]))
    drag(ct_page, image_to_page(ct_page, *lines[2]), image_to_page(ct_page, *lines[3]))
    cobb = only(ct_page, "CobbAngle", "angle")["stats"]["angle"]
    expected = angle_between(*lines)
    assert abs(min(cobb, 180 - cobb) - expected) < 1, (cobb, expected)
    screenshot(ct_page, "tools-cobb")


def test_cardiothoracic_ratio_is_the_ratio_of_the_two_widths(ct_page: Page) -> None:
    use_tool(ct_page, "measure-ctr")
    heart = [(190.0, 300.0), (330.0, 300.0)]  # 140 px
    thorax = [(80.0, 340.0), (430.0, 340.0)]  # 350 px
    drag(ct_page, image_to_page(ct_page, *heart[0]), image_to_page(ct_page, *heart[1]))
    drag(ct_page, image_to_page(ct_page, *thorax[0]), image_to_page(ct_page, *thorax[1]))
    stats = only(ct_page, "CardiothoracicRatio", "ratio")["stats"]
    assert abs(stats["ratio"] - 140 / 350) < 0.01, stats
    assert abs(stats["thoracicWidth"] - 350 * SYNTHETIC_SPACING) < 0.01 * 350 * SYNTHETIC_SPACING, stats
    ct_page.wait_for_timeout(200)
    assert ct_page.locator(".yy-slot svg text", has_text="0.40").count() >= 1
    screenshot(ct_page, "tools-ctr")


def test_no_pixel_spacing_measures_in_px(viewer_site: ViewerSite, synthetic: SyntheticStudies) -> None:
    with viewer_site.page() as page:
        open_study(page, synthetic.no_spacing)
        wait_rendered(page)
        use_tool(page, "measure-length")
        a, b = (100.0, 100.0), (400.0, 100.0)
        drag(page, image_to_page(page, *a), image_to_page(page, *b))
        stats = only(page, "Length", "length")["stats"]
        assert stats["unit"] == "px", stats
        assert abs(stats["length"] - 300) < 3, stats
        assert page.locator(".yy-overlay [data-field=scale]").inner_text().endswith("px")
        assert page.locator(".yy-overlay [data-field=calibration]").count() == 1


def view_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        """() => { const v = window.yunyingViewer.ctx.stackViewport(); const p = v.getViewPresentation();
                   const props = v.getProperties();
                   return { rotation: p.rotation, flipH: !!p.flipHorizontal, flipV: !!p.flipVertical,
                            invert: !!props.invert, colormap: props.colormap?.name ?? null, voi: props.voiRange }; }""")
    return state


def test_rotate_flip_invert_colormap_change_picture_and_state(viewer_site: ViewerSite, synthetic: SyntheticStudies) -> None:
    with viewer_site.page() as page:
        open_study(page, synthetic.ct)
        wait_rendered(page)
        previous = canvas_stats(page)["hash"]
        steps: list[tuple[str, str, Any]] = [
            ("view-rotateRight", "rotation", 90), ("view-rotateLeft", "rotation", 0), ("view-rotateLeft", "rotation", 270),
            ("view-flipH", "flipH", True), ("view-flipV", "flipV", True), ("view-invert", "invert", True),
        ]
        for action, key, expected in steps:
            page.click(f"[data-action={action}]")
            page.wait_for_timeout(250)
            assert view_state(page)[key] == expected, (action, view_state(page))
            picture = canvas_stats(page)["hash"]
            assert picture != previous, f"{action} did not change the picture"
            previous = picture
        gray = canvas_stats(page)
        page.select_option("[data-action=colormap]", "jet")
        page.wait_for_timeout(250)
        assert view_state(page)["colormap"] == "jet"
        assert canvas_stats(page)["hash"] != gray["hash"]
        screenshot(page, "tools-rotated-flipped-inverted-jet")
        page.keyboard.press("Escape")  # reset
        page.wait_for_timeout(250)
        reset = view_state(page)
        assert reset["rotation"] == 0 and not reset["flipH"] and not reset["invert"], reset
        assert not page.errors  # type: ignore[attr-defined]


def test_presets_menu_and_number_keys_set_the_window(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        page.click("[data-action=view-presets]")
        page.click("[data-preset=lung]")
        page.wait_for_timeout(200)
        wl = window_level(page)
        assert (round(wl["windowWidth"]), round(wl["windowCenter"])) == (1500, -600), wl
        page.keyboard.press("4")  # bone
        page.wait_for_timeout(200)
        wl = window_level(page)
        assert (round(wl["windowWidth"]), round(wl["windowCenter"])) == (2000, 500), wl
        page.wait_for_function("() => document.querySelector('.yy-overlay [data-field=wl]').textContent === '窗宽 2000 窗位 500'",
                               timeout=5_000)
        screenshot(page, "tools-preset-bone")


def window_level(page: Page) -> dict[str, float]:
    result: dict[str, float] = page.evaluate(
        """() => { const yy = window.yunyingViewer; const r = yy.ctx.stackViewport().getProperties().voiRange;
                   return yy.cs.core.utilities.windowLevel.toWindowLevel(r.lower, r.upper); }""")
    return result


def test_cine_advances_and_stops(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        page.fill("[data-action=cine-fps]", "20")
        page.click("[data-action=view-cine]")
        page.wait_for_function("() => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex() >= 3", timeout=20_000)
        page.click("[data-action=view-cine]")
        page.wait_for_timeout(400)
        stopped = page.evaluate("() => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex()")
        page.wait_for_timeout(600)
        assert page.evaluate("() => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex()") == stopped


def test_magnifier_and_roi_window_tools(viewer_site: ViewerSite, synthetic: SyntheticStudies) -> None:
    with viewer_site.page() as page:
        open_study(page, synthetic.ct)
        wait_rendered(page)
        page.click("[data-action=view-roiWindow]")
        assert page.evaluate("() => window.yunyingViewer.ctx.primaryTool()") == "WindowLevelRegion"
        # a region over the HU 400 block and the background: the window spans their values
        drag(page, image_to_page(page, 250, 80), image_to_page(page, 380, 180))
        page.wait_for_timeout(300)
        voi = view_state(page)["voi"]
        # the window now ends at the region's brightest value (HU 400), no longer the image's 40/400 window
        assert abs(voi["upper"] - 400) <= 2 and (round(voi["lower"]), round(voi["upper"])) != (-160, 240), voi
        page.click("[data-action=view-magnify]")
        assert page.evaluate("() => window.yunyingViewer.ctx.primaryTool()") == "Magnify"
        centre = image_to_page(page, 350, 150)
        page.mouse.move(*centre)
        page.mouse.down()
        page.wait_for_timeout(400)
        assert page.locator(".yy-slot .magnifyTool").count() == 1
        screenshot(page, "tools-magnifier")
        page.mouse.up()


def test_shortcut_help_lists_toolbar_shortcuts(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        page.keyboard.press("Shift+?")
        dialog = page.locator("dialog.yy-help")
        dialog.wait_for(state="visible")
        rows = dialog.locator("tr[data-shortcut-row]")
        assert rows.count() >= 20
        assert dialog.locator("tr[data-shortcut-row='L']").inner_text().split("\t")[-1].strip() == "长度"
        assert dialog.locator("tr[data-shortcut-row='1–9']").count() == 1
        screenshot(page, "tools-shortcut-help")
        page.click("dialog.yy-help button[type=submit]")
        page.keyboard.press("l")
        assert page.evaluate("() => window.yunyingViewer.ctx.primaryTool()") == "Length"
