"""The audit trail for auditors and collectors, on SQLite and PostgreSQL: the search and export API
(audit:read only, itself audited), ``yunying audit verify|export``, and ATNA messages over real
UDP and TCP syslog sockets."""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import text

from tests.support.server import ServerProcess
from yunying.api.app import create_app
from yunying.auth.audit import AuditRecord, configure, record, record_many, search
from yunying.auth.audit_verify import verify_chain
from yunying.auth.credentials import create_token, create_user, institution_id
from yunying.cli import main
from yunying.compose import Archive

PASSWORD = "Yy-audit-Pass-0123"
STUDY_A = "1.2.826.0.1.3680043.8.498.1"
STUDY_B = "1.2.826.0.1.3680043.8.498.2"


@pytest.fixture
def filled(archive: Archive) -> Archive:
    """A trail of 30 entries by three actors, plus users: an auditor and a radiologist with tokens."""
    records = []
    for i in range(30):
        subject = STUDY_A if i % 3 == 0 else f"{STUDY_A},{STUDY_B}" if i % 3 == 1 else "QIDO STUDY"
        records.append(AuditRecord(f"user{i % 3}", ["retrieve", "store", "query"][i % 3], subject, "10.0.0.7",
                                   "success" if i % 5 else "refused", f"n{i}", "default", "radiologist"))
    record_many(archive.sessions, records)
    record(archive.sessions, actor="=HYPERLINK(\"http://x\")", action="login", outcome="failed", source="10.6.6.6")
    default = institution_id(archive.sessions, "default")
    create_user(archive.sessions, "auditor1", PASSWORD, "auditor", institution=default)
    create_user(archive.sessions, "rad1", PASSWORD, "radiologist", institution=default)
    return archive


@pytest.fixture
def client(filled: Archive) -> Iterator[TestClient]:
    with TestClient(create_app(filled)) as c:
        yield c


def bearer(archive: Archive, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(archive.sessions, user, f'{user}-token')}"}


# --- search and export API -----------------------------------------------------------------------------------------


def test_only_auditors_read_the_trail(filled: Archive, client: TestClient) -> None:
    for path in ("/api/audit", "/api/audit/export"):
        assert client.get(path).status_code == 401
        refused = client.get(path, headers=bearer(filled, "rad1"))
        assert refused.status_code == 403 and "user" not in refused.text
    assert client.get("/api/audit", headers=bearer(filled, "auditor1")).status_code == 200


def test_search_filters_pages_and_is_itself_audited(filled: Archive, client: TestClient) -> None:
    auth = bearer(filled, "auditor1")
    page = client.get("/api/audit", headers=auth, params={"limit": 5}).json()
    assert page["total"] == 31 and page["limit"] == 5 and page["offset"] == 0
    assert [item["seq"] for item in page["items"]] == [31, 30, 29, 28, 27]  # newest first
    first = page["items"][-1]
    assert set(first) == {"seq", "at", "actor", "actor_institution", "actor_role", "action", "subject", "source", "outcome",
                          "detail", "prev_hash", "hash"}
    assert first["at"].endswith("Z") or first["at"].endswith("+00:00")

    def total(**params: str) -> int:
        answer = client.get("/api/audit", headers=auth, params=params)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["total"])

    assert total(actor="user1") == 10 and total(action="query") == 10 and total(outcome="refused") == 6
    assert total(subject=STUDY_B) == 10 and total(subject=STUDY_A) == 20  # also where several studies are named
    assert total(subject="1.2.826.0.1.3680043.8.498.%") == 0  # no wildcards
    assert total(actor="user1", action="store", outcome="success") == 8
    assert total(institution="default", action="retrieve") == 10
    now = datetime.now(UTC)
    assert total(**{"from": (now - timedelta(minutes=5)).isoformat(), "to": (now + timedelta(minutes=5)).isoformat()}) >= 31
    assert total(to=(now - timedelta(days=1)).isoformat()) == 0
    pages = [client.get("/api/audit", headers=auth, params={"action": "retrieve", "limit": 5, "offset": o}).json()
             for o in (0, 5, 10)]
    assert [[i["seq"] for i in p["items"]] for p in pages] == [[28, 25, 22, 19, 16], [13, 10, 7, 4, 1], []]

    reads = search(filled.sessions, _filter(action="audit-read"), limit=100).items
    assert len(reads) >= 12 and {r.actor for r in reads} == {"auditor1"}
    assert (reads[0].actor_role, reads[0].actor_institution, reads[0].subject) == ("auditor", "default", "audit-trail")
    assert reads[0].detail == 'search {"action": "retrieve"} limit 5 offset 10: 0 of 10'
    assert verify_chain(filled.sessions).ok


