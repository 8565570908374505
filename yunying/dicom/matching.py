"""Attribute matching as defined in PS3.4 §C.2.2.2 (shared by C-FIND and QIDO-RS).

Pure functions: they turn a matching value into a description the index turns into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MatchKind(StrEnum):
    UNIVERSAL = "universal"  # §C.2.2.2.3: empty value matches everything
    SINGLE = "single"  # §C.2.2.2.1
    LIST_OF_UID = "uid-list"  # §C.2.2.2.2
    WILDCARD = "wildcard"  # §C.2.2.2.4: * and ?
    RANGE = "range"  # §C.2.2.2.5: dates and times
    FUZZY = "fuzzy"  # PS3.18 §8.3.4.6 fuzzymatching for PN


@dataclass(frozen=True)
class Match:
    kind: MatchKind
    values: tuple[str, ...] = ()
    low: str | None = None
    high: str | None = None


def parse_match(value: str, vr: str, *, fuzzy: bool = False) -> Match:
    """Classify a matching value for an attribute of value representation ``vr``."""
    value = (value or "").strip()
    if value in ("", "*"):
        return Match(MatchKind.UNIVERSAL)
    if vr == "UI":
        return Match(MatchKind.LIST_OF_UID, tuple(v.strip() for v in value.split("\\") if v.strip()))
    if vr in ("DA", "TM", "DT"):
        return _range(value, vr)
    if vr == "PN" and fuzzy:
        return Match(MatchKind.FUZZY, tuple(w for w in value.replace("^", " ").replace("*", " ").split() if w))
    if "*" in value or "?" in value:
        return Match(MatchKind.WILDCARD, (value,))
    return Match(MatchKind.SINGLE, (value,))


def _normalize(value: str, vr: str) -> str:
    value = value.strip()
    if vr == "DA":
        return value.replace("-", "").replace(".", "")  # tolerate ISO 2024-01-31 and old 2024.01.31
    if vr == "TM":
        return value.replace(":", "")
    return value


def _range(value: str, vr: str) -> Match:
    if "-" in value and not (vr == "DA" and len(value) == 10 and value[4] == "-" and value[7] == "-"):
        low, _, high = value.partition("-")
        low_n = _normalize(low, vr) or None
        high_n = _normalize(high, vr) or None
        if vr == "TM" and high_n is not None:
            high_n = high_n + "\uffff"  # 1000 includes 10:00:59.999
        return Match(MatchKind.RANGE, low=low_n, high=high_n)
    single = _normalize(value, vr)
    if vr == "TM":
        return Match(MatchKind.RANGE, low=single, high=single + "\uffff")
    return Match(MatchKind.SINGLE, (single,))


def wildcard_to_like(pattern: str) -> str:
    """DICOM ``*``/``?`` pattern → SQL LIKE pattern with ``\\`` as the escape character."""
    out = []
    for ch in pattern:
        if ch in ("%", "_", "\\"):
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def like_escape(text: str) -> str:
    return wildcard_to_like(text.replace("*", "\0").replace("?", "\1")).replace("\0", "*").replace("\1", "?")
