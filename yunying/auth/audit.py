"""The append-only, hash-chained audit trail: who did what to which study, when, from where, with what outcome.

Every entry carries a gap-free ``seq`` and ``hash = H(prev_hash || canonical(entry))`` where
``prev_hash`` is the previous entry's hash (:data:`GENESIS` for the first) and ``canonical`` is the
UTF-8 JSON of the entry's fields (keys sorted, no spaces, time in UTC with microseconds; see
:meth:`Entry.canonical`). H is SHA-256 or SM3, fixed for a chain when its first entry is written.
The head row (``audit_chain_head``) holds the last seq and hash; appending locks it (PostgreSQL
``SELECT … FOR UPDATE``, SQLite ``BEGIN IMMEDIATE``) so any number of processes and nodes append
one after another. Modifying, deleting or reordering entries breaks the chain:
:func:`yunying.auth.audit_verify.verify_chain`.

Subjects are UIDs or query descriptions, never patient identifiers.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from yunying.index.db import write_session
from yunying.index.models import AuditChainHead, AuditEvent, Institution, utcnow

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # prev_hash of the first entry
FORMAT_VERSION = 1  # of the canonical form; part of every hashed entry
ALGORITHMS = ("sha256", "sm3")
HEAD_ID = 1
# Column sizes: values are cut to these before hashing, so the hash covers exactly what is stored.
LIMITS = {"actor": 100, "actor_institution": 32, "actor_role": 100, "action": 40, "subject": 200, "source": 200,
          "outcome": 40, "detail": 4000}


class AuditChainError(RuntimeError):
    """The chain cannot be appended to (its head row is gone while entries exist)."""


def digest(algorithm: str, prev_hash: str, canonical: bytes) -> str:
    """``H(prev_hash || canonical)`` as lower-case hex (64 characters for SHA-256 and SM3)."""
    h = hashlib.sha256() if algorithm == "sha256" else hashlib.new(algorithm)
    h.update(prev_hash.encode("ascii"))
    h.update(canonical)
    return h.hexdigest()


def iso_utc(moment: datetime) -> str:
    """``2026-11-28T02:00:00.000000Z``: the one text form of a time in the chain and in exports."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clean(value: str, limit: int) -> str:
    """Storable text: no NUL (PostgreSQL refuses it), no lone surrogates, cut to the column size."""
    text = str(value).replace("\x00", "\ufffd")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


@dataclass(frozen=True)
class AuditRecord:
    """What a caller reports: one access or change."""

    actor: str
    action: str
    subject: str = ""
    source: str = ""
    outcome: str = "success"
    detail: str = ""
    institution: str = ""  # the actor's institution code
    role: str = ""  # the actor's roles, comma-separated


@dataclass(frozen=True)
class Entry:
    """One chained entry, as stored."""

    seq: int
    at: datetime
    actor: str
    actor_institution: str
    actor_role: str
    action: str
    subject: str
    source: str
    outcome: str
    detail: str
    prev_hash: str = ""
    hash: str = ""

    def canonical(self) -> bytes:
        """The hashed form: JSON with sorted keys and no spaces, UTF-8, time as :func:`iso_utc`."""
        body = {"v": FORMAT_VERSION, "seq": self.seq, "at": iso_utc(self.at), "actor": self.actor,
                "actor_institution": self.actor_institution, "actor_role": self.actor_role, "action": self.action,
                "subject": self.subject, "source": self.source, "outcome": self.outcome, "detail": self.detail}
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def computed_hash(self, algorithm: str, prev_hash: str | None = None) -> str:
        return digest(algorithm, self.prev_hash if prev_hash is None else prev_hash, self.canonical())

    @classmethod
    def of(cls, row: AuditEvent) -> Entry:
        at = row.at.replace(tzinfo=UTC) if row.at.tzinfo is None else row.at.astimezone(UTC)  # SQLite: naive UTC
        return cls(seq=row.seq or 0, at=at, actor=row.actor, actor_institution=row.actor_institution,
                   actor_role=row.actor_role, action=row.action, subject=row.subject, source=row.source,
                   outcome=row.outcome, detail=row.detail, prev_hash=row.prev_hash, hash=row.hash)


# --- configuration: one per sessionmaker, set where the archive is composed ----------------------------------------

_CONFIG_KEY = "yunying.audit"


