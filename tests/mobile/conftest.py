"""One archive with the shared CT for the phone viewer tests, one Chromium (WebGL2 through SwiftShader); each
test module opens one phone page and keeps it (page loads cost seconds). Like tests/viewer, these run once on
the embedded SQLite default (decision 0009)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.server import ServerProcess
from tests.support.viewer import CT_DIR, ViewerSite, chromium, study_uid_of, viewer_built

pytestmark = pytest.mark.timeout(900)
USER = "rad-mobile"


@pytest.fixture(scope="package")
def mobile_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerSite]:
    viewer_built()
    root = tmp_path_factory.mktemp("mobile")
    server = ServerProcess(root / "data", f"sqlite:///{root / 'data' / 'index.sqlite3'}", open_dicom=False,
                           env={"YUNYING_LOGIN_RATE_PER_MINUTE": "10000", "YUNYING_PUBLIC_RATE_PER_MINUTE": "100000",
                                **({"YUNYING_VIEWER_DIST": os.environ["YUNYING_VIEWER_DIST"]}
                                   if "YUNYING_VIEWER_DIST" in os.environ else {})})
    (root / "data").mkdir()
    server.start()
    try:
        with chromium() as browser:
            site = ViewerSite(server, browser)
            site.load(CT_DIR)
            site.user(USER)
            yield site
    finally:
        server.stop()


@pytest.fixture(scope="package")
def ct_study() -> str:
    return study_uid_of(CT_DIR)
