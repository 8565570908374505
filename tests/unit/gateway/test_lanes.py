"""Lane rules: parsing errors name the bad part; matching is a case-insensitive glob; first match wins."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from yunying.gateway.lanes import Lane, LaneClassifier, parse_lane_rules

DATA = Path("/work/shared/dicom")


def dataset(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def classify(specs: list[str], ds: Dataset, default: Lane = Lane.ROUTINE) -> Lane:
    return LaneClassifier(parse_lane_rules(specs)).classify(ds, default)


@pytest.mark.parametrize(("spec", "names"), [
    ("urgent:Modality=CT", "unknown lane 'urgent'"),
    ("emergency:NotAKeyword=CT", "'NotAKeyword=CT'"),
    ("emergency:modality=CT", "'modality=CT'"),  # DICOM keywords are case-sensitive
    ("emergency:Modality", "'Modality'"),
    ("emergency:Modality=CT&AccessionNumber", "'AccessionNumber'"),
    ("emergency", "is not <lane>:<Keyword>=<glob>"),
    ("emergency:", "is not <lane>:<Keyword>=<glob>"),
])
def test_bad_rules_are_refused_naming_the_bad_part(spec: str, names: str) -> None:
    with pytest.raises(ValueError, match="lane rule") as caught:
        parse_lane_rules([spec])
    assert names in str(caught.value)


def test_parsing_tolerates_spaces_and_lane_case() -> None:
    [rule] = parse_lane_rules([" Emergency : Modality = CT & AccessionNumber=JZ* "])
    assert rule.lane is Lane.EMERGENCY
    assert rule.conditions == (("Modality", "CT"), ("AccessionNumber", "JZ*"))


def test_glob_matching_is_case_insensitive() -> None:
    rules = ["emergency:AccessionNumber=jz*"]
    assert classify(rules, dataset(AccessionNumber="JZ20240101")) is Lane.EMERGENCY
    assert classify(rules, dataset(AccessionNumber="jz1")) is Lane.EMERGENCY
    assert classify(rules, dataset(AccessionNumber="MZ1")) is Lane.ROUTINE
    assert classify(rules, dataset(AccessionNumber="XJZ1")) is Lane.ROUTINE  # anchored, not a substring search
    assert classify(["backfill:StudyDescription=*head?ct*"], dataset(StudyDescription="Plain HEAD-CT")) is Lane.BACKFILL


def test_all_conditions_must_match() -> None:
    rules = ["emergency:AccessionNumber=JZ*&Modality=CT"]
    assert classify(rules, dataset(AccessionNumber="JZ1", Modality="CT")) is Lane.EMERGENCY
    assert classify(rules, dataset(AccessionNumber="JZ1", Modality="MR")) is Lane.ROUTINE
    assert classify(rules, dataset(AccessionNumber="A1", Modality="CT")) is Lane.ROUTINE
    assert classify(rules, dataset(Modality="CT")) is Lane.ROUTINE  # a missing attribute is empty


def test_first_matching_rule_wins() -> None:
    ds = dataset(Modality="CT", AccessionNumber="JZ1")
    assert classify(["backfill:Modality=CT", "emergency:AccessionNumber=JZ*"], ds) is Lane.BACKFILL
    assert classify(["emergency:AccessionNumber=JZ*", "backfill:Modality=CT"], ds) is Lane.EMERGENCY
    assert classify(["backfill:Modality=MR", "emergency:AccessionNumber=JZ*"], ds) is Lane.EMERGENCY


def test_default_when_nothing_matches() -> None:
    ds = dataset(Modality="US")
    assert classify([], ds) is Lane.ROUTINE
    assert classify(["emergency:Modality=CT"], ds) is Lane.ROUTINE
    assert classify(["emergency:Modality=CT"], ds, default=Lane.BACKFILL) is Lane.BACKFILL


def test_multi_valued_and_person_name_values_match_as_dicom_writes_them() -> None:
    ds = dataset(ImageType=["DERIVED", "SECONDARY", "AXIAL"], PatientName="Wang^XiaoDong")
    assert classify(["backfill:ImageType=DERIVED\\*"], ds) is Lane.BACKFILL
    assert classify(["backfill:ImageType=*\\SECONDARY\\*"], ds) is Lane.BACKFILL
    assert classify(["backfill:ImageType=ORIGINAL*"], ds) is Lane.ROUTINE
    assert classify(["emergency:PatientName=wang^*"], ds) is Lane.EMERGENCY


def test_rules_on_a_real_instance() -> None:
    path = DATA / "ct_abdomen_pancreas_tcia" / "1-001.dcm"
    if not path.is_file():
        pytest.skip("shared DICOM test data not available")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.Modality == "CT"
    assert classify(["emergency:Modality=ct&PatientID=Pancreas-CT-*"], ds) is Lane.EMERGENCY
    assert classify(["emergency:Modality=MR"], ds) is Lane.ROUTINE
