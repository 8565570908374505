"""Priority lanes and the rules that class an instance into one (emergency always first)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from pydicom.datadict import keyword_dict
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


class Lane(IntEnum):
    """Upload order: a lower value always goes first."""

    EMERGENCY = 0
    ROUTINE = 1
    BACKFILL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class LaneRule:
    """``lane`` applies when every ``(keyword, glob)`` condition matches (case-insensitive)."""

    lane: Lane
    conditions: tuple[tuple[str, str], ...]

    def matches(self, ds: Dataset) -> bool:
        for keyword, pattern in self.conditions:
            value = ds.get(keyword)  # a keyword gives the element's value, not the element
            if value is None:
                text = ""
            elif isinstance(value, MultiValue):  # as DICOM writes it: "DERIVED\\SECONDARY"
                text = "\\".join(str(v) for v in value)
            else:
                text = str(value)
            if not fnmatch.fnmatchcase(text.upper(), pattern.upper()):
                return False
        return True


def parse_lane_rules(specs: Sequence[str]) -> list[LaneRule]:
    """Parse ``"emergency:AccessionNumber=JZ*&Modality=CT"``; errors name the bad part."""
    rules: list[LaneRule] = []
    for spec in specs:
        lane_name, sep, body = spec.partition(":")
        if not sep or not body:
            raise ValueError(f"lane rule {spec!r} is not <lane>:<Keyword>=<glob>")
        try:
            lane = Lane[lane_name.strip().upper()]
        except KeyError as exc:
            raise ValueError(f"lane rule {spec!r}: unknown lane {lane_name!r} (emergency, routine, backfill)") from exc
        conditions: list[tuple[str, str]] = []
        for clause in body.split("&"):
            keyword, eq, pattern = clause.partition("=")
            keyword = keyword.strip()
            if not eq or keyword not in keyword_dict:
                raise ValueError(f"lane rule {spec!r}: {clause!r} is not <DICOM keyword>=<glob>")
            conditions.append((keyword, pattern.strip()))
        rules.append(LaneRule(lane, tuple(conditions)))
    return rules


class LaneClassifier:
    """First matching rule wins; otherwise ``default`` (routine for live traffic)."""

    def __init__(self, rules: Sequence[LaneRule]) -> None:
        self.rules = list(rules)

    def classify(self, ds: Dataset, default: Lane = Lane.ROUTINE) -> Lane:
        for rule in self.rules:
            if rule.matches(ds):
                return rule.lane
        return default
