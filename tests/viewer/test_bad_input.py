"""Bad input (acceptance 6): a CT series with one truncated instance, a series with an instance in a transfer
syntax the browser cannot decode (MPEG-2), an empty and an unknown study UID. Each shows a message naming the
problem, and the rest of the study stays viewable (scroll past the bad image, open the other series)."""

from __future__ import annotations

from typing import Any

import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML

from tests.support.viewer import ViewerSite, canvas_stats, current_sop, derive_ct_study, open_study, screenshot, wait_rendered


@pytest.fixture(scope="module")
def bad_study(viewer_site: ViewerSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bad")
    made = derive_ct_study(root / "a", patient_id="YY-BAD-1", slices=list(range(60, 66)), description="BAD truncated")
    # instance 3: pixel data cut to a third (the archive stores it as received, flagged not renderable)
    truncated = made["files"][2]
    ds = pydicom.dcmread(truncated)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
    ds.save_as(truncated)
    # second series of the same study: instance 2 claims MPEG-2 video, which no browser decoder handles
    other = derive_ct_study(root / "b", patient_id="YY-BAD-1", slices=list(range(70, 73)), description="BAD syntax")
    for path in other["files"]:
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = made["study"]
        ds.SeriesNumber = 999  # after the CT series (201): the study opens on the truncated one
        if path == other["files"][1]:
            ds.file_meta.TransferSyntaxUID = MPEG2MPML
            ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(400)])
            ds["PixelData"].VR = "OB"
            ds.NumberOfFrames = 1
        ds.save_as(path, enforce_file_format=True)
    viewer_site.load(root / "a", root / "b")
    return {"study": made["study"], "a": made, "b": other, "bad_sop": str(pydicom.dcmread(truncated).SOPInstanceUID),
            "mpeg_sop": str(pydicom.dcmread(other["files"][1]).SOPInstanceUID)}


def _message(page: Any, key: str) -> str:
    page.wait_for_selector(f".yy-slot-message[data-key='{key}']", timeout=30_000)
    assert page.locator(".yy-slot.yy-image-failed").count() == 1  # the stale picture behind is dimmed
    text: str = page.locator(".yy-slot-message").inner_text()
    return text


def _index_of(page: Any, sop: str) -> int:
    index: int = page.evaluate(
        "(sop) => window.yunyingViewer.ctx.stackViewport().getImageIds().findIndex((id) => id.includes(sop))", sop)
    assert index >= 0
    return index


def _go(page: Any, index: int) -> None:
    page.evaluate("(i) => { window.yunyingViewer.ctx.stackViewport().setImageIdIndex(i).catch(() => {}); }", index)


def test_truncated_instance_is_named_and_the_next_image_shows(viewer_site: ViewerSite, bad_study: dict[str, Any]) -> None:
    with viewer_site.page(extra_http_headers={"Accept-Language": "en"}) as page:
        open_study(page, bad_study["study"], "&lang=en")
        wait_rendered(page)
        assert canvas_stats(page)["sd"] > 5
        bad = _index_of(page, bad_study["bad_sop"])
        _go(page, bad)
        message = _message(page, "viewer.imageDamaged")
        assert message.startswith(f"Image {bad + 1} has damaged data"), message
        screenshot(page, "bad-truncated")
        after = bad + 1 if bad < 5 else bad - 1
        _go(page, after)  # scroll past it: the message goes, the next image renders
        page.wait_for_function("(i) => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex() === i", arg=after)
        page.wait_for_selector(".yy-slot-message", state="detached")
        assert page.locator(".yy-slot.yy-image-failed").count() == 0
        assert current_sop(page, "vp-0") != bad_study["bad_sop"]
        assert canvas_stats(page)["sd"] > 5


def test_undecodable_syntax_is_named_and_other_series_open(viewer_site: ViewerSite, bad_study: dict[str, Any]) -> None:
    with viewer_site.page() as page:
        open_study(page, bad_study["study"], "&lang=en")
        wait_rendered(page)
        page.click(f"[data-series='{bad_study['b']['series']}']")
        page.wait_for_function("(uid) => window.yunyingViewer.ctx.activeSlot().series.uid === uid", arg=bad_study["b"]["series"])
        wait_rendered(page)
        bad = _index_of(page, bad_study["mpeg_sop"])
        _go(page, bad)
        message = _message(page, "viewer.unsupportedSyntax")
        assert f"Image {bad + 1} is encoded in a format the browser cannot decode" in message, message
        assert "1.2.840.10008.1.2.4.100" in message, message
        screenshot(page, "bad-syntax")
        after = bad + 1 if bad < 2 else bad - 1
        _go(page, after)
        page.wait_for_function("(i) => window.yunyingViewer.ctx.stackViewport().getCurrentImageIdIndex() === i", arg=after)
        page.wait_for_selector(".yy-slot-message", state="detached")
        assert page.locator(".yy-slot.yy-image-failed").count() == 0
        assert canvas_stats(page)["sd"] > 5
        page.click(f"[data-series='{bad_study['a']['series']}']")  # the other series still opens
        page.wait_for_function("(uid) => window.yunyingViewer.ctx.activeSlot().series.uid === uid", arg=bad_study["a"]["series"])
        wait_rendered(page)
        assert canvas_stats(page)["sd"] > 5


@pytest.mark.parametrize(("query", "key"), [("", "viewer.noStudy"), ("1.2.826.0.1.3680043.99.424242", "viewer.studyNotFound")])
def test_missing_study_is_explained(viewer_site: ViewerSite, query: str, key: str) -> None:
    with viewer_site.page() as page:
        page.goto(f"/viewer?study={query}&lang=en")
        message = page.locator(f".yy-message.yy-error[data-key='{key}']")
        message.wait_for(timeout=30_000)
        assert "study" in message.inner_text().lower()
        assert not page.errors  # type: ignore[attr-defined]
