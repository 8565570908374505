"""The committed OpenAPI schema (docs/api/openapi.json) matches the app; every route is documented."""

from __future__ import annotations

import json
import os
from pathlib import Path

from yunying.api.app import create_app
from yunying.compose import Archive

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"


def test_openapi_schema_is_committed_and_current(archive: Archive) -> None:
    current = create_app(archive).openapi()
    if os.environ.get("YUNYING_UPDATE_OPENAPI") == "1":
        SCHEMA.write_text(json.dumps(current, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    committed = json.loads(SCHEMA.read_text())
    assert committed == json.loads(json.dumps(current)), "run YUNYING_UPDATE_OPENAPI=1 pytest tests/integration/test_openapi.py"


def test_every_operation_has_id_tag_and_auth(archive: Archive) -> None:
    app = create_app(archive)
    schema = app.openapi()
    operation_ids = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            assert op.get("operationId"), (method, path)
            assert op.get("tags"), (method, path)
            operation_ids.append(op["operationId"])
    assert len(operation_ids) == len(set(operation_ids))
    # Authorization is decided in one table: every operation has an entry (a missing one is 403 for all),
    # and the public ones are exactly the deliberate few.
    from yunying.api.policy import PUBLIC, ROUTE_POLICY

    assert set(operation_ids) <= set(ROUTE_POLICY), sorted(set(operation_ids) - set(ROUTE_POLICY))
    public = {op for op in operation_ids if ROUTE_POLICY[op] is PUBLIC}
    phone_pages = {"mobile_home_page", "mobile_open_page", "mobile_exams_page", "mobile_exam_page", "mobile_shares_page",
                   "mobile_access_page", "share_entry_page"}  # one page showing nothing until the API says so
    assert public <= {"home", "healthz", "session_login", "ui_login", "ui_login_submit", "ui_static", "viewer_asset",
                      "share_info", "share_open", "cloudfilm_open", "cloudfilm_code", "cloudfilm_verify",
                      *phone_pages}, public  # decision 0010
