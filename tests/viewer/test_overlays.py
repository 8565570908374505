"""Viewport overlays and the DICOM header panel in a real browser: corner text from the instance metadata
(image n/total follows scrolling, W/L follows a drag), orientation letters of an axial CT and after a flip,
the scale bar from the pixel spacing, the imager-spacing note, and the header panel with its filter."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from tests.support.viewer import (
    SyntheticStudies,
    ViewerSite,
    image_to_page,
    load_synthetic,
    open_study,
    screenshot,
    wait_rendered,
)


@pytest.fixture(scope="module")
def synthetic(viewer_site: ViewerSite) -> SyntheticStudies:
    return load_synthetic(viewer_site)


def field(page: Page, name: str) -> str:
    return page.locator(f".yy-slot.yy-active .yy-overlay [data-field={name}]").inner_text()


def edge(page: Page, name: str) -> str:
    return page.locator(f".yy-slot.yy-active .yy-overlay [data-edge={name}]").inner_text()


def test_corners_follow_image_and_window(viewer_site: ViewerSite, synthetic: SyntheticStudies) -> None:
    with viewer_site.page() as page:
        open_study(page, synthetic.ct, "&lang=en")
        wait_rendered(page)
        page.wait_for_selector(".yy-overlay [data-field=image]")
        assert field(page, "patient-name") == "张 三 / Zhang San"
        assert field(page, "patient-id") == "SYN-0001"
        assert field(page, "sex-age") == "M 045Y"
        assert field(page, "hospital") == "Synthetic Hospital"
        assert field(page, "image") == "Im 1/5"
        assert field(page, "wl") == "W 400 L 40"
        assert field(page, "thickness") == "Thick 2.5 mm"
        box = page.locator(".yy-slot.yy-active .yy-viewport").bounding_box()
        assert box
        centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.move(*centre)
        for _ in range(2):
            page.mouse.wheel(0, 120)
            page.wait_for_timeout(150)
        page.wait_for_function("() => document.querySelector('.yy-overlay [data-field=image]').textContent === 'Im 3/5'")
        instance = page.evaluate("() => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex()")
        assert field(page, "instance") == f"Instance {instance + 1}"  # instance numbers 1…5 in slice order
        # W/L drag: the overlay shows the viewport's new window
        page.mouse.move(*centre)
        page.mouse.down()
        page.mouse.move(centre[0] + 100, centre[1] + 60, steps=6)
        page.mouse.up()
        page.wait_for_timeout(300)
        wl = page.evaluate(
            """() => { const yy = window.yunyingViewer; const r = yy.ctx.stackViewport().getProperties().voiRange;
                       return yy.cs.core.utilities.windowLevel.toWindowLevel(r.lower, r.upper); }""")
        assert (round(wl["windowWidth"]), round(wl["windowCenter"])) != (400, 40)
        assert field(page, "wl") == f"W {round(wl['windowWidth'])} L {round(wl['windowCenter'])}"
        screenshot(page, "overlays-corners")
        assert not page.errors  # type: ignore[attr-defined]


def test_orientation_letters_and_scale_bar(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        page.wait_for_selector(".yy-overlay [data-edge=left]")
        assert (edge(page, "left"), edge(page, "right"), edge(page, "top"), edge(page, "bottom")) == ("R", "L", "A", "P")
        page.click("[data-action=view-flipH]")
        page.wait_for_timeout(300)
        assert (edge(page, "left"), edge(page, "right")) == ("L", "R")
        page.click("[data-action=view-rotateRight]")
        page.wait_for_timeout(300)
        # after a horizontal flip and a right turn, anterior comes to the left edge... whatever the order, the
        # letters must stay a consistent pair of opposites on each axis
        pairs = {(edge(page, "left"), edge(page, "right")), (edge(page, "top"), edge(page, "bottom"))}
        assert pairs <= {("A", "P"), ("P", "A"), ("R", "L"), ("L", "R")} and len({p[0] for p in pairs}) == 2, pairs
        assert edge(page, "left") in ("A", "P")
        # scale bar: its drawn width is its length divided by the displayed millimetres per pixel
        label = page.locator(".yy-overlay [data-field=scale]").inner_text()
        match = re.fullmatch(r"([\d.]+) (mm|cm)", label)
        assert match, label
        length_mm = float(match.group(1)) * (10 if match.group(2) == "cm" else 1)
        width = page.locator(".yy-overlay [data-field=scale]").bounding_box()
        assert width
        a = image_to_page(page, 0, 0)
        b = image_to_page(page, 100, 0)
        spacing = page.evaluate(
            "() => window.yunyingViewer.cs.core.metaData.get('imagePlaneModule', "
            "window.yunyingViewer.ctx.stackViewport().getCurrentImageId()).columnPixelSpacing")
        mm_per_page_px = 100 * spacing / ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5
        assert abs(width["width"] * mm_per_page_px - length_mm) / length_mm < 0.05, (width, mm_per_page_px, label)
        screenshot(page, "overlays-orientation-flipped-rotated")


def test_imager_pixel_spacing_note(viewer_site: ViewerSite, synthetic: SyntheticStudies) -> None:
    with viewer_site.page() as page:
        open_study(page, synthetic.imager_only, "&lang=en")
        wait_rendered(page)
        page.wait_for_selector(".yy-overlay [data-field=calibration]")
        assert "Imager Pixel Spacing" in field(page, "calibration")
        screenshot(page, "overlays-imager-spacing-note")


def test_header_panel_lists_and_filters_attributes(viewer_site: ViewerSite, synthetic: SyntheticStudies) -> None:
    with viewer_site.page() as page:
        open_study(page, synthetic.ct, "&lang=en")
        wait_rendered(page)
        page.click("[data-action=view-header]")
        panel = page.locator("[data-panel=dicom-header]")
        row = panel.locator("tr[data-tag='(0010,0020)']")
        row.wait_for()
        assert row.locator("td").nth(1).inner_text() == "PatientID"
        assert row.locator("td").nth(2).inner_text() == "LO"
        assert row.locator("td").nth(3).inner_text() == "SYN-0001"
        assert panel.locator("tr[data-tag='(0028,0030)'] td").nth(3).inner_text() == "0.7\\0.7"
        page.fill("[data-action=header-filter]", "rescale")
        visible = panel.locator("tbody tr:not([hidden])")
        tags = {visible.nth(i).get_attribute("data-tag") for i in range(visible.count())}
        assert tags == {"(0028,1052)", "(0028,1053)", "(0028,1054)"}, tags
        page.fill("[data-action=header-filter]", "")
        # the panel follows the shown image
        page.locator(".yy-slot.yy-active .yy-viewport").hover()
        page.mouse.wheel(0, 120)
        page.wait_for_function(
            """() => document.querySelector("[data-panel=dicom-header] tr[data-tag='(0020,0013)'] td:last-child")
                       ?.textContent === '2'""")
        screenshot(page, "overlays-header-panel")
        page.click("[data-action=view-header]")
        assert panel.is_hidden()
