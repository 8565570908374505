"""docs/security.md stays true: its role/permission table is the one in the code."""

from __future__ import annotations

from pathlib import Path

from yunying.auth.access import permissions_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_permission_table_in_the_docs_is_the_code_s() -> None:
    assert permissions_table() in DOC.read_text(encoding="utf-8"), "regenerate the table in docs/security.md"
