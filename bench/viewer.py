"""The web viewer in headless Chromium (WEB-4), with Orthanc's DICOMweb as the yardstick for the transfer.

    .venv/bin/python -m bench.viewer [--runs N] [--out DIR] [--cache-dir DIR]

One ``yunying serve`` (SQLite, temporary data folder) and one Orthanc (/work/shared/peers/orthanc.sh) get the
same bytes by STOW-RS: a synthetic 300-slice CT (512×512, 16 bit), a 500-image MR (256×256, 16 bit: the real GE
MR slices of /work/shared/dicom/mr_brain_ge_pioneer_study cycled, with new UIDs and positions) and a
150-slice CT volume for volume rendering. Then, in headless Chromium (WebGL2 through SwiftShader):

- our viewer opens each series (fresh browser profile per run, signed in first): time to the first image and
  until every image of the series is decoded and cached, i.e. scrollable without the network, read from the
  viewer's progressive-loading state (window.yunyingViewer.prefetch); unthrottled (loopback) and with CDP
  ``Network.emulateNetworkConditions`` at 100 Mbit/s.
- the transfer compared with Orthanc: Orthanc sends no CORS headers, so the viewer cannot be pointed at it. The
  same Chromium (a second instance with --disable-web-security, used for nothing else) fetches every frame of the
  series with WADO-RS ``…/instances/<uid>/frames/1`` from both servers in the same way: 6 requests in flight
  (the browser's per-host connection limit, what the viewer gets too), ``Accept: multipart/related;
  type="application/octet-stream"; transfer-syntax=*`` (what the DICOM image loader asks for), same throttling.
  Ratios are computed within the run; Yunying and Orthanc alternate who goes first.
- volume rendering: time from the request to the first rendered frame of a VOLUME_3D viewport (CT-Bone preset)
  on the 150-slice volume, and until the frame with the whole volume loaded; measured in the viewer page via the
  Cornerstone modules it exposes (window.yunyingViewer.cs), right after the study opened (its stack prefetch
  still running, as when a user clicks 3D at once).

Prints a Markdown table and writes it to bench/results/viewer-<timestamp>.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Browser, Page, sync_playwright
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian

from bench.data import Series, _series_of, fresh_copy, synthetic_ct, uid
from bench.servers import Target, machine_info, orthanc
from bench.stow import stow
from tests.support.server import ServerProcess
from tests.support.viewer import CHROMIUM, FLAGS, PASSWORD, sign_in

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "yunying-bench"
REPO = Path(__file__).resolve().parent.parent
GE_MR = Path("/work/shared/dicom/mr_brain_ge_pioneer_study/05_3D_Ax_T1_MP_RAGE_R22")
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
MBIT_100 = 100e6 / 8  # bytes/s
IN_FLIGHT = 6
USER = "bench-viewer"


# ------------------------------------------------------------------------------------------------ data


def synthetic_mr(cache_dir: Path, images: int) -> Series:
    """``images`` MR slices (256×256, 16 bit, uncompressed): the real GE T1 slices cycled, new UIDs, positions
    stepping along the slice normal, so the viewer sorts and shows them as one 500-image series."""
    folder = cache_dir / f"mr_ge_{images}_v2"
    done = folder / ".complete"
    if not done.exists():
        print(f"  generating a {images}-image MR series in {folder} (once) …", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        sources = sorted(p for p in GE_MR.iterdir() if p.is_file())
        first = dcmread(sources[0])
        row, col = np.array(first.ImageOrientationPatient[:3], float), np.array(first.ImageOrientationPatient[3:], float)
        normal = np.cross(row, col)
        origin = np.array(first.ImagePositionPatient, float)
        study, series = uid("mr", images, "study"), uid("mr", images, "series")
        for i in range(images):
            ds = dcmread(sources[i % len(sources)])
            # GE private tags out: Yunying's WADO-RS metadata answers 500 on GE's 0043,1080 (pydicom to_json
            # fails on it; reported, not fixed here) — the benchmark is about pixels, not private tags
            ds.remove_private_tags()
            sop = uid("mr", images, "sop", i)
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
            ds.file_meta.MediaStorageSOPInstanceUID = sop
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.ImageOrientationPatient = first.ImageOrientationPatient
            ds.ImagePositionPatient = [round(float(v), 4) for v in origin + normal * 1.2 * i]
            ds.SliceLocation = round(float(np.dot(origin + normal * 1.2 * i, normal)), 4)
            ds.InstanceNumber = i + 1
            ds.SeriesNumber = 5
            ds.SeriesDescription = f"BENCH MR {images}"
            ds.PatientID, ds.PatientName = "BENCH-MR", "BENCH^MR"
            ds.save_as(folder / f"{i:04d}.dcm", enforce_file_format=True)
        done.write_text("ok\n")
    return _series_of(f"mr{images}", sorted(folder.glob("*.dcm")))


@dataclass
class Data:
    ct: Series
    mr: Series
    volume: Series

    def all(self) -> list[Series]:
        return [self.ct, self.mr, self.volume]


def prepare(cache: Path, ct_slices: int, mr_images: int, volume_slices: int) -> Data:
    ct = _series_of(f"ct{ct_slices}", sorted(synthetic_ct(cache, ct_slices).glob("*.dcm")))
    volume_src = sorted(synthetic_ct(cache, volume_slices).glob("*.dcm"))
    volume = fresh_copy(volume_src, cache, f"viewer-volume{volume_slices}")  # own UIDs: not the CT's study
    return Data(ct, synthetic_mr(cache, mr_images), volume)


# --------------------------------------------------------------------------------------------- servers


@contextmanager
def yunying_server(data: Path, compression: str = "none") -> Iterator[tuple[ServerProcess, Target]]:
    """``yunying serve`` on a new SQLite archive, serving this checkout's built viewer; a radiologist account.
    ``compression``: lossless compression at rest (``jpeg-ls``: frames then travel compressed, as stored)."""
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    server = ServerProcess(data, f"sqlite:///{data / 'index.sqlite3'}", open_dicom=False,
                           env={"YUNYING_LOG_LEVEL": "WARNING", "YUNYING_VIEWER_DIST": str(REPO / "viewer" / "dist"),
                                "YUNYING_LOGIN_RATE_PER_MINUTE": "10000", "YUNYING_COMPRESSION_AT_REST": compression})
    try:
        server.start(timeout=180)
        assert server.proc is not None
        made = server.cli("user", "create", USER, "--roles", "radiologist", "--institution", "default",
                          "--password", PASSWORD)
        assert made.returncode == 0, made.stderr
        user, password = server.auth
        target = Target("Yunying", "sqlite", server.url, server.dicomweb, server.dicom_port, server.ae_title,
                        headers={"Authorization": "Basic " + _b64(f"{user}:{password}")}, data_dir=data,
                        pid=server.proc.pid)
        yield server, target
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def instance_uids(target: Target, series: Series) -> list[str]:
    with target.client() as c:
        r = c.get(f"{target.dicomweb}/studies/{series.study_uid}/series/{series.series_uid}/instances",
                  params={"includefield": "00200013"})
        r.raise_for_status()
        items = r.json()
    items.sort(key=lambda m: int(m.get("00200013", {}).get("Value", [0])[0]))
    return [m["00080018"]["Value"][0] for m in items]


# --------------------------------------------------------------------------------------------- browser


_CDP: dict[int, Any] = {}


def close(page: Page) -> None:
    """Lift the throttling and detach the CDP session before the context closes (closing a throttled context
    with its session attached hung Chromium twice here)."""
    cdp = _CDP.pop(id(page), None)
    if cdp is not None:
        try:
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                          "uploadThroughput": -1})
            cdp.detach()
        except Exception:  # best effort, the context goes anyway
            pass
    page.context.close()


def throttle(page: Page, rate: float | None) -> None:
    """CDP network emulation on this page: ``rate`` bytes/s both ways, None for no limit."""
    cdp = _CDP.get(id(page))
    if cdp is None:
        cdp = _CDP[id(page)] = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
    value = rate if rate else -1
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": value,
                                                  "uploadThroughput": value})


def view_series(browser: Browser, server: ServerProcess, series: Series, rate: float | None) -> dict[str, Any]:
    """Open the series' study in our viewer (fresh profile), until every image is decoded and cached."""
    context = browser.new_context(viewport={"width": 1600, "height": 900}, base_url=server.url)
    page = context.new_page()
    try:
        sign_in(page, USER)
        throttle(page, rate)
        page.goto(f"/viewer?study={series.study_uid}")
        page.wait_for_function(
            "() => { const p = window.yunyingViewer?.prefetch; return !!p && p.loaded + p.failed >= p.total; }",
            timeout=300_000, polling=100)
        progress: dict[str, Any] = page.evaluate("() => ({ ...window.yunyingViewer.prefetch })")
        return progress
    finally:
        close(page)


