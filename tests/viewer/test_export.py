"""Export (VW-9): the current viewport downloads as PNG or JPEG of the viewport's size, without patient data
unless asked (with it, the identifiers are drawn into the top of the image; the file name never carries
them), and a print view holds the images and a header, shown only when printing."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page

from tests.support.viewer import ViewerSite, open_study, wait_rendered


def _download(page: Page, action: str, dest: Path) -> Path:
    with page.expect_download() as info:
        page.click(f"[data-action={action}]")
    download = info.value
    path = dest / download.suggested_filename
    download.save_as(path)
    return path


def test_png_and_jpeg_with_and_without_identifiers(viewer_site: ViewerSite, ct_study: str, tmp_path: Path) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        canvas = page.evaluate("""() => { const c = window.yunyingViewer.ctx.stackViewport().getCanvas();
            const r = c.getBoundingClientRect(); return [c.width, c.height, Math.round(r.width), Math.round(r.height)]; }""")
        plain_path = _download(page, "export-png", tmp_path)
        assert plain_path.name == "yunying-CT-s201-i1.png"  # no patient data in the name
        plain = Image.open(plain_path)
        assert plain.format == "PNG" and plain.size == (canvas[0], canvas[1]) == (canvas[2], canvas[3])

        page.click("[data-action=export-identifiers]")
        (tmp_path / "with").mkdir()
        named = Image.open(_download(page, "export-png", tmp_path / "with"))
        assert named.size == plain.size
        a, b = np.asarray(plain.convert("L"), dtype=int), np.asarray(named.convert("L"), dtype=int)
        band = max(12, round(plain.size[1] / 45)) * 2 + 16
        assert np.abs(a[:band] - b[:band]).sum() > 1000  # the identifiers are drawn at the top
        assert np.array_equal(a[band:], b[band:])  # the image itself is the same

        page.click("[data-action=export-identifiers]")  # off again: the same picture as the first export
        (tmp_path / "again").mkdir()
        again = Image.open(_download(page, "export-png", tmp_path / "again"))
        assert np.array_equal(np.asarray(again.convert("L"), dtype=int), a)

        jpeg_path = _download(page, "export-jpeg", tmp_path)
        jpeg = Image.open(BytesIO(jpeg_path.read_bytes()))
        assert jpeg.format == "JPEG" and jpeg.size == plain.size
        assert np.asarray(jpeg.convert("L")).std() > 5  # an image, not a blank


def test_print_view_holds_the_images(viewer_site: ViewerSite, ct_study: str) -> None:
    with viewer_site.page() as page:
        open_study(page, ct_study)
        wait_rendered(page)
        page.click("[data-action=layout-1x2]")
        wait_rendered(page, "vp-1")
        page.click("[data-action=export-print]")
        page.wait_for_selector(".yy-print img", state="attached")
        assert page.locator(".yy-print figure").count() == 2
        assert page.locator(".yy-print img").first.get_attribute("src").startswith("data:image/png")
        assert not page.locator(".yy-print").is_visible()  # on screen the print view stays hidden
        assert page.locator(".yy-print-patient").count() == 0  # no identifiers unless asked
        page.emulate_media(media="print")
        assert page.locator(".yy-print").is_visible() and not page.locator("#app").is_visible()
        assert page.locator(".yy-print h1").inner_text()
