"""The hash-chained audit trail on SQLite and PostgreSQL: appends from threads and processes stay one
gap-free chain, and verify names the seq and kind of every kind of tampering."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from yunying.auth import audit
from yunying.auth.audit import GENESIS, AuditRecord, Entry, configure, digest, record, record_many
from yunying.auth.audit_verify import BreakKind, verify_chain
from yunying.compose import Archive, build_archive
from yunying.index.models import AuditEvent
from yunying.settings import Settings

# --- the canonical form (no database) -------------------------------------------------------------------------------


def entry(**changes: object) -> Entry:
    fields: dict[str, object] = {
        "seq": 7, "at": datetime(2026, 11, 28, 2, 0, 0, 123456, tzinfo=UTC), "actor": "王医生", "actor_institution": "HOSP-A",
        "actor_role": "radiologist", "action": "retrieve", "subject": "1.2.3", "source": "10.0.0.1", "outcome": "success",
        "detail": 'say "hi"', "prev_hash": GENESIS}
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def test_canonical_form_is_sorted_compact_utf8_json_with_utc_microseconds() -> None:
    canonical = entry().canonical()
    assert canonical.decode("utf-8") == (
        '{"action":"retrieve","actor":"王医生","actor_institution":"HOSP-A","actor_role":"radiologist",'
        '"at":"2026-11-28T02:00:00.123456Z","detail":"say \\"hi\\"","outcome":"success","seq":7,'
        '"source":"10.0.0.1","subject":"1.2.3","v":1}')
    # the same moment given in another zone, or naive (as SQLite returns it), has the same form
    assert entry(at=datetime.fromisoformat("2026-11-28T10:00:00.123456+08:00")).canonical() == canonical
    assert entry(at=datetime(2026, 11, 28, 2, 0, 0, 123456)).canonical() == canonical


def test_hash_is_h_of_prev_hash_then_canonical_in_sha256_and_sm3() -> None:
    import hashlib

    e = entry()
    assert digest("sha256", GENESIS, e.canonical()) == hashlib.sha256(GENESIS.encode() + e.canonical()).hexdigest()
    sm3 = digest("sm3", GENESIS, e.canonical())
    assert sm3 == hashlib.new("sm3", GENESIS.encode() + e.canonical()).hexdigest() and len(sm3) == 64
    assert sm3 != digest("sha256", GENESIS, e.canonical())
    # SM3 known answer (GB/T 32905-2016 A.1): the library is the real SM3
    assert hashlib.new("sm3", b"abc").hexdigest() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    for field, value in (("seq", 8), ("actor", "王医生 "), ("detail", 'say "hi!"'), ("prev_hash", "1" * 64)):
        assert entry(**{field: value}).computed_hash("sha256") != e.computed_hash("sha256"), field


# --- appends on both databases ----------------------------------------------------------------------------------------


def _at(archive: Archive, moment: datetime) -> object:
    """A time parameter for raw SQL: SQLite keeps SQLAlchemy's text form (UTC, no zone)."""
    if archive.engine.dialect.name == "sqlite":
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


_FIELDS = ("seq", "at", "actor", "actor_institution", "actor_role", "action", "subject", "source", "outcome", "detail",
           "prev_hash", "hash")


def _rows(archive: Archive) -> list[dict[str, object]]:
    with archive.sessions() as session:
        rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
        return [{name: getattr(row, name) for name in _FIELDS} for row in rows]


def test_record_chains_entries_and_keeps_the_signature(archive: Archive) -> None:
    record(archive.sessions, actor="alice", action="query", subject="QIDO STUDY", source="10.0.0.1", detail="3 result(s)")
    record(archive.sessions, actor="ae:CT1", action="store", subject="1.2.3,1.2.4", source="10.0.0.2:104",
           institution="HOSP-A", role="technician")
    rows = _rows(archive)
    assert [r["seq"] for r in rows] == [1, 2]
    assert rows[0]["prev_hash"] == GENESIS and rows[1]["prev_hash"] == rows[0]["hash"]
    assert (rows[1]["actor_institution"], rows[1]["actor_role"]) == ("HOSP-A", "technician")
    with archive.engine.connect() as conn:
        head = conn.execute(text("SELECT last_seq, last_hash, algorithm FROM audit_chain_head")).one()
    assert tuple(head) == (2, rows[1]["hash"], "sha256")
    report = verify_chain(archive.sessions)
    assert report.ok and report.checked == 2 and report.head_seq == 2, report.describe()