def test_invalid_parameters_answer_422(filled: Archive, client: TestClient) -> None:
    auth = bearer(filled, "auditor1")
    for params in ({"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}, {"from": "2026-11-28T10:00:00"}, {"to": "yesterday"},
                   {"actor": "x" * 201}, {"institution": ""}, {"format": "pdf"}):
        path = "/api/audit/export" if "format" in params else "/api/audit"
        answer = client.get(path, headers=auth, params=params)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", (params, answer.text)
        assert answer.json()["errors"], params


def test_csv_export_streams_every_match_oldest_first(filled: Archive, client: TestClient) -> None:
    answer = client.get("/api/audit/export", headers=bearer(filled, "auditor1"), params={"format": "csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["seq"]) for r in rows] == list(range(1, 33))
    assert rows[31]["action"] == "audit-read"  # this export itself, recorded before it streamed
    assert rows[30]["actor"] == "'=HYPERLINK(\"http://x\")"  # never a formula in a spreadsheet
    assert rows[0]["prev_hash"] == "0" * 64 and rows[1]["prev_hash"] == rows[0]["hash"]
    assert rows[0]["at"].endswith("Z") and len(rows[0]["at"]) == len("2026-11-28T02:00:00.000000Z")
    filtered = client.get("/api/audit/export", headers=bearer(filled, "auditor1"), params={"actor": "user2"})
    assert len(list(csv.DictReader(io.StringIO(filtered.text)))) == 10
    last = search(filled.sessions, _filter(action="audit-read"), limit=1).items[0]
    assert last.detail.startswith('export csv {"actor": "user2"}: 10')


def test_xlsx_export_keeps_text_as_text(filled: Archive, client: TestClient) -> None:
    answer = client.get("/api/audit/export", headers=bearer(filled, "auditor1"), params={"format": "xlsx", "action": "login"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("seq", "at", "actor") and len(rows) == 2
    assert rows[1][2] == "=HYPERLINK(\"http://x\")" and sheet.cell(2, 3).data_type == "s"


# --- the command line ----------------------------------------------------------------------------------------------


@pytest.fixture
def cli(filled: Archive, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    monkeypatch.setenv("YUNYING_DATABASE_URL", filled.settings.effective_database_url)

    def run(*args: str) -> tuple[int, str]:
        code = main([*args[:2], "--data-dir", str(filled.settings.data_dir), *args[2:]])
        return code, capsys.readouterr().out

    return run


def test_cli_verify_names_the_broken_seq(filled: Archive, cli: Callable[..., tuple[int, str]]) -> None:
    code, out = cli("audit", "verify")
    assert code == 0 and out.startswith("audit chain OK: 31 entries verified (sha256); head 31:")
    anchor = out.split("head ", 1)[1].split(" ", 1)[0]
    assert cli("audit", "verify", "--anchor", anchor)[0] == 0
    with filled.engine.begin() as conn:
        if filled.engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_event_no_update"))
        conn.execute(text("UPDATE audit_event SET subject = '1.2.3' WHERE seq = 12"))
    code, out = cli("audit", "verify")
    assert code == 1 and out.startswith("audit chain BROKEN at seq 12 (modified):"), out
    verifications = search(filled.sessions, _filter(action="audit-verify"), limit=10).items
    assert [v.outcome for v in verifications] == ["broken", "success", "success"]
    assert verifications[0].actor.startswith("cli:")


def test_cli_export_csv_and_xlsx(filled: Archive, cli: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    code, out = cli("audit", "export", "--format", "csv", "--action", "store", "--from", "2000-01-01")
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 10
    target = tmp_path / "audit.xlsx"
    code, out = cli("audit", "export", "--format", "xlsx", "--actor", "user0", "-o", str(target))
    assert code == 0 and out.strip() == f"10 entries written to {target}"
    rows = list(load_workbook(target).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert len(rows) == 11 and {r[2] for r in rows[1:]} == {"user0"}
    with pytest.raises(SystemExit, match="needs -o FILE"):
        cli("audit", "export", "--format", "xlsx")
    reads = search(filled.sessions, _filter(action="audit-read"), limit=10).items
    assert [r.detail.split(" ", 2)[:2] for r in reads] == [["export", "xlsx"], ["export", "csv"]]


def _filter(**kwargs: str) -> object:
    from yunying.auth.audit import AuditFilter

    return AuditFilter(**kwargs)  # type: ignore[arg-type]


# --- ATNA over syslog -------------------------------------------------------------------------------------------------


def parse_syslog(frame: bytes) -> tuple[list[str], ET.Element]:
    header, bom, message = frame.partition(b"\xef\xbb\xbf")
    assert bom, frame[:80]
    return header.decode("ascii").split(" "), ET.fromstring(message)


def event_id(root: ET.Element) -> str:
    found = root.find("EventIdentification/EventID")
    assert found is not None
    return str(found.get("csd-code"))


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


class TcpCollector:
    """A syslog-over-TCP receiver (RFC 6587 octet counting) on a thread."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.frames: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        buffer = b""
        with conn:
            while chunk := conn.recv(65536):
                buffer += chunk
                while b" " in buffer:
                    length, _, rest = buffer.partition(b" ")
                    if len(rest) < int(length):
                        break
                    self.frames.append(rest[:int(length)])
                    buffer = rest[int(length):]

    def wait(self, count: int, timeout: float = 20.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.frames

    def close(self) -> None:
        self.server.close()


def test_udp_syslog_carries_the_dicom_audit_message(archive: Archive, udp: socket.socket) -> None:
    configure(archive.sessions, syslog=f"udp://127.0.0.1:{udp.getsockname()[1]}", source_id="YUNYING")
    record(archive.sessions, actor="alice", action="retrieve", subject=STUDY_A, source="10.1.2.3",
           detail="PatientName=SENTINEL^PATIENT", institution="HOSP-A", role="radiologist")
    frame, _ = udp.recvfrom(65536)
    header, root = parse_syslog(frame)
    assert header[0] == "<85>1" and header[5] == "IHE+RFC-3881"
    assert event_id(root) == "110104" and b"SENTINEL" not in frame
    obj = root.find("ParticipantObjectIdentification")
    assert obj is not None and obj.get("ParticipantObjectID") == STUDY_A
    user = root.find("ActiveParticipant")
    assert user is not None and (user.get("UserID"), user.get("NetworkAccessPointID")) == ("alice", "10.1.2.3")


def test_tcp_syslog_uses_octet_counting_and_keeps_order(archive: Archive) -> None:
    collector = TcpCollector()
    try:
        configure(archive.sessions, syslog=f"tcp://127.0.0.1:{collector.port}")
        record_many(archive.sessions, [AuditRecord("bob", action, STUDY_B) for action in ("query", "view", "store")])
        record(archive.sessions, actor="eve", action="login", outcome="failed", source="10.9.9.9")
        frames = collector.wait(4)
    finally:
        collector.close()
    assert [event_id(parse_syslog(f)[1]) for f in frames] == ["110112", "110103", "110104", "110114"]
    assert parse_syslog(frames[3])[0][0] == "<84>1"  # a failure: severity warning


def test_a_dead_collector_never_slows_or_fails_the_caller_and_tcp_catches_up(archive: Archive) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(archive.sessions, syslog=f"tcp://127.0.0.1:{port}")
    started = time.monotonic()
    for i in range(20):
        record(archive.sessions, actor="carol", action="view", subject=f"1.2.3.{i}")
    assert time.monotonic() - started < 5.0
    assert verify_chain(archive.sessions).checked == 20
    collector = TcpCollector(port)  # the collector comes back: nothing was lost
    try:
        frames = collector.wait(20, timeout=40)
    finally:
        collector.close()
    subjects = [o.get("ParticipantObjectID") for f in frames for o in parse_syslog(f)[1].iter("ParticipantObjectIdentification")]
    assert subjects == [f"1.2.3.{i}" for i in range(20)]


def test_the_server_sends_atna_for_a_qido_query(server_factory: Callable[..., ServerProcess], udp: socket.socket) -> None:
    server = server_factory(YUNYING_AUDIT_SYSLOG=f"udp://127.0.0.1:{udp.getsockname()[1]}")
    answer = httpx.get(server.dicomweb + "/studies", headers=server.admin_headers, params={"PatientName": "SENTINEL*"})
    assert answer.status_code in (200, 204)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame, _ = udp.recvfrom(65536)
        _, root = parse_syslog(frame)
        if event_id(root) == "110112":
            break
    else:
        pytest.fail("no Query audit message")
    assert b"SENTINEL" not in frame
    obj = root.find("ParticipantObjectIdentification")
    assert obj is not None and obj.get("ParticipantObjectID") == "QIDO STUDY"
