"""One archive with the shared CT (and more) for all viewer tests, one Chromium; a signed-in page per test.

The viewer's behaviour does not depend on the index database, so these tests run once, on the embedded
SQLite default (the database matrix is covered by the archive tests); see docs/decisions/0009.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess
from tests.support.viewer import CT_DIR, ViewerSite, chromium, study_uid_of, viewer_built

pytestmark = pytest.mark.timeout(900)


# Package scope: the browser (Playwright's sync API runs an event loop in this thread) is closed when the
# viewer tests end, before other packages (tests/web) start their own.
@pytest.fixture(scope="package")
def viewer_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerSite]:
    viewer_built()
    root = tmp_path_factory.mktemp("viewer")
    server = ServerProcess(root / "data", f"sqlite:///{root / 'data' / 'index.sqlite3'}", open_dicom=False,
                           env={"YUNYING_LOGIN_RATE_PER_MINUTE": "10000", "YUNYING_PUBLIC_RATE_PER_MINUTE": "100000",
                                **({"YUNYING_VIEWER_DIST": os.environ["YUNYING_VIEWER_DIST"]}
                                   if "YUNYING_VIEWER_DIST" in os.environ else {})})
    (root / "data").mkdir()
    server.start()
    with chromium() as browser:
        site = ViewerSite(server, browser)
        site.load(CT_DIR)
        site.user("rad-viewer")
        yield site
    server.stop()


@pytest.fixture(scope="package")
def ct_study() -> str:
    return study_uid_of(CT_DIR)


@pytest.fixture
def artifacts() -> Path:
    return Path(__file__).resolve().parents[2] / "test-artifacts" / "viewer"
