"""Workers: threads that claim jobs and run them through the handler table and the middleware chain.

A middleware is a function ``(job, call_next) -> None`` around the handler (dramatiq's habit: the
core only moves work, each feature is a small middleware listed once in :data:`MIDDLEWARE`).
Retries with backoff are the queue's (:func:`yunying.jobs.queue.fail`); the lease is renewed while a
handler runs, so a long job is not taken over by another worker, and a dead worker's job is.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from yunying.jobs import queue
from yunying.jobs.queue import JobInfo

log = logging.getLogger(__name__)

Handler = Callable[[JobInfo], None]
Middleware = Callable[[JobInfo, Callable[[], None]], None]


def log_outcome(job: JobInfo, call_next: Callable[[], None]) -> None:
    """Log each run with its duration (kind and id only: payloads may name an exam)."""
    started = time.monotonic()
    try:
        call_next()
    except Exception as exc:
        log.warning("job %d (%s) attempt %d failed after %.1f s: %s", job.id, job.kind, job.attempts,
                    time.monotonic() - started, type(exc).__name__)
        raise
    log.info("job %d (%s) done in %.1f s", job.id, job.kind, time.monotonic() - started)


MIDDLEWARE: tuple[Middleware, ...] = (log_outcome,)


def worker_name(index: int = 0) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


@dataclass
class Worker:
    """Claims and runs jobs of the kinds in ``handlers`` until stopped."""

    sessions: sessionmaker[Session]
    handlers: Mapping[str, Handler]
    name: str = field(default_factory=worker_name)
    poll_seconds: float = 1.0
    lease_seconds: float = 300.0
    middleware: Sequence[Middleware] = MIDDLEWARE
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def run_once(self) -> JobInfo | None:
        """Claim one due job and run it to its end (done, retry or failed); None when nothing was due."""
        job = queue.claim(self.sessions, self.name, frozenset(self.handlers), self.lease_seconds)
        if job is None:
            return None
        renewing = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(job, renewing), daemon=True, name=f"lease-{job.id}")
        renewer.start()
        try:
            self._call(job)
        except Exception as exc:
            renewing.set()
            state = queue.fail(self.sessions, job, self.name, f"{type(exc).__name__}: {exc}")
            log.info("job %d (%s) is %s", job.id, job.kind, state)
        else:
            renewing.set()
            if not queue.complete(self.sessions, job, self.name):
                log.warning("job %d (%s) finished after its lease was taken over", job.id, job.kind)
        finally:
            renewing.set()
            renewer.join()
        return job

    def _call(self, job: JobInfo) -> None:
        handler = self.handlers[job.kind]

        def chain(index: int) -> Callable[[], None]:
            if index == len(self.middleware):
                return lambda: handler(job)
            return lambda: self.middleware[index](job, chain(index + 1))

        chain(0)()

    def _renew(self, job: JobInfo, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            try:
                if not queue.renew(self.sessions, job, self.name, self.lease_seconds):
                    return
            except Exception as exc:  # the database is away: the lease may lapse, the job then runs again
                log.warning("job %d: lease renewal failed: %s", job.id, type(exc).__name__)

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once() is not None
            except Exception as exc:  # the database is away: wait and try again
                log.error("job worker %s: %s", self.name, type(exc).__name__)
                worked = False
            if not worked:
                self._stop.wait(self.poll_seconds)

    def start(self) -> Worker:
        self._thread = threading.Thread(target=self.run_forever, daemon=True, name=f"job-worker-{self.name}")
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop claiming; wait up to ``timeout`` for the job in hand (an unfinished one runs again elsewhere)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def start_workers(sessions: sessionmaker[Session], handlers: Mapping[str, Handler], count: int, *,
                  poll_seconds: float = 1.0, lease_seconds: float = 300.0) -> list[Worker]:
    """Start ``count`` worker threads (0: none)."""
    return [Worker(sessions, handlers, worker_name(i), poll_seconds, lease_seconds).start() for i in range(count)]