def test_values_are_cut_and_cleaned_before_hashing(archive: Archive) -> None:
    record(archive.sessions, actor="x" * 500, action="query", subject="nul\x00byte", detail="\ud800 lone surrogate")
    row = _rows(archive)[0]
    assert len(str(row["actor"])) == 100 and row["subject"] == "nul\ufffdbyte" and row["detail"] == "? lone surrogate"
    assert verify_chain(archive.sessions).ok


def test_record_many_appends_in_one_transaction(archive: Archive) -> None:
    entries = record_many(archive.sessions, [AuditRecord("bob", "retrieve", f"1.2.{i}") for i in range(5)])
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert record_many(archive.sessions, []) == []
    assert verify_chain(archive.sessions).checked == 5


def test_sm3_chain_and_the_algorithm_is_fixed_by_the_first_entry(archive: Archive) -> None:
    configure(archive.sessions, algorithm="sm3")
    first = record_many(archive.sessions, [AuditRecord("a", "query")])[0]
    assert first.hash == digest("sm3", GENESIS, first.canonical())
    configure(archive.sessions, algorithm="sha256")  # later change: the chain keeps SM3
    second = record_many(archive.sessions, [AuditRecord("a", "query")])[0]
    assert second.hash == digest("sm3", first.hash, second.canonical())
    report = verify_chain(archive.sessions)
    assert report.ok and report.algorithm == "sm3"
    with pytest.raises(ValueError, match="unknown audit hash"):
        configure(archive.sessions, algorithm="md5")


def test_entries_written_before_the_chain_are_chained_by_the_first_append(archive: Archive) -> None:
    with archive.engine.begin() as conn:
        for i in range(3):
            conn.execute(text("INSERT INTO audit_event (at, actor, action, subject, source, outcome, detail) "
                              "VALUES (:at, 'old', 'query', '', '', 'success', :d)"),
                         {"at": _at(archive, datetime(2025, 1, 1, 0, 0, i, tzinfo=UTC)), "d": f"legacy {i}"})
    before = verify_chain(archive.sessions)
    assert before.ok and "3 entries written before the chain" in before.detail
    record(archive.sessions, actor="new", action="query")
    rows = _rows(archive)
    assert [(r["seq"], r["detail"]) for r in rows] == [(1, "legacy 0"), (2, "legacy 1"), (3, "legacy 2"), (4, "")]
    assert verify_chain(archive.sessions).checked == 4


