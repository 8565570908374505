"""The phone viewer (/m/viewer) in headless Chromium as a phone: a 390×844 touch screen at 3× pixel density,
signed in through the sign-in form, and real multi-touch through CDP ``Input.dispatchTouchEvent`` (Playwright's
``page.touchscreen`` only taps). Coordinates are CSS pixels of the page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from playwright.sync_api import Browser, CDPSession, Page

from tests.support.viewer import PASSWORD

PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True,
                         "device_scale_factor": 3}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "mobile"


@contextmanager
def phone_page(browser: Browser, base_url: str, username: str, target: str) -> Iterator[Page]:
    """A phone profile signed in as ``username`` that lands on ``target`` (e.g. ``/m/viewer?study=…``)."""
    context = browser.new_context(base_url=base_url, **PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"/ui/login?next={quote(target, safe='')}")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/m/viewer*")
        page.errors = errors  # type: ignore[attr-defined]
        yield page
    finally:
        context.close()


def wait_ready(page: Page, timeout: float = 90_000) -> None:
    page.wait_for_function("() => document.body.dataset.viewerReady === 'true'", timeout=timeout)


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


class Touch:
    """Fingers on the screen through the DevTools protocol (pointer and touch events as from a real screen)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.cdp: CDPSession = page.context.new_cdp_session(page)

    def _send(self, kind: str, points: list[tuple[float, float]]) -> None:
        self.cdp.send("Input.dispatchTouchEvent", {
            "type": kind, "touchPoints": [{"x": x, "y": y, "id": i, "radiusX": 4, "radiusY": 4, "force": 1}
                                          for i, (x, y) in enumerate(points)]})

    def gesture(self, start: list[tuple[float, float]], end: list[tuple[float, float]], steps: int = 12) -> None:
        """Fingers down at ``start``, moved in ``steps`` straight steps to ``end``, lifted."""
        self._send("touchStart", start)
        for k in range(1, steps + 1):
            f = k / steps
            self._send("touchMove", [(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
                                     for a, b in zip(start, end, strict=True)])
        self.cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        self.page.wait_for_timeout(100)

    def swipe(self, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
        self.gesture([start], [end], steps)

    def pinch(self, center: tuple[float, float], from_gap: float, to_gap: float, steps: int = 12) -> None:
        cx, cy = center
        self.gesture([(cx - from_gap / 2, cy), (cx + from_gap / 2, cy)], [(cx - to_gap / 2, cy), (cx + to_gap / 2, cy)], steps)

    def tap(self, x: float, y: float) -> None:
        self._send("touchStart", [(x, y)])
        self.cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

    def double_tap(self, x: float, y: float) -> None:
        self.tap(x, y)
        self.page.wait_for_timeout(60)
        self.tap(x, y)
        self.page.wait_for_timeout(150)


def stage_center(page: Page) -> tuple[float, float]:
    box = page.locator(".m-slot").first.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
