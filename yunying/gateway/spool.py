"""The gateway's durable queue: instance files on disk plus a small SQLite table of items.

An instance is acknowledged to its sender only after ``accept`` returned: the file is written
to a temporary name, fsynced, renamed, its directory fsynced, and its queue row committed with
SQLite ``synchronous=FULL``. A crash before the commit leaves at most an unreferenced file,
removed by ``sweep``; a crash after it loses nothing. Nothing in flight is persisted: after a
restart every unsent item is simply queued again, and the cloud's own duplicate handling plus the
resume check (``Uploader``) make a repeated send harmless.

States: ``queued`` → ``sent`` (confirmed by the cloud) or ``failed`` (refused by the cloud for a
reason a retry cannot fix; kept on disk, listed in the status, re-queued by an operator).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from yunying.gateway.lanes import Lane
from yunying.gateway.sealing import NoSeal, Sealer
from yunying.storage.filesystem import FilesystemBlobStore

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sop_uid TEXT NOT NULL UNIQUE,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    lane INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    blob_key TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL,
    sent_bytes INTEGER
);
CREATE INDEX IF NOT EXISTS items_ready ON items (state, lane, next_attempt_at, id);
CREATE INDEX IF NOT EXISTS items_study ON items (study_uid, state);
CREATE INDEX IF NOT EXISTS items_sent_at ON items (state, sent_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS daily (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (day, kind)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    result TEXT
);
CREATE TABLE IF NOT EXISTS progress (
    job TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""
_KEEP_EVENTS = 200


class ItemState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class Accepted(StrEnum):
    NEW = "new"
    ALREADY_QUEUED = "already-queued"  # same bytes already waiting
    ALREADY_SENT = "already-sent"  # same bytes already in the cloud
    REPLACED = "replaced"  # different bytes for a known SOP Instance UID: queued again


class SpoolFull(Exception):
    """The disk budget is exhausted even after evicting uploaded files: refuse, never drop."""


class SpoolCorrupt(Exception):
    """A spool file is missing or does not match its checksum."""


@dataclass(frozen=True)
class Item:
    id: int
    sop_uid: str
    study_uid: str
    series_uid: str
    lane: Lane
    blob_key: str
    size: int
    sha256: str
    attempts: int
    sends: int


@dataclass
class LaneFigures:
    depth: int = 0
    oldest_age_s: float = 0.0


@dataclass
class SpoolFigures:
    lanes: dict[str, LaneFigures] = field(default_factory=dict)
    failed: int = 0
    sent_total: int = 0
    used_bytes: int = 0
    pending_bytes: int = 0  # not yet in the cloud (queued or refused): what an outage fills
    budget_bytes: int = 0
    original_bytes: int = 0
    sent_bytes: int = 0
    last_errors: list[tuple[float, str]] = field(default_factory=list)

    @property
    def queued(self) -> int:
        return sum(lane.depth for lane in self.lanes.values())


def today(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


class Spool:
    """Durable, prioritised queue of instances waiting for the cloud (one gateway process)."""

    def __init__(self, db_path: Path, spool_dir: Path, *, sealer: Sealer | None = None,
                 budget_bytes: int = 200 * 1024**3, keep_sent_s: float = 7 * 86400.0,
                 clock: Callable[[], float] = time.time) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.blobs = FilesystemBlobStore(spool_dir)
        self.sealer: Sealer = sealer or NoSeal()
        self.budget_bytes = budget_bytes
        self.keep_sent_s = keep_sent_s
        self.clock = clock
        self._lock = threading.RLock()
        self._inflight: set[int] = set()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._used = int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM items WHERE blob_key IS NOT NULL")
                         .fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The database for a consistent read (status figures)."""
        with self._lock:
            yield self._db

    # -- intake ---------------------------------------------------------------------------------

    def accept(self, data: bytes, *, sop_uid: str, study_uid: str, series_uid: str, lane: Lane, source: str) -> Accepted:
        """Make ``data`` durable and queued; return only once it survives a crash."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest[2:4]}/{digest}"
        with self._lock:
            row = self._db.execute("SELECT id, state, sha256, blob_key, lane FROM items WHERE sop_uid = ?",
                                   (sop_uid,)).fetchone()
            if row is not None and row[2] == digest and row[3] is not None and row[1] != ItemState.FAILED:
                if row[1] == ItemState.QUEUED and lane < row[4]:
                    with self._tx() as db:  # a later copy classed more urgent raises the priority
                        db.execute("UPDATE items SET lane = ? WHERE id = ?", (int(lane), row[0]))
                return Accepted.ALREADY_QUEUED if row[1] != ItemState.SENT else Accepted.ALREADY_SENT
            self._make_room(len(data))
            self._used += len(data)  # reserved while the file is written outside the lock
        try:
            self.blobs.put(key, self.sealer.seal(data, sop_uid.encode()))
            now = self.clock()
            with self._tx() as db:
                row = db.execute("SELECT id, blob_key, size FROM items WHERE sop_uid = ?", (sop_uid,)).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO items (sop_uid, study_uid, series_uid, lane, state, blob_key, size, sha256, source,"
                        " received_at, next_attempt_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                        (sop_uid, study_uid, series_uid, int(lane), key, len(data), digest, source, now, now))
                else:
                    db.execute(
                        "UPDATE items SET study_uid = ?, series_uid = ?, lane = ?, state = 'queued', blob_key = ?, size = ?,"
                        " sha256 = ?, source = ?, received_at = ?, next_attempt_at = ?, attempts = 0, last_error = NULL"
                        " WHERE id = ?",
                        (study_uid, series_uid, int(lane), key, len(data), digest, source, now, now, row[0]))
                self._count(db, "received", 1, len(data), now)
        except BaseException:
            with self._lock:
                self._used -= len(data)
            raise
        if row is not None and row[1] is not None:
            with self._lock:
                self._used -= int(row[2])
                if row[1] != key:
                    self._drop_blob(row[1], row[0])
        return Accepted.NEW if row is None else Accepted.REPLACED

    def _make_room(self, size: int) -> None:
        if self._used + size <= self.budget_bytes:
            return
        self.evict_sent(force_bytes=self._used + size - self.budget_bytes)
        if self._used + size > self.budget_bytes:
            self.event("refused", f"disk budget full ({self._used} of {self.budget_bytes} bytes used)")
            raise SpoolFull(f"gateway disk budget exhausted ({self._used} of {self.budget_bytes} bytes in use)")

    # -- upload side ----------------------------------------------------------------------------

    def claim(self, max_instances: int, max_bytes: int) -> list[Item]:
        """The most urgent ready study's next items (emergency lane first, then oldest)."""
        now = self.clock()
        with self._lock:
            skip = len(self._inflight)
            first = next((r for r in self._db.execute(
                "SELECT id, study_uid FROM items WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY lane, id LIMIT ?",
                (now, skip + 1)) if r[0] not in self._inflight), None)
            if first is None:
                return []
            rows = [r for r in self._db.execute(
                "SELECT id, sop_uid, study_uid, series_uid, lane, blob_key, size, sha256, attempts, sends FROM items"
                " WHERE study_uid = ? AND state = 'queued' AND next_attempt_at <= ? ORDER BY lane, id LIMIT ?",
                (first[1], now, max_instances + skip)) if r[0] not in self._inflight][:max_instances]
            items: list[Item] = []
            total = 0
            for r in rows:
                if items and total + r[6] > max_bytes:
                    break
                items.append(Item(r[0], r[1], r[2], r[3], Lane(r[4]), r[5], r[6], r[7], r[8], r[9]))
                total += r[6]
            self._inflight.update(i.id for i in items)
            return items

    def more_urgent_waiting(self, lane: Lane) -> bool:
        """Whether an item of a more urgent lane than ``lane`` is ready and not in flight."""
        if lane == Lane.EMERGENCY:
            return False
        with self._lock:
            rows = self._db.execute("SELECT id FROM items WHERE state = 'queued' AND lane < ? AND next_attempt_at <= ?"
                                    " ORDER BY lane, id LIMIT ?", (int(lane), self.clock(), len(self._inflight) + 1))
            return any(r[0] not in self._inflight for r in rows)

    def release(self, items: Iterable[Item]) -> None:
        with self._lock:
            self._inflight.difference_update(i.id for i in items)

    def read(self, item: Item) -> bytes:
        """The instance as received, checked against its SHA-256."""
        try:
            data = self.sealer.open(self.blobs.get(item.blob_key), item.sop_uid.encode())
        except Exception as exc:
            raise SpoolCorrupt(f"spool file of item {item.id} unreadable: {type(exc).__name__}") from exc
        if hashlib.sha256(data).hexdigest() != item.sha256:
            raise SpoolCorrupt(f"spool file of item {item.id} does not match its checksum")
        return data

    def note_sent_attempt(self, items: Iterable[Item]) -> None:
        with self._tx() as db:
            db.executemany("UPDATE items SET sends = sends + 1 WHERE id = ?", [(i.id,) for i in items])

    def mark_sent(self, sent: dict[int, int]) -> None:
        """``{item id: bytes sent}`` confirmed by the cloud (0 when confirmed by a query, not sent)."""
        if not sent:
            return
        now = self.clock()
        with self._tx() as db:
            db.executemany("UPDATE items SET state = 'sent', sent_at = ?, sent_bytes = ?, last_error = NULL"
                           " WHERE id = ? AND state = 'queued'", [(now, n, i) for i, n in sent.items()])
            original = db.execute(f"SELECT COALESCE(SUM(size), 0) FROM items WHERE id IN ({_ids(sent)})").fetchone()[0]  # noqa: S608
            self._count(db, "uploaded", len(sent), sum(sent.values()), now)
            self._count(db, "uploaded-original", len(sent), int(original), now)

    def mark_retry(self, items: Iterable[Item], error: str, delay_for: Callable[[int], float]) -> None:
        now = self.clock()
        rows = [(now + delay_for(i.attempts + 1), error[:500], i.id) for i in items]
        with self._tx() as db:
            db.executemany("UPDATE items SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                           " WHERE id = ? AND state = 'queued'", rows)
        self.event("upload-error", error)

    def mark_failed(self, failed: dict[int, str]) -> None:
        if not failed:
            return
        now = self.clock()
        with self._tx() as db:
            db.executemany("UPDATE items SET state = 'failed', last_error = ? WHERE id = ?",
                           [(reason[:500], i) for i, reason in failed.items()])
            self._count(db, "failed", len(failed), 0, now)
        for reason in sorted(set(failed.values())):
            self.event("refused-by-cloud", reason)

    def ready_all(self) -> int:
        """Make every waiting item ready now (the cloud answered again after an outage)."""
        now = self.clock()
        with self._tx() as db:
            return db.execute("UPDATE items SET next_attempt_at = ? WHERE state = 'queued' AND next_attempt_at > ?",
                              (now, now)).rowcount

    def retry_failed(self) -> int:
        with self._tx() as db:
            return db.execute("UPDATE items SET state = 'queued', attempts = 0, next_attempt_at = ?, last_error = NULL"
                              " WHERE state = 'failed' AND blob_key IS NOT NULL", (self.clock(),)).rowcount

    def requeue(self, sop_uids: Iterable[str]) -> tuple[int, list[str]]:
        """Queue already-sent instances again (reconciliation); returns (requeued, UIDs without a local copy)."""
        wanted = list(sop_uids)
        requeued, missing = 0, []
        now = self.clock()
        with self._tx() as db:
            for uid in wanted:
                row = db.execute("SELECT id, blob_key, state FROM items WHERE sop_uid = ?", (uid,)).fetchone()
                if row is not None and row[2] != ItemState.SENT:
                    continue  # queued already, or refused by the cloud (listed as failed; an operator decides)
                if row is None or row[1] is None:
                    missing.append(uid)
                    continue
                db.execute("UPDATE items SET state = 'queued', attempts = 0, next_attempt_at = ?, lane = MIN(lane, ?)"
                           " WHERE id = ?", (now, int(Lane.ROUTINE), row[0]))
                requeued += 1
            if requeued:
                self._count(db, "requeued", requeued, 0, now)
        return requeued, missing

    def study_items(self, study_uid: str) -> dict[str, str]:
        """``{SOP Instance UID: state}`` of one study."""
        with self._lock:
            return dict(self._db.execute("SELECT sop_uid, state FROM items WHERE study_uid = ?", (study_uid,)).fetchall())

    # -- housekeeping ---------------------------------------------------------------------------

    def evict_sent(self, force_bytes: int = 0) -> int:
        """Delete local copies of uploaded instances older than ``keep_sent_s`` (or the oldest
        ones until ``force_bytes`` are freed). Returns bytes freed."""
        freed = 0
        cutoff = self.clock() - self.keep_sent_s
        with self._lock:
            rows = self._db.execute("SELECT id, blob_key, size, sent_at FROM items WHERE state = 'sent'"
                                    " AND blob_key IS NOT NULL ORDER BY sent_at").fetchall()
            for item_id, key, size, sent_at in rows:
                if sent_at > cutoff and freed >= force_bytes:
                    break
                with self._tx() as db:  # the row first: a crash in between leaves only a file for sweep
                    db.execute("UPDATE items SET blob_key = NULL WHERE id = ?", (item_id,))
                self._drop_blob(key, item_id)
                self._used -= size
                freed += size
        return freed

    def _drop_blob(self, key: str, item_id: int) -> None:
        shared = self._db.execute("SELECT COUNT(*) FROM items WHERE blob_key = ? AND id != ?", (key, item_id)).fetchone()[0]
        if not shared:
            self.blobs.delete(key)

    def sweep(self, older_than_s: float = 60.0) -> int:
        """Remove files no queue row references (left by a crash between fsync and commit)."""
        with self._lock:
            referenced = {r[0] for r in self._db.execute("SELECT blob_key FROM items WHERE blob_key IS NOT NULL")}
        removed = 0
        cutoff = self.clock() - older_than_s
        for info in self.blobs.iter_blobs():
            if info.key not in referenced and (info.modified or 0.0) < cutoff:
                self.blobs.delete(info.key)
                removed += 1
        for partial in self.blobs.leftover_partials():
            try:
                if partial.stat().st_mtime < cutoff:  # a write still in progress is younger
                    partial.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
        return removed

    def event(self, kind: str, message: str) -> None:
        """Remember an error or warning for the status page (no patient data in ``message``)."""
        with self._tx() as db:
            last = db.execute("SELECT id, kind, message FROM events ORDER BY id DESC LIMIT 1").fetchone()
            if last is not None and last[1] == kind and last[2] == message[:500]:  # a repeat: just bring it up to date
                db.execute("UPDATE events SET at = ? WHERE id = ?", (self.clock(), last[0]))
                return
            db.execute("INSERT INTO events (at, kind, message) VALUES (?, ?, ?)", (self.clock(), kind, message[:500]))
            db.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (_KEEP_EVENTS,))

    def _count(self, db: sqlite3.Connection, kind: str, count: int, nbytes: int, now: float) -> None:
        db.execute("INSERT INTO daily (day, kind, count, bytes) VALUES (?, ?, ?, ?) ON CONFLICT (day, kind)"
                   " DO UPDATE SET count = count + excluded.count, bytes = bytes + excluded.bytes",
                   (today(now), kind, count, nbytes))

    def save_progress(self, job: str, state: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO progress (job, state, updated_at) VALUES (?, ?, ?) ON CONFLICT (job)"
                       " DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at", (job, state, self.clock()))

    def load_progress(self, job: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM progress WHERE job = ?", (job,)).fetchone()
        return None if row is None else str(row[0])

    # -- jobs asked for by the CLI, run by the gateway process -----------------------------------

    def submit_job(self, kind: str, args: str) -> int:
        with self._tx() as db:
            cursor = db.execute("INSERT INTO jobs (kind, args, state, created_at) VALUES (?, ?, 'pending', ?)",
                                (kind, args, self.clock()))
            return int(cursor.lastrowid or 0)

    def next_job(self) -> tuple[int, str, str] | None:
        with self._tx() as db:
            row = db.execute("SELECT id, kind, args FROM jobs WHERE state = 'pending' ORDER BY id LIMIT 1").fetchone()
            if row is not None:
                db.execute("UPDATE jobs SET state = 'running' WHERE id = ?", (row[0],))
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def finish_job(self, job_id: int, state: str, result: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = ?, result = ?, finished_at = ? WHERE id = ?",
                       (state, result, self.clock(), job_id))

    def job(self, job_id: int) -> tuple[str, str | None] | None:
        with self._lock:
            row = self._db.execute("SELECT state, result FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def recover_jobs(self) -> None:
        """Jobs running when the process died start again."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = 'pending' WHERE state = 'running'")

    # -- figures --------------------------------------------------------------------------------

    def figures(self) -> SpoolFigures:
        return read_figures(self._db, self._lock, self.clock(), self.budget_bytes, self._used)

    def daily(self, days: int = 7) -> list[tuple[str, str, int, int]]:
        with self._lock:
            return [(str(d), str(k), int(c), int(b)) for d, k, c, b in self._db.execute(
                "SELECT day, kind, count, bytes FROM daily ORDER BY day DESC, kind LIMIT ?", (days * 8,))]


def _ids(ids: Iterable[int]) -> str:
    return ",".join(str(int(i)) for i in ids)


def read_figures(db: sqlite3.Connection, lock: threading.RLock | None, now: float, budget: int,
                 used: int | None = None) -> SpoolFigures:
    """Queue figures from a spool database (also used read-only by ``yunying gateway status``)."""
    with lock or threading.RLock():
        figures = SpoolFigures(budget_bytes=budget)
        for lane in Lane:
            figures.lanes[lane.label] = LaneFigures()
        for lane, depth, oldest in db.execute(
                "SELECT lane, COUNT(*), MIN(received_at) FROM items WHERE state = 'queued' GROUP BY lane"):
            figures.lanes[Lane(lane).label] = LaneFigures(int(depth), max(0.0, now - float(oldest)))
        figures.failed = int(db.execute("SELECT COUNT(*) FROM items WHERE state = 'failed'").fetchone()[0])
        figures.sent_total = int(db.execute("SELECT COUNT(*) FROM items WHERE state = 'sent'").fetchone()[0])
        original, sent_bytes = db.execute(  # compression achieved over what actually went over the wire
            "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(sent_bytes), 0) FROM items WHERE state = 'sent' AND sent_bytes > 0"
        ).fetchone()
        figures.original_bytes, figures.sent_bytes = int(original), int(sent_bytes)
        figures.used_bytes = used if used is not None else int(
            db.execute("SELECT COALESCE(SUM(size), 0) FROM items WHERE blob_key IS NOT NULL").fetchone()[0])
        figures.pending_bytes = int(db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM items WHERE state != 'sent' AND blob_key IS NOT NULL").fetchone()[0])
        figures.last_errors = [(float(a), str(m)) for a, m in
                               db.execute("SELECT at, message FROM events ORDER BY id DESC LIMIT 20")]
        return figures
