"""The /m/viewer page without a browser: it needs a principal who may read studies (a browser without one gets a
page leading back to the patient's link, a doctor whose session ended goes to the sign-in page and comes back), it
is audited as a view of the study, and it carries the viewer's CSP."""

from __future__ import annotations

from urllib.parse import unquote

import httpx

from tests.mobile.conftest import USER
from tests.support.viewer import PASSWORD, ViewerSite
from yunying.api.security import VIEWER_CSP


def test_page_needs_study_access_is_audited_and_has_the_viewer_csp(mobile_site: ViewerSite, ct_study: str) -> None:
    url = f"{mobile_site.server.url}/m/viewer"
    # a phone without a session (a patient's ended): a page pointing back to the link, the staff sign-in second
    anonymous = httpx.get(url, params={"study": ct_study}, headers={"Accept": "text/html"})
    assert anonymous.status_code == 401 and 'data-state="no-session"' in anonymous.text
    assert 'href="/m/exams"' in anonymous.text
    assert unquote(anonymous.text).count(f'href="/ui/login?next=/m/viewer?study={ct_study}"') == 1
    ended = httpx.get(url, params={"study": ct_study}, headers={"Accept": "text/html"}, cookies={"yy_session": "gone"})
    assert ended.status_code == 303  # a doctor whose session ended signs in again
    assert unquote(ended.headers["location"]) == f"/ui/login?next=/m/viewer?study={ct_study}&ended=1"
    assert httpx.get(url, params={"study": ct_study}).status_code == 401  # API clients get the problem document

    auditor = mobile_site.user("auditor-mobile", roles="auditor")
    assert httpx.get(url, params={"study": ct_study}, auth=(auditor, PASSWORD)).status_code == 403  # no study:read
    page = httpx.get(url, params={"study": ct_study}, auth=(USER, PASSWORD))
    assert page.status_code == 200, page.text[:300]
    assert page.headers["content-security-policy"] == VIEWER_CSP
    assert "/viewer/assets/mobile-viewer-" in page.text
    assert httpx.get(url, auth=(USER, PASSWORD)).status_code in (400, 422)  # the study is required
    assert httpx.get(url, params={"study": "1.2.3<script>"}, auth=(USER, PASSWORD)).status_code in (400, 422)

    entries = httpx.get(f"{mobile_site.server.url}/api/audit", params={"subject": ct_study, "actor": USER},
                        auth=(auditor, PASSWORD)).json()["items"]
    assert any(e["action"] == "view" and e["detail"] == "phone viewer opened" for e in entries), entries
