"""The job queue's SQL: enqueue, claim, renew, complete, fail. Every statement of the queue lives here.

States (a job's life, as data): queued → running → done; running → queued (failed, retried after a
backoff) → … → failed once ``max_attempts`` are used. A running job whose lease (``locked_until``)
has passed belongs to a worker that died: it is claimed again like a queued one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from yunying.index.db import write_session
from yunying.index.models import Job, utcnow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# Which state may follow which (the claim takes queued or an expired running job).
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING}),
    RUNNING: frozenset({DONE, QUEUED, FAILED, RUNNING}),  # RUNNING → RUNNING: a dead worker's job taken over
    DONE: frozenset(),
    FAILED: frozenset(),
}
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 3600.0
ERROR_CHARS = 500


@dataclass(frozen=True)
class JobInfo:
    """A claimed job as a handler sees it."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including this one


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: 10 s, 20 s, 40 s, … at most an hour."""
    return float(min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def enqueue(session: Session, kind: str, payload: dict[str, Any], *, delay: float = 0.0, dedupe_key: str | None = None,
            max_attempts: int = 5) -> int:
    """Add a job in the caller's transaction (it runs only if that transaction commits); return its id.

    With ``dedupe_key``, a job of the same kind and key that is still queued is reused instead: its
    ``run_after`` moves to ``now + delay`` if that is later (a burst of requests gives one run, after
    the burst). A job that is already running is not touched; a new one is queued behind it.
    """
    now = utcnow()
    run_after = now + timedelta(seconds=delay)
    if dedupe_key is not None:
        waiting = session.execute(select(Job).where(Job.kind == kind, Job.dedupe_key == dedupe_key, Job.state == QUEUED)
                                  .order_by(Job.id).limit(1).with_for_update()).scalar_one_or_none()
        if waiting is not None:
            if _utc(waiting.run_after) < run_after:
                waiting.run_after, waiting.updated_at = run_after, now
            waiting.payload = payload
            return waiting.id
    job = Job(kind=kind, payload=payload, state=QUEUED, attempts=0, max_attempts=max_attempts, run_after=run_after,
              last_error="", dedupe_key=dedupe_key, created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    return job.id


def _utc(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their zone: they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def claim(sessions: sessionmaker[Session], worker: str, kinds: frozenset[str], lease_seconds: float) -> JobInfo | None:
    """Take the next due job of ``kinds`` for ``worker`` (None: nothing due), in its own transaction.

    PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` — concurrent workers each lock a different row and
    never wait for each other. SQLite: the write transaction (``BEGIN IMMEDIATE``) serialises claims.
    The conditional ``UPDATE`` (still in the state we read) makes a double claim impossible on both.
    """
    now = utcnow()
    due = or_(and_(Job.state == QUEUED, Job.run_after <= now),
              and_(Job.state == RUNNING, Job.locked_until < now))
    with write_session(sessions) as session:
        row = session.execute(select(Job.id, Job.state, Job.attempts, Job.max_attempts)
                              .where(Job.kind.in_(sorted(kinds)), due).order_by(Job.run_after, Job.id).limit(1)
                              .with_for_update(skip_locked=True)).one_or_none()
        if row is None:
            return None
        if row.state == RUNNING and row.attempts >= row.max_attempts:  # its worker died on the last attempt
            session.execute(update(Job).where(Job.id == row.id).values(
                state=FAILED, locked_by=None, locked_until=None, updated_at=now,
                last_error="the worker stopped during the last attempt"))
            session.commit()
            return claim(sessions, worker, kinds, lease_seconds)
        taken = session.execute(update(Job).where(Job.id == row.id, Job.state == row.state, Job.attempts == row.attempts)
                                .values(state=RUNNING, attempts=row.attempts + 1, locked_by=worker[:100],
                                        locked_until=now + timedelta(seconds=lease_seconds), updated_at=now))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return None
        job = session.execute(select(Job.kind, Job.payload).where(Job.id == row.id)).one()
        session.commit()
    return JobInfo(row.id, job.kind, dict(job.payload or {}), row.attempts + 1)


def renew(sessions: sessionmaker[Session], job: JobInfo, worker: str, lease_seconds: float) -> bool:
    """Extend the lease of a job ``worker`` still holds; False when it lost the job (lease expired, taken over)."""
    with write_session(sessions) as session:
        done = session.execute(update(Job).where(Job.id == job.id, Job.state == RUNNING, Job.locked_by == worker[:100],
                                                 Job.attempts == job.attempts)
                               .values(locked_until=utcnow() + timedelta(seconds=lease_seconds)))
        session.commit()
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def complete(sessions: sessionmaker[Session], job: JobInfo, worker: str) -> bool:
    """Mark ``job`` done (only if ``worker`` still holds it); return whether it did."""
    return _finish(sessions, job, worker, state=DONE, locked_by=None, locked_until=None, last_error="")


def fail(sessions: sessionmaker[Session], job: JobInfo, worker: str, error: str, max_attempts: int | None = None) -> str:
    """Record a failed attempt: queued again after :func:`backoff`, or failed when the attempts are used up.

    Returns the job's new state. ``error`` is kept (truncated) for operators; it must not name a patient.
    """
    with sessions() as session:
        limit = max_attempts or session.execute(select(Job.max_attempts).where(Job.id == job.id)).scalar_one()
    if job.attempts >= limit:
        _finish(sessions, job, worker, state=FAILED, locked_by=None, locked_until=None, last_error=error[:ERROR_CHARS])
        return FAILED
    retry_at = utcnow() + timedelta(seconds=backoff(job.attempts))
    _finish(sessions, job, worker, state=QUEUED, locked_by=None, locked_until=None, last_error=error[:ERROR_CHARS],
            run_after=retry_at)
    return QUEUED


def _finish(sessions: sessionmaker[Session], job: JobInfo, worker: str, **values: Any) -> bool:
    with write_session(sessions) as session:
        done = session.execute(update(Job).where(Job.id == job.id, Job.state == RUNNING, Job.locked_by == worker[:100],
                                                 Job.attempts == job.attempts).values(updated_at=utcnow(), **values))
        session.commit()
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def pending(session: Session, kind: str, dedupe_key: str) -> bool:
    """Whether a job of ``kind`` with ``dedupe_key`` is queued or running."""
    found = session.execute(select(Job.id).where(Job.kind == kind, Job.dedupe_key == dedupe_key,
                                                 Job.state.in_((QUEUED, RUNNING))).limit(1)).first()
    return found is not None
