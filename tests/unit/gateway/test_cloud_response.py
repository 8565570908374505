"""Reading a STOW-RS response (PS3.18 §10.5.3): stored, refused for good, or to be retried per instance."""

from __future__ import annotations

from typing import Any

from yunying.gateway.cloud import parse_stow_response

A, B, C, D, E, F = (f"1.2.826.0.1.3680043.9.{n}" for n in range(1, 7))
SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"


def referenced(uid: str) -> dict[str, Any]:
    return {"00081150": {"vr": "UI", "Value": [SOP_CLASS]}, "00081155": {"vr": "UI", "Value": [uid]},
            "00081190": {"vr": "UR", "Value": [f"https://cloud.example/dicom-web/studies/1/series/2/instances/{uid}"]}}


def failed(uid: str, reason: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {"00081150": {"vr": "UI", "Value": [SOP_CLASS]}, "00081155": {"vr": "UI", "Value": [uid]}}
    if reason is not None:
        item["00081197"] = {"vr": "US", "Value": [reason]}
    return item


def response(ok: list[str], bad: list[tuple[str, int | None]]) -> dict[str, Any]:
    body: dict[str, Any] = {"00081190": {"vr": "UR", "Value": ["https://cloud.example/dicom-web/studies/1"]}}
    if ok:
        body["00081199"] = {"vr": "SQ", "Value": [referenced(uid) for uid in ok]}
    if bad:
        body["00081198"] = {"vr": "SQ", "Value": [failed(uid, reason) for uid, reason in bad]}
    return body


def test_every_outcome_in_one_response() -> None:
    body = response([A], [(B, 0xC000), (C, 0xA700), (D, 0x0111)])
    outcome = parse_stow_response(202, body, [A, B, C, D, E])
    assert outcome.http_status == 202
    assert outcome.stored == {A, D}  # 0x0111: the cloud already holds it
    assert set(outcome.refused) == {B}
    assert "0xC000" in outcome.refused[B]
    assert set(outcome.retry) == {C, E}
    assert "0xA700" in outcome.retry[C]
    assert "not confirmed" in outcome.retry[E]


def test_all_stored() -> None:
    outcome = parse_stow_response(200, response([A, B], []), [A, B])
    assert outcome.stored == {A, B} and outcome.refused == {} and outcome.retry == {}


def test_out_of_resources_range_is_retried_and_other_codes_refused() -> None:
    bad: list[tuple[str, int | None]] = [(A, 0xA7FF), (B, 0xA800), (C, 0xA900), (D, 0x0122), (E, None)]
    outcome = parse_stow_response(409, response([], bad), [A, B, C, D, E])
    assert set(outcome.retry) == {A}
    assert set(outcome.refused) == {B, C, D, E}  # no reason given counts as a processing failure
    assert "0xC000" in outcome.refused[E]
    assert outcome.stored == set()


def test_empty_response_means_everything_is_retried() -> None:
    outcome = parse_stow_response(200, {}, [A, B])
    assert outcome.stored == set() and outcome.refused == {}
    assert set(outcome.retry) == {A, B}


def test_items_without_a_uid_are_ignored() -> None:
    body = {"00081199": {"vr": "SQ", "Value": [{"00081150": {"vr": "UI", "Value": [SOP_CLASS]}}]},
            "00081198": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [0xC000]}}]}}
    outcome = parse_stow_response(409, body, [A])
    assert outcome.stored == set() and outcome.refused == {}
    assert set(outcome.retry) == {A}