FETCH_ALL = """async ({ urls, headers, inFlight }) => {
  const t0 = performance.now(); let next = 0, bytes = 0, failed = 0, first = null;
  async function worker() {
    while (next < urls.length) {
      const url = urls[next++];
      try {
        const response = await fetch(url, { headers, cache: 'no-store', signal: AbortSignal.timeout(60000) });
        const body = await response.arrayBuffer();
        if (!response.ok) failed++;
        bytes += body.byteLength;
        if (first === null) first = performance.now() - t0;
      } catch (error) {
        failed++;
      }
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { ms: performance.now() - t0, firstMs: first, bytes, failed };
}"""


def fetch_frames(page: Page, target: Target, series: Series, sops: list[str], rate: float | None) -> dict[str, Any]:
    """Every frame of the series by WADO-RS from ``target``, fetched by the page exactly as for the other server.
    One page serves all these fetches (closing throttled contexts of this browser could hang); 'no-store' keeps
    the browser's cache out of it."""
    throttle(page, rate)
    base = f"{target.dicomweb}/studies/{series.study_uid}/series/{series.series_uid}/instances"
    urls = [f"{base}/{sop}/frames/1" for sop in sops]
    result: dict[str, Any] = page.evaluate(FETCH_ALL, {"urls": urls, "inFlight": IN_FLIGHT,
                                                       "headers": {"Accept": FRAME_ACCEPT, **target.headers}})
    return result


