"""Progressive loading (WEB-3): the 134-slice CT shows its first image before the series is loaded, the rest is
fetched in the background until every image is cached, and the stack scrolls while loading is still going on
(the network is throttled through CDP so that loading lasts long enough to scroll during it)."""

from __future__ import annotations

from typing import Any

from tests.support.viewer import ViewerSite, open_study, screenshot, wait_rendered

PROGRESS = "() => window.yunyingViewer.prefetch"


def _throttle(page: Any, mbit: float) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    rate = mbit * 1e6 / 8 if mbit else -1
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": rate,
                                                  "uploadThroughput": rate})


def test_first_image_before_the_series_then_all_cached(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        first = page.evaluate(PROGRESS)
        assert first["total"] == 134, first
        assert first["loadedAtFirstImage"] < first["total"], first  # shown before the series was there
        assert first["firstImageMs"] > 0
        page.wait_for_function("() => { const p = window.yunyingViewer.prefetch; return p.loaded === p.total; }",
                               timeout=60_000)
        done = page.evaluate(PROGRESS)
        assert done["failed"] == 0 and done["allLoadedMs"] >= done["firstImageMs"], done
        # every image is in Cornerstone's cache: the whole stack is scrollable without the network
        cached = page.evaluate("""() => { const v = window.yunyingViewer.ctx.stackViewport();
            const cache = window.yunyingViewer.cs.core.cache;
            return v.getImageIds().filter((id) => cache.isLoaded(id)).length; }""")
        assert cached == 134
        assert page.locator(".yy-prefetch").is_hidden()  # the indicator goes away when done
        assert not page.errors  # type: ignore[attr-defined]


def test_scrolling_works_while_the_series_loads(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        _throttle(page, 40)  # ~70 MB of CT at 40 Mbit/s: loading takes > 10 s
        open_study(page, ct_study)
        wait_rendered(page)
        indicator = page.locator(".yy-prefetch")
        assert indicator.is_visible()
        assert "加载图像" in indicator.inner_text()  # Chinese by default, from the i18n catalogue
        box = page.locator(".yy-slot.yy-active .yy-viewport").bounding_box()
        assert box
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(6):
            page.mouse.wheel(0, 120)
            page.wait_for_timeout(80)
        page.wait_for_function("() => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex() >= 3",
                               timeout=20_000)
        during = page.evaluate(PROGRESS)
        assert during["loaded"] < during["total"], during  # scrolled while loading was still in progress
        assert during["direction"] == 1
        screenshot(page, "prefetch-scrolling-while-loading")
        _throttle(page, 0)
        page.wait_for_function("() => { const p = window.yunyingViewer.prefetch; return p.loaded === p.total; }",
                               timeout=60_000)
        assert not page.errors  # type: ignore[attr-defined]