def test_concurrent_threads_append_one_gap_free_chain(archive: Archive) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                record(archive.sessions, actor=f"t{n}", action="retrieve", subject=f"1.2.{n}.{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = verify_chain(archive.sessions)
    assert report.ok and report.checked == 200 and report.head_seq == 200, report.describe()
    rows = _rows(archive)
    for n in range(4):  # each thread's entries keep its order
        mine = [str(r["subject"]) for r in rows if r["actor"] == f"t{n}"]
        assert mine == [f"1.2.{n}.{i}" for i in range(50)]


def _append_in_process(url: str, data_dir: str, name: str, count: int) -> None:
    archive = build_archive(Settings(data_dir=data_dir, database_url=url))
    try:
        for i in range(count):
            record(archive.sessions, actor=name, action="view", subject=f"1.3.{i}")
    finally:
        archive.close()


def test_concurrent_processes_append_one_gap_free_chain(archive: Archive) -> None:
    spawn = multiprocessing.get_context("spawn")
    url, data_dir = archive.settings.effective_database_url, str(archive.settings.data_dir)
    procs = [spawn.Process(target=_append_in_process, args=(url, data_dir, f"p{n}", 30)) for n in range(3)]
    for p in procs:
        p.start()
    for i in range(30):  # and this process at the same time
        record(archive.sessions, actor="parent", action="view", subject=f"1.4.{i}")
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    report = verify_chain(archive.sessions)
    assert report.ok and report.checked == 120, report.describe()


# --- tampering, as a database administrator could -------------------------------------------------------------------


@pytest.fixture
def chain(archive: Archive) -> Iterator[Archive]:
    """20 entries (seq 1..20)."""
    record_many(archive.sessions, [AuditRecord(f"user{i % 3}", "retrieve", f"1.2.840.{i}", "10.0.0.9", detail=f"n{i}")
                                   for i in range(1, 21)])
    assert verify_chain(archive.sessions).ok
    yield archive


def tamper(archive: Archive, *statements: str, **params: object) -> None:
    """Run SQL on audit_event with the append-only triggers out of the way (a DBA can do that)."""
    pg = archive.engine.dialect.name == "postgresql"
    with archive.engine.begin() as conn:
        if pg:
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))
        for statement in statements:
            conn.execute(text(statement), params)
        if pg:
            conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))


def broken(archive: Archive, **kwargs: object) -> tuple[int | None, BreakKind | None]:
    report = verify_chain(archive.sessions, **kwargs)  # type: ignore[arg-type]
    assert not report.ok
    if report.broken_seq is not None:
        assert f"BROKEN at seq {report.broken_seq} ({report.kind})" in report.describe()
    return report.broken_seq, report.kind


def test_chained_entries_cannot_be_updated_or_deleted_through_the_database(chain: Archive) -> None:
    for statement in ("UPDATE audit_event SET actor = 'mallory' WHERE seq = 3", "DELETE FROM audit_event WHERE seq = 3"):
        with pytest.raises(DBAPIError, match="append-only"), chain.engine.begin() as conn:
            conn.execute(text(statement))
    assert verify_chain(chain.sessions).ok


def test_a_modified_field_is_found(chain: Archive) -> None:
    tamper(chain, "UPDATE audit_event SET actor = 'mallory' WHERE seq = 5")
    assert broken(chain) == (5, BreakKind.MODIFIED)


def test_a_modified_time_is_found(chain: Archive) -> None:
    tamper(chain, "UPDATE audit_event SET at = :at WHERE seq = 9", at=_at(chain, datetime(2020, 1, 1, tzinfo=UTC)))
    assert broken(chain) == (9, BreakKind.MODIFIED)


def test_a_modified_and_rehashed_entry_is_found_at_the_next_link(chain: Archive) -> None:
    row = next(r for r in _rows(chain) if r["seq"] == 5)
    forged = Entry.of(_to_event(row, actor="mallory"))
    tamper(chain, "UPDATE audit_event SET actor = 'mallory', hash = :h WHERE seq = 5", h=forged.computed_hash("sha256"))
    seq, kind = broken(chain)
    assert (seq, kind) == (5, BreakKind.MODIFIED)


def test_a_deleted_entry_is_found(chain: Archive) -> None:
    tamper(chain, "DELETE FROM audit_event WHERE seq = 5")
    assert broken(chain) == (5, BreakKind.DELETED)
    tamper(chain, "DELETE FROM audit_event WHERE seq IN (1, 2)")
    assert broken(chain) == (1, BreakKind.DELETED)


def test_a_deleted_entry_is_found_after_renumbering(chain: Archive) -> None:
    tamper(chain, "DELETE FROM audit_event WHERE seq = 5",
           *(f"UPDATE audit_event SET seq = {s - 1} WHERE seq = {s}" for s in range(6, 21)))
    with chain.engine.begin() as conn:
        conn.execute(text("UPDATE audit_chain_head SET last_seq = 19"))
    assert broken(chain) == (5, BreakKind.DELETED)


