"""Verify the audit chain (``yunying audit verify``): every entry's hash, every link, the head.

The walk goes through the entries in ``seq`` order inside one database snapshot and stops at the
first break, which it names by seq and kind:

- ``modified``: an entry's fields no longer give its hash;
- ``deleted``: a seq is missing (a gap), or an entry no longer follows an entry that still exists;
- ``reordered``: an entry sits at another seq than the one it was written at;
- ``head-mismatch``: the head row disagrees with the last entry (tail truncated, entries beyond it);
- ``unchained``: entries without seq were inserted after the chain began;
- ``anchor-mismatch``: an entry's hash differs from one recorded earlier outside the database.

A writer with full database access can still rewrite the whole chain from some entry on; only a
hash kept outside the database (``--anchor SEQ:HASH``, the ATNA copy at a syslog collector) shows
that. The head printed by every successful run is such an anchor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth.audit import GENESIS, HEAD_ID, Entry
from yunying.index.models import AuditChainHead, AuditEvent


class BreakKind(StrEnum):
    MODIFIED = "modified"
    DELETED = "deleted"
    REORDERED = "reordered"
    HEAD_MISMATCH = "head-mismatch"
    UNCHAINED = "unchained"
    ANCHOR_MISMATCH = "anchor-mismatch"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_chain`: ``kind`` is None when the chain is intact."""

    algorithm: str
    checked: int  # entries whose hash and link were verified before the first break
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    kind: BreakKind | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is None

    def describe(self) -> str:
        if self.ok:
            text = f"audit chain OK: {self.checked} entries verified ({self.algorithm or 'empty'})"
            if self.head_seq:
                text += f"; head {self.head_seq}:{self.head_hash} (keep it: `yunying audit verify --anchor` it later)"
            return text + (f"; {self.detail}" if self.detail else "")
        where = f"at seq {self.broken_seq} " if self.broken_seq is not None else ""
        return f"audit chain BROKEN {where}({self.kind}): {self.detail}; {self.checked} entries verified before it"


def verify_chain(sessions: sessionmaker[Session], *, anchors: Mapping[int, str] | None = None,
                 batch: int = 5000) -> VerifyReport:
    """Walk the chain and report the first break (see the module docstring for the kinds)."""
    anchors = dict(anchors or {})
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":  # head and entries from one snapshot
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        head = session.get(AuditChainHead, HEAD_ID)
        unchained = session.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))).scalar_one()
        if head is None:
            if _seq_where(session, AuditEvent.seq.is_not(None)) is None:
                return VerifyReport("", 0, 0, "", detail=f"{unchained} entries not chained yet" if unchained else "")
            return VerifyReport("", 0, 0, "", 1, BreakKind.HEAD_MISMATCH, "the chain head row is missing")
        walk = _Walk(session, head, anchors)
        result = session.execute(select(AuditEvent).where(AuditEvent.seq.is_not(None)).order_by(AuditEvent.seq)
                                 .execution_options(yield_per=batch))
        failed: Entry | None = None
        for row in result.scalars():
            entry = Entry.of(row)
            if not walk.step(entry):
                failed = entry
                break
        result.close()
        if failed is not None:
            return walk.report(*walk.classify(failed))
        found = walk.finish()
        if found is not None:
            return walk.report(*found)
        if unchained and head.last_seq:
            return walk.report(None, BreakKind.UNCHAINED, f"{unchained} entries without seq were inserted outside the chain")
        return walk.report(None, None, f"{unchained} entries written before the chain are chained at the next append"
                           if unchained else "")


def _seq_where(session: Session, condition: ColumnElement[bool]) -> int | None:
    found = session.execute(select(AuditEvent.seq).where(condition, AuditEvent.seq.is_not(None)).limit(1)).scalar()
    return int(found) if found is not None else None