@dataclass(frozen=True)
class AuditConfig:
    algorithm: str = "sha256"  # for a new chain; an existing chain keeps the algorithm it began with
    forward: Callable[[Sequence[Entry]], None] | None = None  # after commit, e.g. to the ATNA syslog sender


def configure(sessions: sessionmaker[Session], *, algorithm: str = "sha256", syslog: str = "",
              source_id: str = "yunying") -> None:
    """Attach the audit settings to ``sessions`` (``Settings.audit_hash``, ``Settings.audit_syslog``).

    With ``syslog`` ("udp://host:port" or "tcp://host:port") every entry is also sent as a DICOM audit
    message (PS3.15 A.5) by a background sender; a wrong URL raises ValueError here, at start-up.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown audit hash {algorithm!r} (known: {', '.join(ALGORITHMS)})")
    forward = None
    if syslog:
        from yunying.auth.atna import SyslogSender

        forward = SyslogSender(syslog, source_id=source_id).submit
    info = dict(sessions.kw.get("info") or {})
    info[_CONFIG_KEY] = AuditConfig(algorithm, forward)
    sessions.configure(info=info)


def _config(sessions: sessionmaker[Session]) -> AuditConfig:
    found = (sessions.kw.get("info") or {}).get(_CONFIG_KEY)
    return found if isinstance(found, AuditConfig) else AuditConfig()


# --- appending ----------------------------------------------------------------------------------------------------


def record(sessions: sessionmaker[Session], *, actor: str, action: str, subject: str = "", source: str = "",
           outcome: str = "success", detail: str = "", institution: str = "", role: str = "") -> None:
    """Append one entry to the chain in its own transaction (and forward it to syslog when configured)."""
    record_many(sessions, [AuditRecord(actor, action, subject, source, outcome, detail, institution, role)])


def record_many(sessions: sessionmaker[Session], records: Sequence[AuditRecord]) -> list[Entry]:
    """Append ``records`` in order in one transaction; return the chained entries.

    The head row is locked for the transaction, so concurrent appenders (threads, processes, nodes
    sharing one database) queue and the chain stays gap-free and linear.
    """
    if not records:
        return []
    config = _config(sessions)
    with write_session(sessions) as session:
        head = _locked_head(session)
        algorithm = _chain_algorithm(session, head, config.algorithm)
        at = utcnow()  # taken under the lock: times rise with seq on one node
        prev, seq, entries = head.last_hash or GENESIS, head.last_seq, []
        for rec in records:
            seq += 1
            entry = Entry(seq=seq, at=at, actor=_clean(rec.actor, LIMITS["actor"]),
                          actor_institution=_clean(rec.institution, LIMITS["actor_institution"]),
                          actor_role=_clean(rec.role, LIMITS["actor_role"]), action=_clean(rec.action, LIMITS["action"]),
                          subject=_clean(rec.subject, LIMITS["subject"]), source=_clean(rec.source, LIMITS["source"]),
                          outcome=_clean(rec.outcome, LIMITS["outcome"]), detail=_clean(rec.detail, LIMITS["detail"]),
                          prev_hash=prev)
            entry = replace(entry, hash=entry.computed_hash(algorithm))
            entries.append(entry)
            prev = entry.hash
        session.add_all([_row(e) for e in entries])
        head.last_seq, head.last_hash = seq, prev
        session.commit()
    if config.forward is not None:
        try:
            config.forward(entries)
        except Exception:  # forwarding is best effort; the entry is durable
            log.exception("audit: forwarding to syslog failed")
    return entries


def _row(entry: Entry) -> AuditEvent:
    return AuditEvent(seq=entry.seq, prev_hash=entry.prev_hash, hash=entry.hash, at=entry.at, actor=entry.actor,
                      actor_institution=entry.actor_institution, actor_role=entry.actor_role, action=entry.action,
                      subject=entry.subject, source=entry.source, outcome=entry.outcome, detail=entry.detail)


def _locked_head(session: Session) -> AuditChainHead:
    query = select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
    head = session.execute(query).scalar_one_or_none()
    if head is not None:
        return head
    if session.execute(select(AuditEvent.id).where(AuditEvent.seq.is_not(None)).limit(1)).first() is not None:
        raise AuditChainError("the audit chain head row is missing while chained entries exist: run `yunying audit verify`")
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(AuditChainHead).values(id=HEAD_ID, last_seq=0, last_hash="", algorithm="")
                    .on_conflict_do_nothing(index_elements=["id"]))
    return session.execute(query).scalar_one()


_warned: set[tuple[str, str]] = set()


def _chain_algorithm(session: Session, head: AuditChainHead, wanted: str) -> str:
    """The chain's hash; an empty chain takes ``wanted`` and first chains entries written before it existed."""
    if head.last_seq == 0:
        head.algorithm = wanted
        _chain_legacy(session, head)
    elif head.algorithm != wanted and (head.algorithm, wanted) not in _warned:
        _warned.add((head.algorithm, wanted))
        log.warning("audit: the chain uses %s since its first entry; YUNYING_AUDIT_HASH=%s applies to a new chain only",
                    head.algorithm, wanted)
    return head.algorithm