@pytest.mark.parametrize("a, b", [(4, 7), (4, 5)])
def test_swapped_entries_are_found(chain: Archive, a: int, b: int) -> None:
    tamper(chain, f"UPDATE audit_event SET seq = -1 WHERE seq = {a}", f"UPDATE audit_event SET seq = {a} WHERE seq = {b}",
           f"UPDATE audit_event SET seq = {b} WHERE seq = -1")
    assert broken(chain) == (a, BreakKind.REORDERED)


def test_swapped_contents_under_kept_hashes_are_found(chain: Archive) -> None:
    tamper(chain, "UPDATE audit_event SET actor = 'x', detail = 'n7' WHERE seq = 4",
           "UPDATE audit_event SET actor = 'y', detail = 'n4' WHERE seq = 7")
    assert broken(chain) == (4, BreakKind.MODIFIED)


def test_a_truncated_tail_is_found_by_the_head(chain: Archive) -> None:
    tamper(chain, "DELETE FROM audit_event WHERE seq > 15")
    assert broken(chain) == (16, BreakKind.HEAD_MISMATCH)
    assert "entries 16..20 are missing" in verify_chain(chain.sessions).detail


def test_a_changed_head_is_found(chain: Archive) -> None:
    with chain.engine.begin() as conn:
        conn.execute(text("UPDATE audit_chain_head SET last_hash = :h"), {"h": "f" * 64})
    assert broken(chain) == (20, BreakKind.HEAD_MISMATCH)
    with chain.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_chain_head"))
    assert broken(chain) == (1, BreakKind.HEAD_MISMATCH)
    with pytest.raises(audit.AuditChainError, match="head row is missing"):
        record(chain.sessions, actor="a", action="query")


def test_an_entry_inserted_outside_the_chain_is_found(chain: Archive) -> None:
    with chain.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_event (at, actor, action, subject, source, outcome, detail) "
                          "VALUES (:at, 'ghost', 'query', '', '', 'success', '')"), {"at": _at(chain, datetime.now(UTC))})
    assert broken(chain) == (None, BreakKind.UNCHAINED)


def test_a_rewritten_chain_is_found_only_with_an_anchor(chain: Archive) -> None:
    anchor = (10, str(next(r for r in _rows(chain) if r["seq"] == 10)["hash"]))
    rows = _rows(chain)
    prev = str(rows[3]["hash"])
    statements, params = [], {}
    for row in rows[4:]:  # rewrite entries 5..20 with valid hashes, and the head
        forged = Entry.of(_to_event(row, actor="mallory", prev_hash=prev))
        prev = forged.computed_hash("sha256")
        statements.append(f"UPDATE audit_event SET actor = 'mallory', prev_hash = :p{row['seq']}, hash = :h{row['seq']} "
                          f"WHERE seq = {row['seq']}")
        params |= {f"p{row['seq']}": forged.prev_hash, f"h{row['seq']}": prev}
    tamper(chain, *statements, **params)
    with chain.engine.begin() as conn:
        conn.execute(text("UPDATE audit_chain_head SET last_hash = :h"), {"h": prev})
    assert verify_chain(chain.sessions).ok  # undetectable from inside the database...
    assert broken(chain, anchors={anchor[0]: anchor[1]}) == (10, BreakKind.ANCHOR_MISMATCH)  # ...but not from outside
    assert broken(chain, anchors={25: "0" * 64}) == (25, BreakKind.ANCHOR_MISMATCH)


def test_verify_report_texts(chain: Archive) -> None:
    ok = verify_chain(chain.sessions)
    assert ok.describe().startswith("audit chain OK: 20 entries verified (sha256); head 20:")
    tamper(chain, "UPDATE audit_event SET detail = 'x' WHERE seq = 3")
    assert verify_chain(chain.sessions).describe().startswith("audit chain BROKEN at seq 3 (modified):")


def _to_event(row: dict[str, object], **changes: object) -> AuditEvent:
    values = {k: row[k] for k in _FIELDS}
    values.update(changes)
    return AuditEvent(**values)