class _Walk:
    """The state of a walk along the chain: the seq expected next and the hash it must follow."""

    def __init__(self, session: Session, head: AuditChainHead, anchors: dict[int, str]) -> None:
        self.session, self.anchors = session, anchors
        self.head_seq, self.head_hash = head.last_seq, head.last_hash
        self.algorithm = head.algorithm or "sha256"
        self.expected, self.prev, self.checked = 1, GENESIS, 0

    def step(self, entry: Entry) -> bool:
        """Check one entry; False at the first one that breaks the chain."""
        if entry.seq != self.expected or entry.seq > self.head_seq:
            return False
        if entry.prev_hash != self.prev or entry.computed_hash(self.algorithm) != entry.hash:
            return False
        if self.anchors.get(entry.seq, entry.hash) != entry.hash:
            return False
        self.expected, self.prev, self.checked = entry.seq + 1, entry.hash, self.checked + 1
        return True

    def classify(self, entry: Entry) -> tuple[int | None, BreakKind, str]:
        """Say how ``entry`` (the first to fail :meth:`step`) breaks the chain."""
        if entry.seq > self.head_seq:
            return entry.seq, BreakKind.HEAD_MISMATCH, f"entry {entry.seq} lies beyond the head ({self.head_seq})"
        if entry.seq != self.expected:
            missing = f"entry {self.expected} is" if entry.seq == self.expected + 1 else \
                f"entries {self.expected}..{entry.seq - 1} are"
            return self.expected, BreakKind.DELETED, f"{missing} missing"
        self_ok = entry.computed_hash(self.algorithm) == entry.hash
        if self_ok and entry.prev_hash == self.prev:
            return entry.seq, BreakKind.ANCHOR_MISMATCH, \
                f"entry {entry.seq} differs from the anchor: the chain was rewritten up to here"
        follows_existing = entry.prev_hash == GENESIS or _seq_where(self.session, AuditEvent.hash == entry.prev_hash) is not None
        if not self_ok:
            original = self._original_seq(entry)
            if original is not None:
                return entry.seq, BreakKind.REORDERED, f"entry {entry.seq} is the entry written as seq {original}"
            if entry.prev_hash != self.prev and not follows_existing:
                return entry.seq, BreakKind.DELETED, \
                    f"the entry before entry {entry.seq} is gone and the entries after it were renumbered"
            return entry.seq, BreakKind.MODIFIED, f"entry {entry.seq} does not match its hash (changed after it was written)"
        if follows_existing:
            return entry.seq, BreakKind.REORDERED, f"entry {entry.seq} follows another entry than entry {entry.seq - 1}"
        if entry.seq == 1:
            return 1, BreakKind.MODIFIED, "entry 1 was changed and re-hashed"
        return entry.seq - 1, BreakKind.MODIFIED, \
            f"entry {entry.seq - 1} was changed and re-hashed (or entries removed): entry {entry.seq} no longer follows it"

    def _original_seq(self, entry: Entry) -> int | None:
        """The seq ``entry`` was written at, when it is an intact entry moved to another seq."""
        candidates = {1} if entry.prev_hash == GENESIS else set()
        before = _seq_where(self.session, AuditEvent.hash == entry.prev_hash)
        after = _seq_where(self.session, AuditEvent.prev_hash == entry.hash)
        candidates |= {before + 1} if before is not None else set()
        candidates |= {after - 1} if after is not None else set()
        candidates |= {self.head_seq} if self.head_hash == entry.hash else set()
        for seq in sorted(candidates - {entry.seq}):
            if replace(entry, seq=seq).computed_hash(self.algorithm) == entry.hash:
                return seq
        return None

    def finish(self) -> tuple[int | None, BreakKind, str] | None:
        """After the last entry: the head and the anchors beyond it."""
        last = self.expected - 1
        if last < self.head_seq:
            missing = f"entry {self.head_seq} is" if last + 1 == self.head_seq else f"entries {last + 1}..{self.head_seq} are"
            return last + 1, BreakKind.HEAD_MISMATCH, f"the head records {self.head_seq} entries: {missing} missing"
        if last and self.prev != self.head_hash:
            return last, BreakKind.HEAD_MISMATCH, f"the head's hash differs from entry {last}'s"
        beyond = sorted(seq for seq in self.anchors if seq > last)
        if beyond:
            return beyond[0], BreakKind.ANCHOR_MISMATCH, f"entry {beyond[0]} was anchored earlier but is missing"
        return None

    def report(self, seq: int | None, kind: BreakKind | None, detail: str) -> VerifyReport:
        return VerifyReport(self.algorithm if self.head_seq else "", self.checked, self.head_seq, self.head_hash,
                            seq, kind, detail)
