"""The phone pages (``yunying.web.mobile``): every ``/m/…`` path and ``/s/{token}`` answer the one page of the
build without credentials, under the viewer's CSP (its scripts live in ``/viewer/assets``); an unknown phone path is
404; an unbuilt viewer says so (503); the pages count against the public rate limit of the client address."""

from __future__ import annotations

from pathlib import Path

from tests.support.web import site
from yunying.api.security import VIEWER_CSP

PAGE = b"<!doctype html><title>phone</title><script type=module src=/viewer/assets/mobile-x.js></script>"
PATHS = ["/m", "/m/open/AbC_-123", "/m/exams", "/m/exams/1.2.840.99.1", "/m/shares", "/m/access", "/s/tok-EN_42"]


def test_phone_paths_serve_the_page(db_url: str, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "mobile.html").write_bytes(PAGE)
    with site(db_url, tmp_path, viewer_dist=dist, public_rate_per_minute=len(PATHS) + 1) as web:
        client = web.browser()
        for path in PATHS:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.content == PAGE and answer.headers["content-type"].startswith("text/html")
            assert answer.headers["content-security-policy"] == VIEWER_CSP, path
            assert answer.headers["cache-control"] == "no-cache"
        assert client.get("/m/viewerless/extra/path").status_code == 404
        assert client.get("/m/exams").status_code == 200
        limited = client.get("/m/exams")  # one more than the per-minute budget of this address
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0

        # another node without a build, and a larger budget (the count so far is shared through the database)
        unbuilt = web.browser(web.node(viewer_dist=tmp_path / "nothing-here", public_rate_per_minute=1000))
        answer = unbuilt.get("/s/tok-EN_42")
        assert answer.status_code == 503 and "not built" in answer.json()["detail"]
