"""Edge gateway heartbeats (GW-13): keep the latest status of every gateway and judge staleness.

Each hospital's gateway reports its queue lanes, throughput, disk budget and recent errors every
minute or so. The archive keeps only the latest report per gateway (an upsert, not a history) so an
operator sees every gateway at a glance, and marks a gateway *stale* when nothing arrived from it
within ``stale_after_s`` seconds of the archive's own clock.

Heartbeats carry no patient data (counts, byte sizes, versions, error text written by our gateway),
so they are neither audited nor a PHI concern in logs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from yunying.errors import NotFound
from yunying.index.db import write_session
from yunying.index.models import GatewayStatus, utcnow

GATEWAY_ID_PATTERN = r"^[A-Za-z0-9._-]+$"
GATEWAY_ID_MAX = 64
LANES = ("emergency", "routine", "backfill")  # the gateway's upload queues, most urgent first
DEFAULT_STALE_AFTER_S = 180.0
_INT32_MAX = 2**31 - 1

# One upsert per dialect (same ON CONFLICT API on both); other databases are not supported.
_INSERT: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# Byte-wise order of gateway ids on both databases (PostgreSQL's default collation may ignore
# case and punctuation). Gateways number in the thousands at most, so sorting them is cheap.
_BYTE_COLLATION = {"postgresql": "C", "sqlite": "BINARY"}


@dataclass(frozen=True)
class Lane:
    """One upload queue of a gateway: how many instances wait, and how long the oldest has waited."""

    depth: int
    oldest_age_s: float


@dataclass(frozen=True)
class ErrorNote:
    at: datetime
    message: str


@dataclass(frozen=True)
class Heartbeat:
    """A validated heartbeat; ``figures`` is the whole body as sent (JSON-ready)."""

    gateway_id: str
    version: str
    institution: str | None
    sent_at: datetime
    lanes: Mapping[str, Lane]
    disk_used_bytes: int
    disk_budget_bytes: int
    last_errors: Sequence[ErrorNote]
    figures: Mapping[str, Any]

    @property
    def queue_depth(self) -> int:
        """Instances waiting over all lanes (the column saturates at 2³¹−1; ``figures`` keeps the exact values)."""
        return min(sum(lane.depth for lane in self.lanes.values()), _INT32_MAX)

    @property
    def oldest_age_s(self) -> float:
        return max((lane.oldest_age_s for lane in self.lanes.values()), default=0.0)

    @property
    def last_error(self) -> str | None:
        if not self.last_errors:
            return None
        return max(self.last_errors, key=lambda note: as_utc(note.at)).message


@dataclass(frozen=True)
class GatewayReport:
    """What an operator sees of one gateway: its latest heartbeat and whether it is stale."""

    gateway_id: str
    institution: str | None
    version: str
    reported_at: datetime
    received_at: datetime
    remote_addr: str
    queue_depth: int
    oldest_age_s: float
    disk_used_bytes: int
    disk_budget_bytes: int
    last_error: str | None
    figures: dict[str, Any]
    age_s: float
    stale: bool


@dataclass(frozen=True)
class GatewayPage:
    items: list[GatewayReport]
    total: int


def valid_gateway_id(gateway_id: str) -> bool:
    return len(gateway_id) <= GATEWAY_ID_MAX and re.fullmatch(GATEWAY_ID_PATTERN, gateway_id) is not None


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def record_heartbeat(sessions: sessionmaker[Session], heartbeat: Heartbeat, *, remote_addr: str,
                     now: datetime | None = None) -> None:
    """Store ``heartbeat`` as the latest status of its gateway, replacing the previous one.

    Parameters
    ----------
    sessions
        The archive's session factory.
    heartbeat
        A validated heartbeat.
    remote_addr
        The address the heartbeat came from (shown to operators: which site is reporting).
    now
        The archive's clock, injectable for tests; ``received_at`` is this time.

    Raises
    ------
    ValueError
        If the gateway id is not 1–64 characters of ``[A-Za-z0-9._-]``.
    """
    if not valid_gateway_id(heartbeat.gateway_id):
        raise ValueError(f"invalid gateway id {heartbeat.gateway_id!r}")
    values: dict[str, Any] = {
        "institution": heartbeat.institution,
        "version": heartbeat.version,
        "reported_at": as_utc(heartbeat.sent_at),  # SQLite keeps the wall time only: store UTC
        "received_at": as_utc(now or utcnow()),
        "remote_addr": remote_addr[:64],
        "figures": dict(heartbeat.figures),
        "queue_depth": heartbeat.queue_depth,
        "oldest_age_s": heartbeat.oldest_age_s,
        "disk_used_bytes": heartbeat.disk_used_bytes,
        "disk_budget_bytes": heartbeat.disk_budget_bytes,
        "last_error": heartbeat.last_error,
    }
    with write_session(sessions) as session:
        insert = _INSERT[session.get_bind().dialect.name]
        statement = insert(GatewayStatus).values(gateway_id=heartbeat.gateway_id, **values)
        session.execute(statement.on_conflict_do_update(index_elements=[GatewayStatus.gateway_id], set_=values))
        session.commit()


def report(row: GatewayStatus, *, now: datetime, stale_after_s: float) -> GatewayReport:
    """A stored status as seen at ``now``: stale when nothing arrived within ``stale_after_s`` seconds."""
    received = as_utc(row.received_at)
    age_s = max((as_utc(now) - received).total_seconds(), 0.0)
    return GatewayReport(
        gateway_id=row.gateway_id, institution=row.institution, version=row.version,
        reported_at=as_utc(row.reported_at), received_at=received, remote_addr=row.remote_addr,
        queue_depth=row.queue_depth, oldest_age_s=row.oldest_age_s, disk_used_bytes=row.disk_used_bytes,
        disk_budget_bytes=row.disk_budget_bytes, last_error=row.last_error, figures=dict(row.figures),
        age_s=age_s, stale=age_s > stale_after_s,
    )


def list_gateways(sessions: sessionmaker[Session], *, limit: int, offset: int = 0,
                  stale_after_s: float = DEFAULT_STALE_AFTER_S, now: datetime | None = None) -> GatewayPage:
    """Every gateway's latest status, ordered by gateway id (byte order on both databases)."""
    moment = now or utcnow()
    with sessions() as session:
        collation = _BYTE_COLLATION[session.get_bind().dialect.name]
        total = session.execute(select(func.count()).select_from(GatewayStatus)).scalar_one()
        rows = session.execute(select(GatewayStatus).order_by(GatewayStatus.gateway_id.collate(collation))
                               .limit(limit).offset(offset)).scalars().all()
    return GatewayPage([report(row, now=moment, stale_after_s=stale_after_s) for row in rows], total)


def get_gateway(sessions: sessionmaker[Session], gateway_id: str, *, stale_after_s: float = DEFAULT_STALE_AFTER_S,
                now: datetime | None = None) -> GatewayReport:
    """The latest status of one gateway.

    Raises
    ------
    NotFound
        If no heartbeat from ``gateway_id`` was ever received.
    """
    with sessions() as session:
        row = session.get(GatewayStatus, gateway_id)
    if row is None:
        raise NotFound(f"no heartbeat received from gateway {gateway_id!r}")
    return report(row, now=now or utcnow(), stale_after_s=stale_after_s)
