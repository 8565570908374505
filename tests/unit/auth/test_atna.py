"""DICOM audit messages (PS3.15 A.5) and their RFC 5424 syslog frames, built from audit entries."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from yunying.auth.atna import EVENTS, audit_message, event_of, parse_target, syslog_frame
from yunying.auth.audit import GENESIS, Entry

STUDY = "1.2.840.113619.2.55.3.604688119.971.1"


def entry(**changes: object) -> Entry:
    fields: dict[str, object] = {
        "seq": 3, "at": datetime(2026, 11, 28, 2, 0, 0, 5, tzinfo=UTC), "actor": "alice", "actor_institution": "HOSP-A",
        "actor_role": "radiologist", "action": "retrieve", "subject": STUDY, "source": "10.1.2.3", "outcome": "success",
        "detail": "PatientName=ZHANG^SAN 3 instance(s)", "prev_hash": GENESIS, "hash": "a" * 64}
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def parsed(e: Entry) -> ET.Element:
    return ET.fromstring(audit_message(e, source_id="YUNYING"))


def code(element: ET.Element | None) -> tuple[str | None, ...]:
    assert element is not None
    return element.get("csd-code"), element.get("codeSystemName"), element.get("originalText")


def test_retrieve_is_instances_transferred_with_the_study_uid_and_no_detail() -> None:
    raw = audit_message(entry(), source_id="YUNYING")
    assert b"ZHANG" not in raw and b"PatientName" not in raw  # detail never leaves
    root = ET.fromstring(raw)
    ident = root.find("EventIdentification")
    assert ident is not None
    assert (ident.get("EventActionCode"), ident.get("EventOutcomeIndicator"), ident.get("EventDateTime")) == \
        ("R", "0", "2026-11-28T02:00:00.000005Z")
    assert code(ident.find("EventID")) == ("110104", "DCM", "DICOM Instances Transferred")
    user, archive = root.findall("ActiveParticipant")
    assert (user.get("UserID"), user.get("UserIsRequestor"), user.get("NetworkAccessPointID"),
            user.get("NetworkAccessPointTypeCode"), user.get("AlternativeUserID")) == \
        ("alice", "true", "10.1.2.3", "2", "radiologist")
    assert code(user.find("RoleIDCode"))[0] == "110152" and code(archive.find("RoleIDCode"))[0] == "110153"
    assert (archive.get("UserID"), archive.get("UserIsRequestor")) == ("YUNYING", "false")
    source = root.find("AuditSourceIdentification")
    assert source is not None and (source.get("AuditSourceID"), source.get("AuditEnterpriseSiteID")) == ("YUNYING", "HOSP-A")
    (obj,) = root.findall("ParticipantObjectIdentification")
    assert (obj.get("ParticipantObjectID"), obj.get("ParticipantObjectTypeCode"), obj.get("ParticipantObjectTypeCodeRole")) \
        == (STUDY, "2", "3")
    assert code(obj.find("ParticipantObjectIDTypeCode")) == ("110180", "DCM", "Study Instance UID")


@pytest.mark.parametrize("action, outcome, event_id, action_code, type_code, indicator", [
    ("query", "success", "110112", "E", None, "0"),
    ("view", "success", "110103", "R", None, "0"),
    ("store", "partial", "110104", "C", None, "4"),
    ("login", "failed", "110114", "E", "110122", "4"),
    ("login-locked", "refused", "110114", "E", "110122", "8"),
    ("denied", "refused", "110113", "E", "110132", "8"),
    ("grant", "success", "110113", "U", "110135", "0"),
    ("revoke-grant", "not-found", "110113", "U", "110135", "4"),
    ("audit-read", "success", "110101", "R", None, "0"),
    ("user-create", "success", "110113", "U", "110137", "0"),  # by prefix
    ("something-new", "weird", "110100", "E", None, "4"),  # fallback
])
def test_actions_map_to_dicom_events(action: str, outcome: str, event_id: str, action_code: str, type_code: str | None,
                                     indicator: str) -> None:
    ident = parsed(entry(action=action, outcome=outcome)).find("EventIdentification")
    assert ident is not None
    assert (code(ident.find("EventID"))[0], ident.get("EventActionCode"), ident.get("EventOutcomeIndicator")) == \
        (event_id, action_code, indicator)
    found = ident.find("EventTypeCode")
    assert (found.get("csd-code") if found is not None else None) == type_code


def test_every_listed_event_uses_dcm_codes_and_a_valid_action_code() -> None:
    for name, event in EVENTS.items():
        assert event.event.system == "DCM" and event.event.code.startswith("1101"), name
        assert event.action in "CRUDE", name
        assert event_of(name) is event


def test_only_uids_and_query_labels_become_participant_objects() -> None:
    assert parsed(entry(subject="QIDO STUDY", action="query")).find("ParticipantObjectIdentification") is not None
    query = parsed(entry(subject="QIDO STUDY", action="query")).find("ParticipantObjectIdentification")
    assert query is not None and query.get("ParticipantObjectTypeCodeRole") == "24"
    two = parsed(entry(subject=f"{STUDY},1.2.3", action="store")).findall("ParticipantObjectIdentification")
    assert [o.get("ParticipantObjectID") for o in two] == [STUDY, "1.2.3"]
    for subject in ("ZHANG^SAN", "12", "P123456", "1.2.3.abc", "1." + "2" * 70, "QIDO STUDY PatientName=X"):
        assert parsed(entry(subject=subject)).find("ParticipantObjectIdentification") is None, subject


def test_hostile_text_is_escaped_and_kept_well_formed() -> None:
    nasty = '<script>&"\'\x01\x1b]0;x\x07'
    root = parsed(entry(actor=nasty, source="not an address <>", actor_role="r\x00"))
    user = root.find("ActiveParticipant")
    assert user is not None and user.get("UserID") == "<script>&\"'\ufffd\ufffd]0;x\ufffd"
    assert user.get("NetworkAccessPointID") is None  # not an address: left out


@pytest.mark.parametrize("source, expected", [("10.0.0.1", ("10.0.0.1", "2")), ("10.0.0.1:11112", ("10.0.0.1", "2")),
                                              ("::1", ("::1", "2")), ("pacs.hosp-a.cn", ("pacs.hosp-a.cn", "1")),
                                              ("-", None), ("", None)])
def test_network_access_point(source: str, expected: tuple[str, str] | None) -> None:
    user = parsed(entry(source=source)).find("ActiveParticipant")
    assert user is not None
    got = (user.get("NetworkAccessPointID"), user.get("NetworkAccessPointTypeCode"))
    assert got == (expected if expected else (None, None))


def test_syslog_frame_is_rfc5424_with_bom_and_authpriv() -> None:
    frame = syslog_frame(b"<AuditMessage/>", entry(), hostname="node 1")
    header, _, message = frame.partition(b"\xef\xbb\xbf")
    pri, timestamp, host, app, procid, msgid, structured, rest = header.decode().split(" ")
    assert (pri, timestamp, host, app, msgid, structured, rest) == \
        ("<85>1", "2026-11-28T02:00:00.000005Z", "node1", "yunying", "IHE+RFC-3881", "-", "")
    assert procid.isdigit() and message == b"<AuditMessage/>"
    assert syslog_frame(b"x", entry(outcome="refused"), hostname="h").startswith(b"<84>1 ")


def test_syslog_targets() -> None:
    assert parse_target("udp://collector:514") == parse_target("udp://collector")
    assert parse_target("tcp://[::1]:6514").host == "::1"
    for bad in ("syslog://x:514", "tcp://:514", "udp://x:99999", "tcp://x:514/path", "x:514"):
        with pytest.raises(ValueError, match="YUNYING_AUDIT_SYSLOG"):
            parse_target(bad)
