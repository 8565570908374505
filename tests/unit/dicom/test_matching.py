"""PS3.4 §C.2.2.2 matching rules as data."""

from __future__ import annotations

import pytest

from yunying.dicom.matching import MatchKind, parse_match, wildcard_to_like
from yunying.dicom.names import normalize_pn


@pytest.mark.parametrize(
    ("value", "vr", "kind"),
    [
        ("", "PN", MatchKind.UNIVERSAL),
        ("*", "LO", MatchKind.UNIVERSAL),
        ("1.2.3\\1.2.4", "UI", MatchKind.LIST_OF_UID),
        ("20200101-20201231", "DA", MatchKind.RANGE),
        ("-20201231", "DA", MatchKind.RANGE),
        ("20200101", "DA", MatchKind.SINGLE),
        ("2020-01-01", "DA", MatchKind.SINGLE),
        ("0800-1000", "TM", MatchKind.RANGE),
        ("WANG*", "PN", MatchKind.WILDCARD),
        ("AB?D", "LO", MatchKind.WILDCARD),
        ("CT", "CS", MatchKind.SINGLE),
    ],
)
def test_classification(value: str, vr: str, kind: MatchKind) -> None:
    assert parse_match(value, vr).kind is kind


def test_date_range_bounds_and_iso_form() -> None:
    m = parse_match("20200101-", "DA")
    assert (m.low, m.high) == ("20200101", None)
    assert parse_match("2020-01-31", "DA").values == ("20200131",)


def test_time_range_upper_bound_includes_the_whole_minute() -> None:
    m = parse_match("0800-1000", "TM")
    assert m.low == "0800"
    assert m.high is not None and m.high > "100059.99"


def test_wildcards_escape_sql_metacharacters() -> None:
    assert wildcard_to_like("A%B_C*?") == "A\\%B\\_C%_"


def test_fuzzy_pn_splits_words() -> None:
    assert parse_match("wang^xiao", "PN", fuzzy=True).values == ("wang", "xiao")


def test_pn_normalisation_keeps_groups_and_drops_trailing_empties() -> None:
    assert normalize_pn("Wang^XiaoDong=王^小東") == "WANG^XIAODONG=王^小東"
    assert normalize_pn("Doe^John^^^") == "DOE^JOHN"
    assert normalize_pn("Doe^John==") == "DOE^JOHN"