VOLUME_RENDER = """async () => {
  const { ctx, cs } = window.yunyingViewer; const core = cs.core;
  const series = ctx.study.series.find((s) => !s.nonImage);
  const t0 = performance.now();
  const element = document.createElement('div');
  element.style.position = 'fixed'; element.style.left = '0'; element.style.top = '0';
  element.style.width = '512px'; element.style.height = '512px'; element.style.zIndex = '100';
  document.body.append(element);
  const rendered = [];
  element.addEventListener(core.EVENTS.IMAGE_RENDERED, () => rendered.push(performance.now() - t0));
  ctx.engine.enableElement({ viewportId: 'bench-vr', type: core.Enums.ViewportType.VOLUME_3D, element,
                             defaultOptions: { background: [0, 0, 0] } });
  const volumeId = 'cornerstoneStreamingImageVolume:bench-vr';
  const volume = await core.volumeLoader.createAndCacheVolume(volumeId, { imageIds: series.imageIds });
  const loaded = new Promise((resolve) => volume.load(() => resolve(performance.now() - t0)));
  await core.setVolumesForViewports(ctx.engine, [{ volumeId }], ['bench-vr']);
  const viewport = ctx.engine.getViewport('bench-vr');
  viewport.setProperties({ preset: 'CT-Bone' });
  viewport.render();
  const loadedMs = await loaded;
  const before = rendered.length;
  viewport.render();
  const deadline = performance.now() + 90000;
  while (rendered.length === before && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const canvas = viewport.getCanvas(); const copy = document.createElement('canvas');
  copy.width = canvas.width; copy.height = canvas.height; const g = copy.getContext('2d'); g.drawImage(canvas, 0, 0);
  const d = g.getImageData(0, 0, copy.width, copy.height).data; let lit = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 30) lit++;
  return { firstFrameMs: rendered[0] ?? null, loadedMs, fullFrameMs: rendered[before] ?? null,
           slices: series.imageIds.length, litFraction: lit / (d.length / 4) };
}"""


def volume_render(browser: Browser, server: ServerProcess, series: Series, rate: float | None) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 900}, base_url=server.url)
    page = context.new_page()
    try:
        sign_in(page, USER)
        throttle(page, rate)
        page.goto(f"/viewer?study={series.study_uid}")
        page.wait_for_function("() => !!window.yunyingViewer?.prefetch", timeout=120_000, polling=50)
        # the prefetch state appears while the features install; the Cornerstone modules once the viewer is ready
        page.wait_for_function("() => !!window.yunyingViewer?.cs", timeout=120_000, polling=50)
        result: dict[str, Any] = page.evaluate(VOLUME_RENDER)
        return result
    finally:
        close(page)


