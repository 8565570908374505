"""The viewer opens a CT study from the shared data: canvas not blank, W/L drag changes pixels, scrolling moves
the stack, the study list finds the study, every string of the first screen comes from the i18n layer."""

from __future__ import annotations

from tests.support.viewer import ViewerSite, canvas_stats, open_study, screenshot, wait_rendered


def test_ct_opens_and_window_level_changes_pixels(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        before = canvas_stats(page)
        assert before["sd"] > 5, before  # an image, not a blank canvas
        screenshot(page, "ct-opened")
        box = page.locator(".yy-slot.yy-active .yy-viewport").bounding_box()
        assert box
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2 + 80, steps=8)
        page.mouse.up()
        page.wait_for_timeout(300)
        after = canvas_stats(page)
        assert after["hash"] != before["hash"], "window/level drag did not change the picture"
        voi = page.evaluate("window.yunyingViewer.ctx.stackViewport().getProperties().voiRange")
        assert voi["upper"] - voi["lower"] > 0
        screenshot(page, "ct-window-level")
        assert not page.errors  # type: ignore[attr-defined]


def test_wheel_scrolls_the_stack(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        box = page.locator(".yy-slot.yy-active .yy-viewport").bounding_box()
        assert box
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(5):
            page.mouse.wheel(0, 120)
            page.wait_for_timeout(60)
        page.wait_for_function("() => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex() >= 3")


def test_study_list_finds_the_study_and_opens_it(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        page.goto("/viewer")
        page.wait_for_function("() => document.body.dataset.listReady === 'true'")
        assert page.locator(f"tr[data-study='{ct_study}']").count() == 1
        assert page.locator("button[type=submit]").inner_text() == "查询"  # Chinese by default
        page.click("[data-action=language]")
        assert page.locator("button[type=submit]").inner_text() == "Search"
        page.click(f"tr[data-study='{ct_study}'] a.yy-open")
        page.wait_for_function("() => document.body.dataset.viewerReady === 'true'", timeout=60_000)
        wait_rendered(page)
