"""Annotations in the browser (VW-5): an arrow with text and a length drawn with the mouse on the CT, a key image,
saved on their own, back after a reload, invisible to another user, exported as a DICOM SR with the length."""

from __future__ import annotations

import highdicom as hd
import pydicom
import pytest
from playwright.sync_api import Page

from tests.support.viewer import ViewerSite, open_study, screenshot, wait_rendered

USER, OTHER = "annot-rad", "other-rad"  # own users: the shared rad-viewer's CT stays free of annotations


def _drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    box = page.locator(".yy-slot.yy-active .yy-viewport").bounding_box()
    assert box
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx + start[0], cy + start[1])
    page.mouse.down()
    page.mouse.move(cx + end[0], cy + end[1], steps=10)
    page.mouse.up()


def _annotations(page: Page) -> list[dict[str, object]]:
    items: list[dict[str, object]] = page.evaluate("() => window.yunyingAnnotations.annotations()")
    return items


def _settled(page: Page) -> int:
    version: int = page.evaluate(
        "async () => { await window.yunyingAnnotations.settled(); return window.yunyingAnnotations.version(); }")
    return version


def test_draw_reload_isolation_and_sr_export(viewer_site: ViewerSite, ct_study: str) -> None:
    viewer_site.user(USER)
    viewer_site.user(OTHER)
    with viewer_site.page(USER, accept_downloads=True) as page:
        open_study(page, ct_study)
        wait_rendered(page)
        assert page.locator("[data-panel=annotations] [data-list=annotations] li").count() == 0

        page.click("[data-action=annot-arrow]")
        _drag(page, (-120, -40), (-20, 10))
        page.wait_for_selector(".yy-annot-dialog input")
        page.fill(".yy-annot-dialog input", "病灶 lesion")
        page.keyboard.press("Enter")
        page.wait_for_selector(".yy-annot-dialog", state="detached")

        page.evaluate("() => window.yunyingViewer.ctx.setPrimaryTool('Length')")  # the measurement feature's button may be absent
        _drag(page, (-150, 80), (60, 80))
        page.wait_for_function(
            "() => window.yunyingAnnotations.annotations().some(a => a.tool === 'Length' && a.measurements.length)")
        page.click("[data-action=annot-key-image]")
        assert "yy-pressed" in (page.get_attribute("[data-action=annot-key-image]", "class") or "")
        version = _settled(page)
        assert version >= 1

        drawn = {a["tool"]: a for a in _annotations(page)}
        assert set(drawn) == {"ArrowAnnotate", "Length"}, drawn.keys()
        assert drawn["ArrowAnnotate"]["text"] == "病灶 lesion"
        length = next(m for m in drawn["Length"]["measurements"] if m["name"] == "length")  # type: ignore[union-attr]
        assert length["unit"] == "mm" and 50 < length["value"] < 500, length
        current_sop = page.evaluate(
            "() => window.yunyingViewer.ctx.stackViewport().getCurrentImageId().split('/instances/')[1].split('/')[0]")
        screenshot(page, "annotations-drawn")

        page.reload()
        page.wait_for_function("() => document.body.dataset.viewerReady === 'true'", timeout=60_000)
        wait_rendered(page)
        restored = {a["tool"]: a for a in _annotations(page)}
        assert set(restored) == {"ArrowAnnotate", "Length"}
        assert restored["ArrowAnnotate"]["text"] == "病灶 lesion"
        assert restored["Length"]["world_points"] == drawn["Length"]["world_points"]
        assert page.evaluate("() => window.yunyingAnnotations.keyImages()") == [{"sop_instance_uid": current_sop, "frame": None}]
        assert page.locator("[data-panel=annotations] [data-list=key-images] li").count() == 1
        assert page.locator("[data-panel=annotations] [data-list=annotations] li").count() == 2
        assert "yy-pressed" in (page.get_attribute("[data-action=annot-key-image]", "class") or "")

        with page.expect_download() as download:
            page.click("[data-action=annot-export-sr]")
        path = download.value.path()
        ds = pydicom.dcmread(path)
        assert ds.Modality == "SR" and ds.StudyInstanceUID == ct_study
        report = hd.sr.ComprehensiveSR.from_dataset(ds)
        nums = hd.sr.utils.find_content_items(report, value_type=hd.sr.ValueTypeValues.NUM, recursive=True)
        lengths = [float(n.MeasuredValueSequence[0].NumericValue) for n in nums
                   if n.ConceptNameCodeSequence[0].CodeMeaning == "Length"]
        assert lengths == [pytest.approx(length["value"], rel=1e-3)]
        texts = hd.sr.utils.find_content_items(report, value_type=hd.sr.ValueTypeValues.TEXT, recursive=True)
        assert [t.TextValue for t in texts] == ["病灶 lesion"]
        images = hd.sr.utils.find_content_items(report, value_type=hd.sr.ValueTypeValues.IMAGE, recursive=True)
        assert current_sop in {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images}
        assert not page.errors  # type: ignore[attr-defined]

    with viewer_site.page(OTHER) as other:
        open_study(other, ct_study)
        wait_rendered(other)
        other.wait_for_function("() => !!window.yunyingAnnotations")
        assert _annotations(other) == []
        assert other.evaluate("() => window.yunyingAnnotations.keyImages()") == []
        assert other.locator("[data-panel=annotations] [data-list=key-images] li").count() == 0
        assert other.evaluate("() => window.yunyingAnnotations.version()") == 0


def test_eraser_and_delete_key_remove_annotations(viewer_site: ViewerSite, ct_study: str) -> None:
    user = viewer_site.user("annot-eraser")
    with viewer_site.page(user) as page:
        open_study(page, ct_study)
        wait_rendered(page)
        page.evaluate("() => window.yunyingViewer.ctx.setPrimaryTool('Length')")
        _drag(page, (-150, -60), (50, -60))
        _drag(page, (-150, 60), (50, 60))
        page.wait_for_function("() => window.yunyingAnnotations.annotations().length === 2")
        _settled(page)
        # select the first (top) line by clicking it while another tool is primary, then Delete
        page.click("[data-action=tool-pan]")
        box = page.locator(".yy-slot.yy-active .yy-viewport").bounding_box()
        assert box
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(cx - 50, cy - 60)
        page.wait_for_timeout(600)  # Cornerstone holds a lone click for 400 ms (it might become a double click)
        page.wait_for_function("() => window.yunyingAnnotations.selected().length === 1")
        top = min(_annotations(page), key=lambda a: a["points"][0][1])["uid"]  # type: ignore[index]
        assert page.evaluate("() => window.yunyingAnnotations.selected()") == [top]
        page.keyboard.press("Delete")
        page.wait_for_function("() => window.yunyingAnnotations.annotations().length === 1")
        assert top not in [a["uid"] for a in _annotations(page)]  # the clicked (top) line is the one deleted
        # the eraser removes the other one
        page.click("[data-action=annot-eraser]")
        page.mouse.click(cx - 50, cy + 60)
        page.wait_for_function("() => window.yunyingAnnotations.annotations().length === 0")
        _settled(page)
        saved = page.evaluate("""async (uid) => (await (await fetch(`/api/studies/${uid}/annotations`)).json())""", ct_study)
        assert saved["annotations"] == [] and saved["version"] >= 2
