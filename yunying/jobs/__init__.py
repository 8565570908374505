"""A small database-backed job queue: work recorded in a transaction, done after the commit by workers.

* :mod:`yunying.jobs.queue` — the SQL, in one place: :func:`~yunying.jobs.queue.enqueue` (inside the
  caller's transaction), ``claim`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers on several
  nodes share the queue; SQLite serialises writers), ``complete``, ``fail`` (retry with backoff).
* :mod:`yunying.jobs.worker` — threads that claim and run jobs through a handler table
  ``{kind: handler}`` and a short middleware chain (logging, lease renewal).

The handler table is built once, in :func:`yunying.compose.job_handlers`. A handler gets a
:class:`~yunying.jobs.queue.JobInfo` and raises to fail; it must be idempotent, because a job whose
worker died is run again when its lease expires.
"""
