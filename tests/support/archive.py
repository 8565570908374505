"""Helpers for tests that use an Archive in-process."""

from __future__ import annotations

from yunying.auth.credentials import institution_id
from yunying.compose import Archive


def default_institution(archive: Archive) -> int:
    """The institution migration 0003 creates for data loaded without one."""
    return institution_id(archive.sessions, "default")