# ---------------------------------------------------------------------------------------------- report


@dataclass
class Line:
    label: str
    yunying: str
    orthanc: str = "—"
    ratio: str = "—"
    target: str = "—"


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def link_name(rate: float | None) -> str:
    return "100 Mbit/s" if rate else "loopback"


def measure(args: argparse.Namespace, data: Data, report: Report, work: Path) -> None:
    with yunying_server(work / "yunying", args.compression) as (server, y), orthanc(work / "orthanc", "sqlite") as o:
        for t in (y, o):
            for series in data.all():
                result = stow(t, series.read_all(), 50, 4)
                if result.failed:
                    report.notes.append(f"{t.product}: {result.failed} of {series.name} failed to store")
        sops = {s.name: instance_uids(y, s) for s in data.all()}
        for s in data.all():
            theirs = instance_uids(o, s)
            if sorted(theirs) != sorted(sops[s.name]):
                report.notes.append(f"{s.name}: Orthanc holds {len(theirs)} instances, Yunying {len(sops[s.name])}")
        with sync_playwright() as playwright:
            viewer_browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            # only for the transfer comparison: Orthanc has no CORS, so its responses are readable cross-origin
            # only with web security off; both servers are fetched by this same browser
            fetch_browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, "--disable-web-security"])
            fetch_page = fetch_browser.new_context().new_page()
            fetch_page.goto("about:blank")
            try:
                for series, kind in ((data.ct, "CT"), (data.mr, "MR")) if args.only != "vr" else ():
                    n = len(series.files)
                    mb = series.nbytes / 1e6
                    for rate in (None, MBIT_100):
                        link = link_name(rate)
                        runs = [view_series(viewer_browser, server, series, rate) for _ in range(args.runs)]
                        first = median([r["firstImageMs"] for r in runs])
                        full = median([r["allLoadedMs"] or float("nan") for r in runs])
                        # the pace after the first image: the rest of the series, per 10 images
                        per10 = (full - first) * 10 / max(n - 1, 1)
                        failed = sum(r["failed"] for r in runs)
                        print(f"  viewer {kind} {n} {link:10} first {first:.0f} ms, all {full:.0f} ms, "
                              f"{per10:.0f} ms/10 images, failed {failed}", flush=True)
                        report.lines.append(Line(f"Viewer: first image, {n}-image {kind}, {link}", f"{first / 1000:.2f} s",
                                                 target=f"≤ 3 s {mark(first <= 3000)}"))
                        target = f"≤ 1 s {mark(per10 <= 1000)}"
                        report.lines.append(Line(f"Viewer: all {n} decoded + scrollable, {kind}, {link} "
                                                 "(per 10 images after the first)",
                                                 f"{full / 1000:.2f} s ({per10 / 1000:.2f} s)", target=target))
                        if kind == "MR" and rate:
                            report.lines.append(Line(f"Viewer: {n} MR images at 100 Mbit/s", f"{full / 1000:.2f} s",
                                                     target=f"≤ 7 s {mark(full <= 7000)}"))
                        report.details.append(
                            f"viewer {kind} {n} images ({mb:.0f} MB as stored), {link}: runs "
                            + "; ".join(f"first {r['firstImageMs']} ms / all {r['allLoadedMs']} ms "
                                        f"(loaded at first image {r['loadedAtFirstImage']}, failed {r['failed']})"
                                        for r in runs))
                        # the transfer, side by side
                        times: dict[str, list[dict[str, Any]]] = {"Yunying": [], "Orthanc": []}
                        for i in range(args.runs):
                            for t in ((y, o) if i % 2 == 0 else (o, y)):
                                times[t.product].append(fetch_frames(fetch_page, t, series, sops[series.name], rate))
                        ym, om = (median([r["ms"] for r in times[p]]) for p in ("Yunying", "Orthanc"))
                        bad = sum(r["failed"] for p in times for r in times[p])
                        if bad:
                            report.notes.append(f"{kind} {link}: {bad} frame requests failed")
                        print(f"  frames {kind} {n} {link:10} Yunying {ym:.0f} ms, Orthanc {om:.0f} ms", flush=True)
                        report.lines.append(Line(
                            f"WADO-RS frames of all {n} {kind} images in the browser, {IN_FLIGHT} in flight, {link}",
                            f"{ym / 1000:.2f} s", f"{om / 1000:.2f} s", f"{ym / om:.2f}", "ratio ≤ 1 (faster or equal)"))
                        report.details.append(
                            f"frames {kind} {link}: " + "; ".join(
                                f"{p} " + ", ".join(f"{r['ms']:.0f} ms ({r['bytes'] / 1e6:.1f} MB, first {r['firstMs']:.0f} ms)"
                                                    for r in times[p]) for p in times))
                for rate in (None, MBIT_100) if args.only != "stack" else ():
                    link = link_name(rate)
                    runs = [volume_render(viewer_browser, server, data.volume, rate) for _ in range(args.runs)]
                    first = median([r["firstFrameMs"] or float("nan") for r in runs])
                    full = median([r["fullFrameMs"] or float("nan") for r in runs])
                    n = len(data.volume.files)
                    print(f"  VR {n} {link:10} first frame {first:.0f} ms, whole volume rendered {full:.0f} ms", flush=True)
                    report.lines.append(Line(f"VR {n}-slice CT volume: first rendered frame, {link}", f"{first / 1000:.2f} s",
                                             target=f"≤ 4 s {mark(first <= 4000)}"))
                    report.lines.append(Line(f"VR {n}-slice CT volume: frame with the whole volume, {link}",
                                             f"{full / 1000:.2f} s", target=f"(≤ 4 s {mark(full <= 4000)})"))
                    report.details.append(f"VR {link}: " + "; ".join(
                        f"first {_ms(r['firstFrameMs'])}, volume loaded {_ms(r['loadedMs'])}, full frame "
                        f"{_ms(r['fullFrameMs'])} (none within 90 s after loading: —), lit pixels {r['litFraction']:.1%}"
                        for r in runs))
                    if any(r["litFraction"] < 0.01 for r in runs):
                        report.notes.append(f"VR {link}: a rendered frame was (nearly) black")
            finally:
                viewer_browser.close()
                fetch_browser.close()


