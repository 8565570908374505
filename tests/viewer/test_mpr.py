"""3D in the viewer on the shared 134-slice CT: MPR (three non-blank orthographic views whose crosshair
centre is the axial slice position and follows scrolling; an oblique rotation by dragging a crosshair
handle turns the sagittal plane), slab MIP/MinIP, volume rendering (non-blank, presets and cropping change
the picture), and a single radiograph that cannot form a volume (message, 2D still drawn)."""

from __future__ import annotations

import math
import time
from typing import Any

from playwright.sync_api import Page

from tests.support.viewer import SHARED, ViewerSite, canvas_stats, open_study, screenshot, study_uid_of, wait_rendered

VOLUME_TIMEOUT = 180_000
SLICE_MM = 3.0  # the CT's slice spacing


def camera(page: Page, viewport_id: str) -> dict[str, list[float]]:
    result: dict[str, list[float]] = page.evaluate(
        """(id) => { const c = window.yunyingViewer.ctx.engine.getViewport(id).getCamera();
             return { focalPoint: Array.from(c.focalPoint), viewPlaneNormal: Array.from(c.viewPlaneNormal) }; }""",
        viewport_id)
    return result


def crosshairs(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("() => window.yunyingViewer3d.crosshairs()")
    return result


def enter(page: Page, action: str, mode: str) -> float:
    """Click a 3D button and wait until the volume is loaded and drawn; returns the seconds it took."""
    started = time.monotonic()
    page.click(f"[data-action={action}]")
    # polled on a timer: rendering may hold back animation frames
    page.wait_for_function(f"() => window.yunyingViewer3d.mode() === '{mode}' && window.yunyingViewer3d.volumeLoaded()",
                           timeout=VOLUME_TIMEOUT, polling=500)
    page.wait_for_timeout(1500)  # last slices uploaded and drawn
    return time.monotonic() - started


def settle(page: Page, ms: int = 800) -> None:
    page.wait_for_timeout(ms)


def count_renders(page: Page, viewport_id: str = "vp-0") -> None:
    page.evaluate("""(id) => { const element = document.querySelector(`[data-viewport=${id}]`); window.yyRenders = 0;
                     element.addEventListener('CORNERSTONE_IMAGE_RENDERED', () => { window.yyRenders += 1; }); }""",
                  viewport_id)


def changed_stats(page: Page, before: dict[str, float], seconds: float = 120) -> dict[str, float]:
    """The viewport's pixels once they differ from ``before`` (or the last look after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        stats = canvas_stats(page)
        if stats["hash"] != before["hash"] or time.monotonic() > deadline:
            return stats
        page.wait_for_timeout(1000)


def wait_render(page: Page) -> None:
    """Until the viewport has drawn a frame since the last call (3D frames take seconds in SwiftShader)."""
    page.wait_for_function("() => window.yyRenders > 0", timeout=VOLUME_TIMEOUT, polling=250)
    page.wait_for_timeout(300)
    page.evaluate("() => { window.yyRenders = 0; }")


def test_mpr_views_crosshairs_slab_and_rotation(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        seconds = enter(page, "mpr-open", "mpr")
        print(f"MPR volume loaded and drawn in {seconds:.1f} s")
        kinds = page.evaluate("() => window.yunyingViewer.ctx.slots().map((s) => s.kind)")
        assert kinds == ["mpr", "mpr", "mpr"], kinds
        for viewport_id in ("vp-0", "vp-1", "vp-2"):
            stats = canvas_stats(page, viewport_id)
            assert stats["sd"] > 5, (viewport_id, stats)
        normals = [camera(page, v)["viewPlaneNormal"] for v in ("vp-0", "vp-1", "vp-2")]
        assert abs(abs(normals[0][2]) - 1) < 1e-3 and abs(abs(normals[1][0]) - 1) < 1e-3 \
            and abs(abs(normals[2][1]) - 1) < 1e-3, normals  # axial, sagittal, coronal
        assert page.locator(".yy-mpr-label").all_inner_texts() == ["横断位", "矢状位", "冠状位"]

        # one crosshair centre: the axial slice position, shown by the sagittal and coronal views
        center = crosshairs(page)["center"]
        axial = camera(page, "vp-0")["focalPoint"]
        assert abs(center[2] - axial[2]) <= SLICE_MM, (center, axial)
        assert abs(camera(page, "vp-1")["focalPoint"][0] - center[0]) <= SLICE_MM
        assert abs(camera(page, "vp-2")["focalPoint"][1] - center[1]) <= SLICE_MM
        screenshot(page, "mpr-three-views")

        # scrolling the axial view moves the z the other views' crosshairs show
        box = page.locator("[data-viewport=vp-0]").bounding_box()
        assert box
        page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.85)
        for _ in range(8):
            page.mouse.wheel(0, 120)
            page.wait_for_timeout(80)
        settle(page)
        axial_after = camera(page, "vp-0")["focalPoint"]
        center_after = crosshairs(page)["center"]
        assert abs(axial_after[2] - axial[2]) >= 2 * SLICE_MM, (axial, axial_after)
        assert abs(center_after[2] - axial_after[2]) <= SLICE_MM, (center_after, axial_after)
        assert abs(center_after[2] - center[2]) >= 2 * SLICE_MM

        # slab projections over 20 mm: MIP brighter than the thin slice, MinIP darker
        thin = canvas_stats(page, "vp-0")
        page.fill("[data-control=slab-thickness]", "20")
        page.select_option("[data-control=slab-mode]", "mip")
        settle(page, 1500)
        mip = canvas_stats(page, "vp-0")
        page.select_option("[data-control=slab-mode]", "minip")
        settle(page, 1500)
        minip = canvas_stats(page, "vp-0")
        assert mip["hash"] != thin["hash"] and mip["mean"] > thin["mean"] + 1, (thin, mip)
        assert minip["hash"] != thin["hash"] and minip["mean"] < thin["mean"] - 1, (thin, minip)
        screenshot(page, "mpr-minip-20mm")
        page.select_option("[data-control=slab-mode]", "composite")
        settle(page)

        # oblique: drag the rotation handle of the sagittal line in the axial view by ~25° around the centre
        state = crosshairs(page)
        handles = [p for p in state["rotationPoints"]["vp-0"] if p["line"] == "vp-1"]
        assert handles, state
        center = state["center"]
        start, pivot = page.evaluate(
            """([world, center]) => { const v = window.yunyingViewer.ctx.engine.getViewport('vp-0');
                 return [v.worldToCanvas(world), v.worldToCanvas(center)]; }""",
            [handles[0]["world"], center])
        angle = math.radians(25)
        dx, dy = start[0] - pivot[0], start[1] - pivot[1]
        end = [pivot[0] + dx * math.cos(angle) - dy * math.sin(angle), pivot[1] + dx * math.sin(angle) + dy * math.cos(angle)]
        sagittal_before = camera(page, "vp-1")["viewPlaneNormal"]
        page.mouse.move(box["x"] + start[0], box["y"] + start[1])
        page.mouse.down()
        page.mouse.move(box["x"] + end[0], box["y"] + end[1], steps=10)
        page.mouse.up()
        settle(page)
        sagittal_after = camera(page, "vp-1")["viewPlaneNormal"]
        cosine = sum(a * b for a, b in zip(sagittal_before, sagittal_after, strict=True))
        turned = math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
        assert turned > 5, (sagittal_before, sagittal_after)
        assert abs(sagittal_after[2]) < 1e-3  # rotated about the axial normal: still perpendicular to the axial plane
        assert canvas_stats(page, "vp-1")["sd"] > 5
        screenshot(page, "mpr-oblique")

        # back to 2D: one stack viewport again
        page.click("[data-action=mpr-back]")
        page.wait_for_function("() => window.yunyingViewer3d.mode() === '2d'")
        wait_rendered(page)
        assert page.evaluate("() => window.yunyingViewer.ctx.slots().map((s) => s.kind)") == ["stack"]
        assert canvas_stats(page)["sd"] > 5
        assert not page.errors  # type: ignore[attr-defined]


def test_volume_rendering_presets_and_crop(viewer_site: ViewerSite, ct_study: str) -> None:
    # a smaller window: every 3D frame is ray-cast on the CPU (SwiftShader)
    with viewer_site.page(width=900, height=560) as page:
        page.on("console", lambda m: print("console:", m.text[:200]))
        open_study(page, ct_study)
        wait_rendered(page)
        seconds = enter(page, "mpr-vr", "vr")
        print(f"VR volume loaded and drawn in {seconds:.1f} s")
        count_renders(page)
        bone = canvas_stats(page)
        assert bone["sd"] > 5, bone
        screenshot(page, "vr-bone")
        page.evaluate("() => { window.yyRenders = 0; }")
        page.select_option("[data-control=vr-preset]", "CT-Soft-Tissue")
        wait_render(page)
        soft = canvas_stats(page)
        assert soft["hash"] != bone["hash"] and soft["sd"] > 5, (bone, soft)
        screenshot(page, "vr-soft-tissue")
        # crop away the upper half along head–feet: the six crop faces are on the mapper and the picture changes
        started = time.monotonic()
        page.evaluate("""() => { const input = document.querySelector('[data-control=crop-z-max]');
                                 input.value = '50'; input.dispatchEvent(new Event('input')); }""")
        planes = page.evaluate("""() => { const v = window.yunyingViewer.ctx.engine.getViewport('vp-0');
            const a = v.getDefaultActor().actor; const planes = a.getMapper().getClippingPlanes();
            return { bounds: a.getBounds(),
                     planes: planes.map((p) => [Array.from(p.getNormal()), Array.from(p.getOrigin())]) }; }""")
        assert len(planes["planes"]) == 6, planes  # vtk.js's shader holds at most six clip planes
        z_low, z_high = planes["bounds"][4], planes["bounds"][5]
        top = [p for p in planes["planes"] if p[0] == [0, 0, -1]]
        assert len(top) == 1 and abs(top[0][1][2] - (z_low + z_high) / 2) < 1, planes
        # turning the camera makes Cornerstone re-aim the mapper's first two planes at its slab: the crop faces come back
        turned = page.evaluate("""() => { const v = window.yunyingViewer.ctx.engine.getViewport('vp-0');
            const camera = v.getCamera(); const n = camera.viewPlaneNormal; const up = camera.viewUp;
            v.setCamera({ viewPlaneNormal: [n[0], n[2], -n[1]], viewUp: [up[0], up[2], -up[1]] });
            const planes = v.getDefaultActor().actor.getMapper().getClippingPlanes()
              .map((p) => [Array.from(p.getNormal()), Array.from(p.getOrigin())]);
            v.setCamera(camera); return planes; }""")
        assert turned == planes["planes"], (turned, planes)
        wait_render(page)
        cropped = changed_stats(page, soft, seconds=60)
        print(f"cropped frame drawn in {time.monotonic() - started:.1f} s")
        assert cropped["hash"] != soft["hash"] and cropped["sd"] > 5, (soft, cropped)
        # less body left: fewer lit pixels on the black background
        assert cropped["mean"] < soft["mean"], (soft, cropped)
        screenshot(page, "vr-cropped")
        # the page still answers: a real click on the reset button, and the full picture comes back
        started = time.monotonic()
        page.click("[data-action=crop-reset]", timeout=30_000)
        wait_render(page)
        restored = changed_stats(page, cropped, seconds=60)
        print(f"crop reset drawn in {time.monotonic() - started:.1f} s")
        assert page.evaluate("() => window.yunyingViewer.ctx.engine.getViewport('vp-0')"
                             ".getDefaultActor().actor.getMapper().getClippingPlanes().length") == 0
        assert page.input_value("[data-control=crop-z-max]") == "100"
        assert abs(restored["mean"] - soft["mean"]) < 0.01 * soft["mean"] + 0.5, (soft, restored)
        screenshot(page, "vr-crop-reset")
        assert not page.errors  # type: ignore[attr-defined]


def test_single_radiograph_cannot_form_a_volume(viewer_site: ViewerSite) -> None:
    radiograph = SHARED / "projection_xray" / "DX_chest_C3L-00277.dcm"
    viewer_site.load(radiograph)
    with viewer_site.page() as page:
        open_study(page, study_uid_of_file(radiograph))
        wait_rendered(page)
        before = canvas_stats(page)
        page.click("[data-action=mpr-open]")
        message = page.locator(".yy-message[data-key='mpr.notVolume']")
        message.wait_for(timeout=10_000)
        assert "无法进行三维重建" in message.inner_text() and "只有 1 幅图像" in message.inner_text()
        page.click("[data-action=mpr-vr]")
        page.wait_for_function("() => document.querySelectorAll(\".yy-message[data-key='mpr.notVolume']\").length === 2")
        assert page.evaluate("() => window.yunyingViewer3d.mode()") == "2d"
        assert page.evaluate("() => window.yunyingViewer.ctx.slots().map((s) => s.kind)") == ["stack"]
        after = canvas_stats(page)
        assert after["sd"] > 5 and after["hash"] == before["hash"], (before, after)
        assert not page.errors  # type: ignore[attr-defined]


def study_uid_of_file(path: Any) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


__all__ = ["study_uid_of"]
