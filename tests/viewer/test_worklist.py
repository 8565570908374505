"""The study list against the server: each filter (patient ID, modality → ModalitiesInStudy, body part, hospital →
InstitutionName, date range) narrows the results to exactly the matching studies, paging reads on, and the
priors panel lists the patient's other studies with a working "compare" link."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.viewer import ViewerSite, derive_ct_study, wait_rendered

PATIENT = "YY-WL-1"
STUDIES = {  # name: (modality, body part, hospital, date)
    "s1": ("CT", "ABDOMEN", "Hosp Alpha", "20200115"),
    "s2": ("MR", "HEAD", "Hosp Beta", "20210620"),
    "s3": ("CT", "CHEST", "Hosp Beta", "20220310"),
    "s4": ("CT", "HEAD", "Hosp Alpha", "20230505"),
}


@pytest.fixture(scope="module")
def studies(viewer_site: ViewerSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("worklist")
    uids: dict[str, str] = {}
    for number, (name, (modality, body, hospital, date)) in enumerate(STUDIES.items()):
        made = derive_ct_study(root / name, patient_id=PATIENT, slices=[60 + number], modality=modality, body_part=body,
                               institution=hospital, study_date=date, description=f"WL {name}", accession=f"WL-{name}")
        uids[name] = made["study"]
    viewer_site.load(*(root / name for name in STUDIES))
    return uids


def _search(page: Page, **fields: str) -> set[str]:
    for name in ("PatientID", "PatientName", "AccessionNumber", "ModalitiesInStudy", "BodyPartExamined",
                 "InstitutionName", "dateFrom", "dateTo"):
        page.fill(f"input[name={name}]", fields.get(name, PATIENT if name == "PatientID" else ""))
    page.click("button[type=submit]")
    page.wait_for_function("() => document.querySelector('#app').dataset.listState !== 'loading'")
    state = page.evaluate("() => document.querySelector('#app').dataset.listState")
    assert state == "done", page.locator(".yy-list-status").inner_text()
    rows: list[str] = page.evaluate("() => [...document.querySelectorAll('tr[data-study]')].map((r) => r.dataset.study)")
    return set(rows)


def _names(studies: dict[str, str], *names: str) -> set[str]:
    return {studies[n] for n in names}


def test_each_filter_narrows_the_list(viewer_site: ViewerSite, studies: dict[str, Any]) -> None:
    with viewer_site.page() as page:
        page.goto("/viewer")
        page.wait_for_function("() => document.body.dataset.listReady === 'true'")
        assert _search(page) == _names(studies, "s1", "s2", "s3", "s4")
        assert _search(page, ModalitiesInStudy="MR") == _names(studies, "s2")
        assert _search(page, ModalitiesInStudy="ct") == _names(studies, "s1", "s3", "s4")
        assert _search(page, BodyPartExamined="HEAD") == _names(studies, "s2", "s4")
        assert _search(page, InstitutionName="beta") == _names(studies, "s2", "s3")
        assert _search(page, dateFrom="2021-01-01", dateTo="2022-12-31") == _names(studies, "s2", "s3")
        assert _search(page, dateFrom="2022-01-01") == _names(studies, "s3", "s4")
        assert _search(page, dateTo="2020-12-31") == _names(studies, "s1")
        assert _search(page, ModalitiesInStudy="CT", InstitutionName="Alpha", BodyPartExamined="HEAD") == _names(studies, "s4")
        assert _search(page, AccessionNumber="WL-s3") == _names(studies, "s3")
        assert _search(page, ModalitiesInStudy="US") == set()
        assert page.locator(".yy-list-status").inner_text() in ("没有符合条件的检查。", "No study matches.")


def test_paging_reads_on(viewer_site: ViewerSite, studies: dict[str, Any]) -> None:
    with viewer_site.page() as page:
        page.goto("/viewer?pageSize=3")
        page.wait_for_function("() => document.body.dataset.listReady === 'true'")
        assert len(_search(page)) == 3
        assert page.locator(".yy-more").is_visible()
        page.click(".yy-more")
        page.wait_for_function("() => document.querySelectorAll('tr[data-study]').length === 4")
        rows = page.evaluate("() => [...document.querySelectorAll('tr[data-study]')].map((r) => r.dataset.study)")
        assert set(rows) == _names(studies, "s1", "s2", "s3", "s4") and len(rows) == 4  # no row twice
        page.wait_for_function("() => document.querySelector('.yy-more').hidden")
        # the hospital filter (applied in the page) still fills pages of the wanted size across server pages
        page.goto("/viewer?pageSize=1")
        page.wait_for_function("() => document.body.dataset.listReady === 'true'")
        first = _search(page, InstitutionName="alpha")
        assert len(first) == 1 and first <= _names(studies, "s1", "s4")
        page.click(".yy-more")
        page.wait_for_function("() => document.querySelectorAll('tr[data-study]').length === 2")
        rows = page.evaluate("() => [...document.querySelectorAll('tr[data-study]')].map((r) => r.dataset.study)")
        assert set(rows) == _names(studies, "s1", "s4")


def test_priors_and_compare_link(viewer_site: ViewerSite, studies: dict[str, Any]) -> None:
    with viewer_site.page() as page:
        page.goto("/viewer")
        page.wait_for_function("() => document.body.dataset.listReady === 'true'")
        _search(page)
        page.click(f"tr[data-study='{studies['s4']}'] td >> nth=0")
        page.wait_for_selector(".yy-priors .yy-prior")
        priors = page.evaluate("() => [...document.querySelectorAll('.yy-priors .yy-prior')].map((p) => p.dataset.study)")
        assert set(priors) == _names(studies, "s1", "s2", "s3")
        assert "Hosp Beta" in page.locator(f".yy-prior[data-study='{studies['s2']}']").inner_text()
        page.click(f".yy-prior[data-study='{studies['s1']}'] a.yy-compare")
        page.wait_for_function("() => document.body.dataset.viewerReady === 'true'", timeout=60_000)
        assert f"compare={studies['s1']}" in page.url
        page.wait_for_function("() => window.yunyingViewer.ctx.slots().length === 2")
        wait_rendered(page, "vp-1")
        slots = page.evaluate("() => window.yunyingViewer.ctx.slots().map((s) => s.study.uid)")
        assert slots == [studies["s4"], studies["s1"]]
