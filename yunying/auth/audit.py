"""Append-only audit trail of access to patient data (who, what, when, from where, outcome).

Subjects are UIDs or query descriptions without patient identifiers.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from yunying.index.models import AuditEvent, utcnow


def record(sessions: sessionmaker[Session], *, actor: str, action: str, subject: str = "", source: str = "",
           outcome: str = "success", detail: str = "") -> None:
    """Write one audit entry in its own transaction."""
    with sessions() as session:
        session.add(AuditEvent(at=utcnow(), actor=actor[:100], action=action[:40], subject=subject[:200],
                               source=source[:200], outcome=outcome[:40], detail=detail))
        session.commit()
