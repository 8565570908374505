"""The gateway's figures: for ``yunying gateway status``, the local status page and heartbeats."""

from __future__ import annotations

import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yunying import __version__
from yunying.gateway.settings import GatewaySettings
from yunying.gateway.spool import SpoolFigures, read_figures, today

THROUGHPUT_WINDOW_S = 60.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def snapshot(settings: GatewaySettings, figures: SpoolFigures, db: sqlite3.Connection, now: float | None = None,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One JSON-able status document (the heartbeat body is this plus nothing patient-related)."""
    now = time.time() if now is None else now
    count, nbytes = db.execute("SELECT COUNT(*), COALESCE(SUM(sent_bytes), 0) FROM items WHERE state = 'sent'"
                               " AND sent_at > ?", (now - THROUGHPUT_WINDOW_S,)).fetchone()
    uploaded_today = db.execute("SELECT COALESCE(SUM(count), 0) FROM daily WHERE day = ? AND kind = 'uploaded'",
                                (today(now),)).fetchone()[0]
    free = shutil.disk_usage(settings.data_dir).free if settings.data_dir.exists() else 0
    warnings: list[str] = []
    # Uploaded copies kept for re-sends give way on demand: only what is not yet in the cloud fills the budget.
    pending_fraction = figures.pending_bytes / figures.budget_bytes if figures.budget_bytes else 0.0
    if pending_fraction >= settings.disk_warn_fraction:
        warnings.append(f"spool at {pending_fraction:.0%} of its disk budget with data not yet in the cloud")
    if free < settings.disk_budget_bytes - figures.used_bytes:
        warnings.append("less free disk than the remaining spool budget")
    if figures.failed:
        warnings.append(f"{figures.failed} instance(s) refused by the cloud; see last errors")
    body: dict[str, Any] = {
        "gateway_id": settings.name,
        "version": __version__,
        "institution": settings.institution or None,
        "sent_at": _iso(now),
        "lanes": {name: {"depth": lane.depth, "oldest_age_s": round(lane.oldest_age_s, 3)}
                  for name, lane in figures.lanes.items()},
        "throughput": {"instances_per_s": round(count / THROUGHPUT_WINDOW_S, 3),
                       "mb_per_s": round(nbytes / THROUGHPUT_WINDOW_S / 1e6, 3), "window_s": THROUGHPUT_WINDOW_S},
        "disk": {"used_bytes": figures.used_bytes, "budget_bytes": figures.budget_bytes, "free_bytes": free},
        "pending_bytes": figures.pending_bytes,
        "compression": {"original_bytes": figures.original_bytes, "sent_bytes": figures.sent_bytes},
        "uploaded_today": int(uploaded_today),
        "failed": figures.failed,
        "last_errors": [{"at": _iso(at), "message": message} for at, message in figures.last_errors],
        "warnings": warnings,
    }
    if extra:
        body.update(extra)
    return body


def read_status(settings: GatewaySettings) -> dict[str, Any]:
    """Status read from the spool database of a gateway that may be running (read-only)."""
    path: Path = settings.queue_db
    if not path.exists():
        raise FileNotFoundError(f"no gateway queue at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        figures = read_figures(db, None, time.time(), settings.disk_budget_bytes)
        body = snapshot(settings, figures, db)
        body["daily"] = [{"day": d, "kind": k, "count": c, "bytes": b} for d, k, c, b in db.execute(
            "SELECT day, kind, count, bytes FROM daily ORDER BY day DESC, kind LIMIT 80")]
        body["progress"] = {job: state for job, state in db.execute("SELECT job, state FROM progress")}
        return body
    finally:
        db.close()


def heartbeat_body(status: dict[str, Any]) -> dict[str, Any]:
    """The fields the cloud's heartbeat endpoint accepts."""
    keys = ("gateway_id", "version", "institution", "sent_at", "lanes", "throughput", "disk", "compression",
            "uploaded_today", "failed", "last_errors", "warnings")
    body = {k: status[k] for k in keys}
    if body["institution"] is None:
        del body["institution"]
    return body


def render_text(status: dict[str, Any]) -> str:
    """Human-readable status for the terminal."""
    lines = [f"gateway {status['gateway_id']} (version {status['version']}) at {status['sent_at']}"]
    for name, lane in status["lanes"].items():
        lines.append(f"  {name:<10} queued {lane['depth']:>8}   oldest {lane['oldest_age_s']:>10.1f} s")
    t = status["throughput"]
    lines.append(f"  throughput {t['instances_per_s']:.2f} instances/s, {t['mb_per_s']:.2f} MB/s (last {t['window_s']:.0f} s)")
    c = status["compression"]
    if c["original_bytes"]:
        lines.append(f"  compression saved {1 - c['sent_bytes'] / c['original_bytes']:.1%} "
                     f"({c['original_bytes']} → {c['sent_bytes']} bytes)")
    d = status["disk"]
    lines.append(f"  spool {d['used_bytes']} of {d['budget_bytes']} bytes budget"
                 f" ({status['pending_bytes']} not yet in the cloud), {d['free_bytes']} bytes free on disk")
    lines.append(f"  uploaded today {status['uploaded_today']}, refused by the cloud {status['failed']}")
    for warning in status["warnings"]:
        lines.append(f"  WARNING {warning}")
    for error in status["last_errors"][:5]:
        lines.append(f"  error {error['at']}: {error['message']}")
    for job, state in status.get("progress", {}).items():
        lines.append(f"  {job}: {state[:300]}")
    return "\n".join(lines)
