"""ORU^R01 → report version and the ACK, without a network or database (yunying.reports.oru)."""

from __future__ import annotations

import pytest

from tests.reports.messages import oru
from yunying.reports import oru as hl7oru
from yunying.reports.mllp import decode
from yunying.reports.service import NEXT, ReportConflict, Source, Status, _next_status


def test_fields_read_from_the_message() -> None:
    message = hl7oru.parse(oru("C1", "ACC-9", "C", study_uid="1.2.3.4", findings="Line one~Line two"))
    head = hl7oru.header(message)
    hl7oru.check_header(head)
    report = hl7oru.to_report(message, institution_id=7)
    assert (head.facility_id, head.control_id, head.version) == ("RIS_A", "C1", "2.5")
    assert report.status is Status.AMENDED and report.source is Source.HL7 and report.institution_id == 7
    assert (report.accession_number, report.study_uid, report.patient_id) == ("ACC-9", "1.2.3.4", "PIDSENTINEL4711")
    assert report.findings == "Line one\nLine two" and report.impression == "Normal chest."
    assert report.author == "Wang Wei (D001)" and report.source_ref == "RIS_A:C1"
    assert report.observed_at is not None and report.observed_at.isoformat() == "2026-11-22T02:10:00+00:00"


@pytest.mark.parametrize(("message", "ack", "code"), [
    (oru("X", "A", with_obr=False), hl7oru.Ack.ERROR, "101"),
    (oru("X", "A", status="I"), hl7oru.Ack.ERROR, "101"),
    (oru("X", "A", message_type="ORM^O01"), hl7oru.Ack.REJECT, "200"),
    (oru("X", "A", message_type="ORU^R30"), hl7oru.Ack.REJECT, "201"),
    (oru("X", "A", version="3.0"), hl7oru.Ack.REJECT, "203"),
    ("PID|1||X", hl7oru.Ack.REJECT, "101"),
])
def test_refusals(message: str, ack: hl7oru.Ack, code: str) -> None:
    with pytest.raises(hl7oru.OruError) as caught:
        parsed = hl7oru.parse(message)
        hl7oru.check_header(hl7oru.header(parsed))
        hl7oru.to_report(parsed, 1)
    assert (caught.value.ack, caught.value.code) == (ack, code)


def test_ack_swaps_sender_and_receiver_and_echoes_the_control_id() -> None:
    head = hl7oru.header(hl7oru.parse(oru("CTRL-77", "A")))
    segments = hl7oru.ack(head, hl7oru.Ack.ACCEPT).strip("\r").split("\r")
    msh, msa = segments[0].split("|"), segments[1].split("|")
    assert msh[2:6] == ["YUNYING", "CLOUD", "RIS", "RIS_A"] and msh[8] == "ACK^R01^ACK" and msh[11] == "2.5"
    assert msa[:3] == ["MSA", "AA", "CTRL-77"] and len(segments) == 2
    refused = hl7oru.ack(head, hl7oru.Ack.ERROR, "no OBR | segment", hl7oru.ERR_REQUIRED_FIELD_MISSING)
    assert "\rMSA|AE|CTRL-77|no OBR   segment\rERR|||101^" in refused


def test_charset_from_msh_18() -> None:
    text = oru("C", "A", findings="右肺上叶结节").replace("UNICODE UTF-8", "GB 18030-2000")
    assert "右肺上叶结节" in decode(text.encode("gb18030"))
    assert "右肺上叶结节" in decode(oru("C", "A", findings="右肺上叶结节").encode("utf-8"))


def test_workflow_table() -> None:
    assert _next_status(Status.FINAL, Status.FINAL) is Status.AMENDED
    assert _next_status(Status.PRELIMINARY, Status.FINAL) is Status.FINAL
    with pytest.raises(ReportConflict):
        _next_status(Status.FINAL, Status.PRELIMINARY)
    assert NEXT[Status.CANCELLED] == frozenset()
