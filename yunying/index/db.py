"""Engine and sessions; SQLite tuned for durability (WAL + synchronous=FULL) and concurrency."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_IMMEDIATE = "yunying_sqlite_immediate"


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``.

    SQLite runs in WAL mode with ``synchronous=FULL`` so a committed row survives
    power loss; write transactions start with ``BEGIN IMMEDIATE`` (see
    :func:`write_session`) so concurrent writers queue instead of failing.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=10, max_overflow=30, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=10, max_overflow=30)

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def write_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction takes the write lock up front on SQLite.

    The caller commits; an exception rolls back.
    """
    engine = factory.kw["bind"]
    with engine.connect() as conn:
        conn = conn.execution_options(**{_IMMEDIATE: True})
        # the factory's info (audit, cloud-film configuration) goes along, as for the factory's own sessions
        with Session(bind=conn, expire_on_commit=False, info=dict(factory.kw.get("info") or {})) as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