def _chain_legacy(session: Session, head: AuditChainHead) -> None:
    """Entries written before revision 0003 (no seq) join the chain in the order they were written."""
    prev, seq = GENESIS, 0
    for row in session.execute(select(AuditEvent).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id)).scalars():
        seq += 1
        row.seq, row.prev_hash = seq, prev
        row.hash = prev = Entry.of(row).computed_hash(head.algorithm)
    if seq:
        session.flush()
        head.last_seq, head.last_hash = seq, prev
        log.info("audit: chained %d entries written before the chain existed", seq)


# --- reading --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor looks for; every given field must match (times: ``start <= at < end``)."""

    start: datetime | None = None
    end: datetime | None = None
    actor: str | None = None
    action: str | None = None
    subject: str | None = None  # a study UID also finds entries naming several studies (comma-separated)
    outcome: str | None = None
    institution: str | None = None

    def describe(self) -> str:
        given = {k: iso_utc(v) if isinstance(v, datetime) else v for k, v in vars(self).items() if v is not None}
        return json.dumps(given, ensure_ascii=False, sort_keys=True)[:500]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(flt: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if flt.start is not None:
        conditions.append(AuditEvent.at >= flt.start.astimezone(UTC))
    if flt.end is not None:
        conditions.append(AuditEvent.at < flt.end.astimezone(UTC))
    for column, value in ((AuditEvent.actor, flt.actor), (AuditEvent.action, flt.action),
                          (AuditEvent.outcome, flt.outcome), (AuditEvent.actor_institution, flt.institution)):
        if value is not None:
            conditions.append(column == value)
    if flt.subject is not None:
        s = _escape_like(flt.subject)
        conditions.append(or_(AuditEvent.subject == flt.subject,
                              *(AuditEvent.subject.like(p, escape="\\") for p in (f"{s},%", f"%,{s}", f"%,{s},%"))))
    return conditions


def _select(flt: AuditFilter) -> Select[AuditEvent]:
    return select(AuditEvent).where(*_where(flt))


@dataclass(frozen=True)
class AuditPage:
    items: list[Entry]
    total: int


def search(sessions: sessionmaker[Session], flt: AuditFilter, *, limit: int = 100, offset: int = 0) -> AuditPage:
    """Entries matching ``flt``, newest first, with the number of all matches."""
    with sessions() as session:
        total = session.execute(select(func.count()).select_from(AuditEvent).where(*_where(flt))).scalar_one()
        rows = session.execute(_select(flt).order_by(AuditEvent.seq.desc(), AuditEvent.id.desc())
                               .limit(limit).offset(offset)).scalars()
        return AuditPage([Entry.of(r) for r in rows], int(total))


def count(sessions: sessionmaker[Session], flt: AuditFilter) -> int:
    with sessions() as session:
        return int(session.execute(select(func.count()).select_from(AuditEvent).where(*_where(flt))).scalar_one())


def iter_entries(sessions: sessionmaker[Session], flt: AuditFilter, *, batch: int = 1000) -> Iterator[Entry]:
    """Entries matching ``flt`` in chain order (oldest first), streamed in batches (for exports)."""
    with sessions() as session:
        query = _select(flt).order_by(AuditEvent.seq, AuditEvent.id).execution_options(yield_per=batch)
        for row in session.execute(query).scalars():
            yield Entry.of(row)


def institution_code(sessions: sessionmaker[Session], institution_id: int | None) -> str:
    """The code of institution ``institution_id`` (for an entry's ``actor_institution``), or ""."""
    if institution_id is None:
        return ""
    with sessions() as session:
        return session.execute(select(Institution.code).where(Institution.id == institution_id)).scalar_one_or_none() or ""
