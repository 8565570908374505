"""HL7 v2 ORU^R01 over MLLP into a real ``yunying serve``, sent by python-hl7's ``mllp_send`` (both databases).

Proves: AA only after the report is stored, MSA-2 echoes MSH-10 and the ACK's MSH swaps sender and
receiver; preliminary → final → corrected gives one report with three versions, linked to the study
loaded first; a resend of the same control id adds nothing; content errors answer AE, unknown
facilities and other message types/versions AR; a report that arrives before its images is linked
when the study arrives; patient identifiers stay out of the server log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.reports.messages import PATIENT_ID, PATIENT_NAME, ack_lines, oru, send
from tests.security.conftest import stow
from tests.support.gateway_data import make_study
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def hl7_server(server_factory: Callable[..., ServerProcess]) -> tuple[ServerProcess, int]:
    port = free_port()
    server = server_factory(YUNYING_HL7_PORT=str(port), YUNYING_HL7_FACILITIES=json.dumps({"RIS_A": "default"}))
    return server, port


def _reports(server: ServerProcess, **params: str) -> list[dict[str, object]]:
    response = httpx.get(server.url + "/api/reports", params=params, headers=server.admin_headers, timeout=30)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def _history(server: ServerProcess, report_id: object) -> dict[str, object]:
    response = httpx.get(f"{server.url}/api/reports/{report_id}/history", headers=server.admin_headers, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_oru_versions_acks_and_linking(hl7_server: tuple[ServerProcess, int], tmp_path: Path) -> None:
    server, port = hl7_server
    study = make_study(tmp_path / "cxr", 2, accession="ACC-HL7-1")
    assert stow(server, server.admin_headers, study.files).status_code == 200

    acks = send(port, [oru("CTL-P", "ACC-HL7-1", "P", findings="Preliminary look."),
                       oru("CTL-F", "ACC-HL7-1", "F"),
                       oru("CTL-C", "ACC-HL7-1", "C", impression="Normal chest; corrected side.")], tmp_path)
    assert acks == [("AA", "CTL-P"), ("AA", "CTL-F"), ("AA", "CTL-C")]
    [report] = _reports(server, accession="ACC-HL7-1")
    assert report["linked"] is True and report["study_uid"] == study.study_uid and report["status"] == "amended"
    history = _history(server, report["id"])
    versions = history["versions"]
    assert isinstance(versions, list)
    assert [v["status"] for v in versions] == ["preliminary", "final", "amended"]
    assert versions[0]["findings"] == "Preliminary look."
    assert versions[1]["findings"] == "No acute cardiopulmonary process." and versions[1]["impression"] == "Normal chest."
    assert versions[1]["author"] == "Wang Wei (D001)" and versions[1]["source"] == "hl7"
    assert versions[2]["impression"] == "Normal chest; corrected side."

    # The same message again (its ACK was lost): acknowledged, nothing added.
    assert send(port, [oru("CTL-F", "ACC-HL7-1", "F")], tmp_path) == [("AA", "CTL-F")]
    assert len(_history(server, report["id"])["versions"]) == 3  # type: ignore[arg-type]

    # The ACK's header swaps sender and receiver.
    raw = ack_lines(port, oru("CTL-X", "ACC-HL7-1", "C"), tmp_path)
    assert "MSH|^~\\&|YUNYING|CLOUD|RIS|RIS_A|" in raw and "ACK^R01^ACK" in raw

    log = server.log()
    assert PATIENT_ID not in log and PATIENT_NAME.split("^")[0] not in log


def test_errors_answer_ae_and_ar_and_a_report_before_images_is_linked_later(
        hl7_server: tuple[ServerProcess, int], tmp_path: Path) -> None:
    server, port = hl7_server
    acks = send(port, [
        oru("BAD-1", "ACC-E", with_obr=False),  # no OBR: content error
        oru("BAD-2", "ACC-E", status="Q"),  # not a result status
        oru("BAD-3", "ACC-E", facility="UNKNOWN_RIS"),  # facility not registered
        oru("BAD-4", "ACC-E", message_type="ADT^A01"),  # not an ORU
        oru("BAD-5", "ACC-E", version="3.0"),
    ], tmp_path)
    assert acks == [("AE", "BAD-1"), ("AE", "BAD-2"), ("AR", "BAD-3"), ("AR", "BAD-4"), ("AR", "BAD-5")]
    assert _reports(server, accession="ACC-E") == []
    assert "ERR|||101^" in ack_lines(port, oru("BAD-6", "ACC-E", with_obr=False), tmp_path)

    # A report before its images: stored unlinked (AA), linked when the study arrives.
    assert send(port, [oru("EARLY-1", "ACC-EARLY")], tmp_path) == [("AA", "EARLY-1")]
    [report] = _reports(server, accession="ACC-EARLY")
    assert report["linked"] is False and report["study_uid"] == ""
    study = make_study(tmp_path / "late", 1, accession="ACC-EARLY")
    assert stow(server, server.admin_headers, study.files).status_code == 200
    [report] = _reports(server, accession="ACC-EARLY")
    assert report["linked"] is True and report["study_uid"] == study.study_uid
    assert _reports(server, study=study.study_uid)[0]["id"] == report["id"]
