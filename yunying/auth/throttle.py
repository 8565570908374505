"""Fixed-window rate limits shared by every API node (login attempts, public pages).

One ``rate_counter`` row per key (``"login:<address>"``): the start of its current window and the
number of hits in it. A hit is one ``UPDATE`` that either increments the count or restarts the
window (after an ``INSERT … ON CONFLICT DO NOTHING`` creating it), so concurrent nodes never lose a
hit (the row lock on PostgreSQL, the write lock on SQLite).
Rows of windows long past are swept now and then.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from yunying.index.db import write_session
from yunying.index.models import RateCounter

SWEEP_AFTER_S = 3600.0  # counters of windows older than this are deleted ...
SWEEP_CHANCE = 0.01  # ... by about one new window in a hundred


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int  # hits in the current window, this one included
    retry_after_s: int  # when refused: seconds until the window ends


def _window(now: float, window_s: float) -> float:
    return math.floor(now / window_s) * window_s


def _verdict(count: int, limit: int, window_start: float, window_s: float, now: float) -> Verdict:
    return Verdict(count <= limit, count, max(1, math.ceil(window_start + window_s - now)))


def hit(sessions: sessionmaker[Session], key: str, limit: int, window_s: float = 60.0, now: float | None = None) -> Verdict:
    """Count one hit of ``key``; refused when this window already had ``limit`` hits."""
    now = time.time() if now is None else now
    start = _window(now, window_s)
    bump = (update(RateCounter).where(RateCounter.key == key).values(
        count=case((RateCounter.window_start == start, RateCounter.count + 1), else_=1), window_start=start))
    with write_session(sessions) as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        created = session.execute(dialect.insert(RateCounter).values(key=key, window_start=start, count=0)
                                  .on_conflict_do_nothing(index_elements=["key"]))
        session.execute(bump)
        if created.rowcount and random.random() < SWEEP_CHANCE:  # type: ignore[attr-defined]
            session.execute(delete(RateCounter).where(RateCounter.window_start < start - SWEEP_AFTER_S))
        count = session.execute(select(RateCounter.count).where(RateCounter.key == key)).scalar_one()
        session.commit()
    return _verdict(count, limit, start, window_s, now)


def peek(sessions: sessionmaker[Session], key: str, limit: int, window_s: float = 60.0, now: float | None = None) -> Verdict:
    """Whether one more hit of ``key`` would be allowed, without counting it."""
    now = time.time() if now is None else now
    start = _window(now, window_s)
    with sessions() as session:
        row = session.execute(select(RateCounter).where(RateCounter.key == key)).scalar_one_or_none()
    count = row.count if row is not None and row.window_start == start else 0
    return _verdict(count + 1, limit, start, window_s, now)
