"""Person Name normalisation for matching (PS3.5 §6.2.1, PS3.4 C.2.2.2.1)."""

from __future__ import annotations

import re

_SPACES = re.compile(r"\s+")


def normalize_pn(value: object) -> str:
    """Upper-cased PN with all component groups, trailing empty components removed.

    ``Wang^XiaoDong=王^小東`` → ``WANG^XIAODONG=王^小東``.
    """
    if value is None:
        return ""
    text = str(value)
    groups = [g.rstrip("^").strip() for g in text.split("=")]
    while groups and not groups[-1]:
        groups.pop()
    return _SPACES.sub(" ", "=".join(groups)).upper()
