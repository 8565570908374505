"""Comparison of two studies (VW-7) and detach (VW-8): /viewer?study=A&compare=B shows them side by side,
scrolling is synchronised by patient position (not by index), "link at current position" keeps an offset,
W/L synchronises, the priors panel lists the patient's other study and opens the comparison, and a viewport
opens in a new window showing just its series at its image."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.viewer import ViewerSite, current_sop, derive_ct_study, open_study, screenshot, wait_rendered

PATIENT = "YY-CMP-1"


@pytest.fixture(scope="module")
def pair(viewer_site: ViewerSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("compare")
    # current: 30 contiguous 3 mm slices; prior: every other slice (6 mm apart) moved 1.4 mm, so the image
    # nearest in position is not the one with the same index
    current = derive_ct_study(root / "current", patient_id=PATIENT, slices=list(range(40, 70)),
                              study_date="20250301", description="CMP current")
    prior = derive_ct_study(root / "prior", patient_id=PATIENT, slices=list(range(40, 72, 2)), shift_mm=1.4,
                            study_date="20230301", description="CMP prior")
    viewer_site.load(root / "current", root / "prior")
    return {"current": current, "prior": prior}


def _index(page: Page, viewport_id: str) -> int:
    value: int = page.evaluate("(id) => window.yunyingViewer.ctx.engine.getViewport(id).getCurrentImageIdIndex()",
                               viewport_id)
    return value


def _assert_nearest(page: Page, pair: dict[str, Any], offset: float = 0.0) -> None:
    z_now = pair["current"]["z"][current_sop(page, "vp-0")]
    prior_z = pair["prior"]["z"]
    wanted = min(prior_z.values(), key=lambda z: abs(z - offset - z_now))
    page.wait_for_function(
        """([sop]) => window.yunyingViewer.ctx.engine.getViewport('vp-1').getCurrentImageId().includes(sop)""",
        arg=[next(s for s, z in prior_z.items() if z == wanted)], timeout=15_000)


def _scroll(page: Page, viewport_id: str, steps: int) -> None:
    box = page.locator(f"[data-viewport={viewport_id}]").bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(abs(steps)):
        page.mouse.wheel(0, 120 if steps > 0 else -120)
        page.wait_for_timeout(80)


def test_compare_url_scrolls_both_stacks_by_position(viewer_site: ViewerSite, pair: dict[str, Any]) -> None:
    with viewer_site.page(width=1920, height=1080) as page:
        open_study(page, pair["current"]["study"], f"&compare={pair['prior']['study']}")
        wait_rendered(page, "vp-0")
        wait_rendered(page, "vp-1")
        slots = page.evaluate("() => window.yunyingViewer.ctx.slots().map((s) => [s.id, s.study.uid])")
        assert slots == [["vp-0", pair["current"]["study"]], ["vp-1", pair["prior"]["study"]]]
        assert page.locator("[data-action=compare-sync-scroll]").get_attribute("class").count("yy-pressed") == 1
        page.evaluate("() => window.yunyingViewer.ctx.engine.getViewport('vp-0').setImageIdIndex(20)")
        page.wait_for_function("() => window.yunyingViewer.ctx.engine.getViewport('vp-0').getCurrentImageIdIndex() === 20")
        _assert_nearest(page, pair)
        assert _index(page, "vp-1") != 20  # by position, not by index
        _scroll(page, "vp-0", -7)
        page.wait_for_function("() => window.yunyingViewer.ctx.engine.getViewport('vp-0').getCurrentImageIdIndex() === 13")
        _assert_nearest(page, pair)
        assert _index(page, "vp-1") != 13
        screenshot(page, "compare-synced")

        # link at current position: the prior moved 3 of its images on its own, then both scroll together
        page.click("[data-action=compare-sync-scroll]")
        before = _index(page, "vp-1")
        page.evaluate("(i) => window.yunyingViewer.ctx.engine.getViewport('vp-1').setImageIdIndex(i)", before + 3)
        page.wait_for_function("(i) => window.yunyingViewer.ctx.engine.getViewport('vp-1').getCurrentImageIdIndex() === i",
                               arg=before + 3)
        assert _index(page, "vp-0") == 13  # sync off: the current study stayed
        page.click("[data-action=compare-link]")
        offset = pair["prior"]["z"][current_sop(page, "vp-1")] - pair["current"]["z"][current_sop(page, "vp-0")]
        assert abs(offset) > 10
        _scroll(page, "vp-0", 4)
        page.wait_for_function("() => window.yunyingViewer.ctx.engine.getViewport('vp-0').getCurrentImageIdIndex() === 17")
        _assert_nearest(page, pair, offset)

        # window/level synchronised on request
        page.click("[data-action=compare-sync-voi]")
        page.evaluate("""() => { const v = window.yunyingViewer.ctx.engine.getViewport('vp-0');
                                 v.setProperties({ voiRange: { lower: -160, upper: 240 } }); v.render(); }""")
        page.wait_for_function("""() => { const r = window.yunyingViewer.ctx.engine.getViewport('vp-1').getProperties().voiRange;
                                          return Math.abs(r.lower + 160) < 1 && Math.abs(r.upper - 240) < 1; }""")
        # zoom synchronised on request
        page.click("[data-action=compare-sync-zoom]")
        page.evaluate("() => { const v = window.yunyingViewer.ctx.engine.getViewport('vp-0'); v.setZoom(2.5); v.render(); }")
        page.wait_for_function("""() => { const e = window.yunyingViewer.ctx.engine;
            return Math.abs(e.getViewport('vp-1').getZoom() / e.getViewport('vp-0').getZoom() - 1) < 0.02
                   && e.getViewport('vp-0').getZoom() > 2; }""")
        # the layout holds at 1920x1080: no page scrolling, both viewports side by side
        sizes = page.evaluate("""() => ({ doc: document.documentElement.scrollHeight, win: innerHeight,
            a: document.querySelector('[data-viewport=vp-0]').getBoundingClientRect().toJSON(),
            b: document.querySelector('[data-viewport=vp-1]').getBoundingClientRect().toJSON() })""")
        assert sizes["doc"] <= sizes["win"]
        assert sizes["a"]["x"] < sizes["b"]["x"] and sizes["b"]["width"] > 500
        assert not page.errors  # type: ignore[attr-defined]


def test_priors_panel_opens_the_comparison(viewer_site: ViewerSite, pair: dict[str, Any]) -> None:
    with viewer_site.page() as page:
        open_study(page, pair["current"]["study"])
        wait_rendered(page)
        page.click("[data-action=compare-priors]")
        button = page.locator(f"[data-panel=compare-priors] button[data-study='{pair['prior']['study']}']")
        button.wait_for()
        assert page.locator("[data-panel=compare-priors] .yy-prior").count() == 1  # only the other study
        assert "2023-03-01" in page.locator("[data-panel=compare-priors] .yy-prior").inner_text()
        button.click()
        page.wait_for_function("() => window.yunyingViewer.ctx.slots().length === 2")
        wait_rendered(page, "vp-1")
        assert page.evaluate("() => window.yunyingViewer.ctx.slots()[1].study.uid") == pair["prior"]["study"]


def test_detach_opens_the_series_in_a_new_window(viewer_site: ViewerSite, pair: dict[str, Any]) -> None:
    with viewer_site.page() as page:
        open_study(page, pair["current"]["study"])
        wait_rendered(page)
        page.evaluate("() => window.yunyingViewer.ctx.stackViewport().setImageIdIndex(9)")
        page.wait_for_function("() => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex() === 9")
        with page.expect_popup() as popup_info:
            page.click("[data-action=compare-detach]")
        popup = popup_info.value
        assert f"series={pair['current']['series']}" in popup.url and "image=10" in popup.url
        popup.wait_for_function("() => document.body.dataset.viewerReady === 'true'", timeout=60_000)
        wait_rendered(popup)
        assert popup.evaluate("() => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex()") == 9
        assert current_sop(popup, "vp-0") == current_sop(page, "vp-0")