def render(report: Report, info: dict[str, str], seconds: float, args: argparse.Namespace) -> str:
    only = (f" --only {args.only}" if args.only else "") + (f" --compression {args.compression}"
                                                          if args.compression != "none" else "")
    lines = [f"# Viewer benchmark — {info['date']}", "",
             f"`python -m bench.viewer --runs {args.runs}{only}`, {seconds / 60:.1f} min. Medians of {args.runs} run(s); "
             "Y÷O = Yunying's time ÷ Orthanc's (below 1: Yunying faster).", "",
             "| Measurement | Yunying | Orthanc | Y÷O | Target (WEB-4) |", "|---|---|---|---|---|"]
    lines += [f"| {x.label} | {x.yunying} | {x.orthanc} | {x.ratio} | {x.target} |" for x in report.lines]
    lines += ["", "## Details", ""] + [f"- {d}" for d in report.details]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in info.items()]
    lines.append(f"- load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    lines.append(f"- browser: {CHROMIUM} headless, WebGL2 via SwiftShader (no GPU); flags {' '.join(FLAGS)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.viewer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=2, help="runs per measurement (median); default 2")
    p.add_argument("--ct-slices", type=int, default=300)
    p.add_argument("--mr-images", type=int, default=500)
    p.add_argument("--volume-slices", type=int, default=150)
    p.add_argument("--only", choices=["stack", "vr"], help="only the 2D series (with the frame transfer) or only VR")
    p.add_argument("--compression", choices=["none", "jpeg-ls", "jpeg-2000"], default="none",
                   help="Yunying's lossless compression at rest (frames travel as stored); Orthanc keeps what it got")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not (REPO / "viewer" / "dist" / "index.html").exists():
        print("build the viewer first: cd viewer && npm run build")
        return 2
    started = time.monotonic()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    print(f"Viewer benchmark — {info['cpu']}, {info['nproc']} CPUs, load {info['load average at start']}", flush=True)
    data = prepare(args.cache_dir, args.ct_slices, args.mr_images, args.volume_slices)
    report = Report()
    work = Path(tempfile.mkdtemp(prefix="yunying-bench-viewer-"))
    try:
        measure(args, data, report, work)
    except Exception as exc:  # keep what was measured
        traceback.print_exc()
        report.notes.append(f"stopped early: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = render(report, info, time.monotonic() - started, args)
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"viewer-{time.strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(text)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
