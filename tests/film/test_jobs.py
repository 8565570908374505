"""The job queue on a real index (SQLite and PostgreSQL): dedupe, retries with backoff, failure after the
last attempt, a dead worker's job taken over — and, on PostgreSQL, that concurrent workers never run
the same job (SKIP LOCKED: a locked job is passed over, not waited for)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from yunying.compose import Archive
from yunying.index.db import write_session
from yunying.index.models import Job, utcnow
from yunying.jobs import queue
from yunying.jobs.queue import JobInfo
from yunying.jobs.worker import Worker


def _enqueue(archive: Archive, kind: str, payload: dict[str, object], **kwargs: object) -> int:
    with write_session(archive.sessions) as session:
        job_id = queue.enqueue(session, kind, payload, **kwargs)  # type: ignore[arg-type]
        session.commit()
    return job_id


def _job(archive: Archive, job_id: int) -> Job:
    with archive.sessions() as session:
        return session.execute(select(Job).where(Job.id == job_id)).scalar_one()


def test_dedupe_retry_backoff_failure_and_takeover(archive: Archive) -> None:
    first = _enqueue(archive, "probe", {"n": 1}, dedupe_key="k", delay=0)
    again = _enqueue(archive, "probe", {"n": 2}, dedupe_key="k", delay=3600)  # merged: one job, later, newest payload
    assert again == first
    merged = _job(archive, first)
    assert merged.payload == {"n": 2} and merged.state == "queued"
    assert queue.claim(archive.sessions, "w1", frozenset({"probe"}), 60) is None  # not due for an hour
    with write_session(archive.sessions) as session:
        session.execute(update(Job).where(Job.id == first).values(run_after=utcnow() - timedelta(seconds=1)))
        session.commit()

    seen: list[JobInfo] = []

    def flaky(job: JobInfo) -> None:
        seen.append(job)
        raise RuntimeError("disk full")

    worker = Worker(archive.sessions, {"probe": flaky}, name="w1", lease_seconds=60)
    assert worker.run_once() is not None
    row = _job(archive, first)
    assert row.state == "queued" and row.attempts == 1 and row.last_error == "RuntimeError: disk full"
    assert row.locked_by is None and row.run_after.replace(tzinfo=None) > utcnow().replace(tzinfo=None)  # backoff
    assert worker.run_once() is None  # waiting for its backoff
    assert queue.backoff(1) == 10 and queue.backoff(2) == 20 and queue.backoff(30) == 3600

    # A job whose worker died (lease passed) is taken over by another worker; the dead one cannot finish it.
    other = _enqueue(archive, "probe", {"n": 3}, max_attempts=2)
    taken = queue.claim(archive.sessions, "dead", frozenset({"probe"}), 60)
    assert taken is not None and taken.id == other and taken.attempts == 1
    with write_session(archive.sessions) as session:
        session.execute(update(Job).where(Job.id == other).values(locked_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    done: list[int] = []
    healthy = Worker(archive.sessions, {"probe": lambda job: done.append(job.id)}, name="w2", lease_seconds=60)
    assert healthy.run_once() is not None and done == [other]
    assert _job(archive, other).state == "done" and _job(archive, other).attempts == 2
    assert not queue.complete(archive.sessions, taken, "dead")  # the dead worker's late answer is ignored
    assert _job(archive, other).state == "done"

    # The last attempt used up: failed, never claimed again.
    last = _enqueue(archive, "probe", {}, max_attempts=1)
    Worker(archive.sessions, {"probe": flaky}, name="w3").run_once()
    assert _job(archive, last).state == "failed" and _job(archive, last).attempts == 1
    assert queue.claim(archive.sessions, "w3", frozenset({"probe"}), 60) is None
    # Another kind is not claimed by a worker without its handler.
    _enqueue(archive, "download", {})
    assert queue.claim(archive.sessions, "w3", frozenset({"probe"}), 60) is None


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_workers_never_run_the_same_job(archive: Archive) -> None:
    ids = [_enqueue(archive, "count", {"i": i}) for i in range(40)]
    # A job locked by another transaction (a worker mid-claim) is skipped, not waited for.
    with archive.engine.connect() as holder:
        holder.execute(text("BEGIN"))
        holder.execute(text("SELECT id FROM job WHERE id = :id FOR UPDATE"), {"id": ids[0]})
        claimed = queue.claim(archive.sessions, "w-skip", frozenset({"count"}), 60)
        assert claimed is not None and claimed.id == ids[1]
        holder.execute(text("ROLLBACK"))
    queue.complete(archive.sessions, claimed, "w-skip")

    runs: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(4)

    def record(job: JobInfo) -> None:
        with lock:
            runs[job.id] += 1

    def drain(name: str) -> None:
        worker = Worker(archive.sessions, {"count": record}, name=name, lease_seconds=60)
        start.wait()
        while worker.run_once() is not None:
            pass

    threads = [threading.Thread(target=drain, args=(f"w{i}",), name=f"w{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert set(runs) == set(ids) - {ids[1]} and max(runs.values()) == 1
    with archive.sessions() as session:
        states = Counter(session.scalars(select(Job.state).where(Job.kind == "count")))
    assert states == Counter({"done": 40})
