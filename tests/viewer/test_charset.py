"""Chinese patient names from real files, UTF-8 (ISO_IR 192) and GB18030: the study list and the viewer's header
and corner overlay show the ideographic name (王^小東 / 王^小东) next to the alphabetic one, and searching by the
Chinese name finds them."""

from __future__ import annotations

import pytest

from tests.support.viewer import SHARED, ViewerSite, open_study, screenshot, wait_rendered

FILES = {"X1EXAMPLE": ("chrX1.dcm", "王 小東", "1.3.6.1.4.1.5962.1.2.0.1175775771.5711.0"),
         "X2EXAMPLE": ("chrX2.dcm", "王 小东", "1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0")}


@pytest.fixture(scope="module")
def charset_loaded(viewer_site: ViewerSite) -> None:
    viewer_site.load(*(SHARED / "charset" / name for name, _, _ in FILES.values()))


@pytest.mark.usefixtures("charset_loaded")
def test_chinese_names_in_list_header_and_overlay(viewer_site: ViewerSite) -> None:
    with viewer_site.page() as page:
        page.goto("/viewer")
        page.wait_for_function("() => document.body.dataset.listReady === 'true'")
        for patient_id, (_name, shown, study) in FILES.items():
            page.fill("input[name=PatientID]", patient_id)
            page.click("button[type=submit]")
            row = page.locator(f"tr[data-study='{study}']")
            row.wait_for()
            assert shown in row.inner_text() and "Wang XiaoDong" in row.inner_text()
        page.fill("input[name=PatientID]", "")
        page.fill("input[name=PatientName]", "王*")  # search by the Chinese name
        page.click("button[type=submit]")
        page.locator(f"tr[data-study='{FILES['X2EXAMPLE'][2]}']").wait_for()
        screenshot(page, "charset-study-list")
        for _patient_id, (_name, shown, study) in FILES.items():
            open_study(page, study)
            wait_rendered(page)
            assert shown in page.inner_text("#yy-patient")
            assert shown in page.locator(".yy-slot").first.inner_text()  # the corner overlay
        screenshot(page, "charset-viewer-gb18030")
        assert not page.errors  # type: ignore[attr-defined]
