"""The phone viewer on a throttled phone connection (WEB-4: first JPEG ≤ 3 s, first DICOM image ≤ 5 s).

    .venv/bin/python -m bench.mobile [--runs N] [--out DIR]

One ``yunying serve`` (SQLite, temporary data folder, this checkout's viewer build) with the shared TCIA CT
(134 slices, 512×512, 67 MB). Headless Chromium as a phone (390×844, 3× pixels, touch; WebGL2 through
SwiftShader), a fresh profile per run (nothing cached), signed in first, then throttled through CDP
``Network.emulateNetworkConditions`` to 20 Mbit/s down and up with 60 ms latency, and:

- ``/m/viewer?study=…``: from the navigation to the first DICOM image drawn by Cornerstone (the page's own
  clock: ``performance.now()`` at the first IMAGE_RENDERED, i.e. since the navigation started);
- ``/m/viewer?study=…&render=server``: the same page without WebGL, to the first server-rendered JPEG shown
  (its ``load`` event).

Prints a Markdown table and writes it to bench/results/mobile-<timestamp>.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from bench.servers import machine_info
from tests.support.mobile import PHONE
from tests.support.server import ServerProcess
from tests.support.viewer import CHROMIUM, CT_DIR, FLAGS, PASSWORD, study_uid_of

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
USER = "bench-mobile"
MBIT_20 = 20e6 / 8  # bytes/s
RTT_MS = 60
TARGETS = {"webgl": 5000, "server": 3000}  # ms, WEB-4


def first_image_ms(browser: Browser, base_url: str, path: str) -> float:
    """One cold run: fresh profile, sign in, throttle, open ``path``, ms until the page reports its first image."""
    context = browser.new_context(base_url=base_url, **PHONE)
    try:
        page = context.new_page()
        page.goto("/ui/login?next=/ui/")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/ui/**")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": RTT_MS,
                                                      "downloadThroughput": MBIT_20, "uploadThroughput": MBIT_20})
        page.goto(path, wait_until="commit")
        page.wait_for_function("() => window.yunyingViewer?.mobile?.firstImageMs?.() != null", timeout=120_000,
                               polling=50)
        value: float = page.evaluate("() => window.yunyingViewer.mobile.firstImageMs()")
        return value
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.mobile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="yy-bench-mobile-"))
    server = ServerProcess(data, f"sqlite:///{data / 'index.sqlite3'}", open_dicom=False,
                           env={"YUNYING_LOG_LEVEL": "WARNING", "YUNYING_VIEWER_DIST": str(REPO / "viewer" / "dist"),
                                "YUNYING_LOGIN_RATE_PER_MINUTE": "10000"})
    started = time.monotonic()
    server.start(timeout=180)
    try:
        assert server.cli("load", str(CT_DIR)).returncode == 0
        made = server.cli("user", "create", USER, "--roles", "radiologist", "--institution", "default", "--password", PASSWORD)
        assert made.returncode == 0, made.stderr
        study = study_uid_of(CT_DIR)
        results: dict[str, list[float]] = {"webgl": [], "server": []}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                for _ in range(args.runs):  # alternating, so that other load on the machine hits both alike
                    results["webgl"].append(first_image_ms(browser, server.url, f"/m/viewer?study={study}"))
                    results["server"].append(first_image_ms(browser, server.url, f"/m/viewer?study={study}&render=server"))
            finally:
                browser.close()
    finally:
        server.stop()
    info = machine_info()
    lines = [f"# Phone viewer, 20 Mbit/s · {RTT_MS} ms RTT ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"Machine: {info.get('cpu', '?')}, {info.get('nproc', '?')} CPUs · runs: {args.runs} · "
             f"{time.monotonic() - started:.0f} s", "",
             "| Measurement (TCIA CT, 134 × 512×512) | median | worst | target | met |", "|---|---|---|---|---|"]
    labels = {"webgl": "open /m/viewer → first DICOM image drawn (Cornerstone3D, WebGL)",
              "server": "open /m/viewer?render=server → first server-rendered JPEG shown"}
    for key, values in results.items():
        worst = max(values)
        lines.append(f"| {labels[key]} | {statistics.median(values) / 1000:.2f} s | {worst / 1000:.2f} s | "
                     f"≤ {TARGETS[key] / 1000:g} s | {'yes' if worst <= TARGETS[key] else 'no'} |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"mobile-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
