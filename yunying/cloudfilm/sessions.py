"""Patient sessions (cookie ``yy_patient``): rows holding the SHA-256 of the cookie, the identity and a CSRF token.

30 minutes idle, 12 hours absolute (decision 0010); any API node checks them. Unsafe requests of a
patient session must carry its CSRF token (``X-CSRF-Token``), exactly like staff sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth.access import PATIENT_VIA, Principal, Role
from yunying.cloudfilm.tokens import aware
from yunying.index.db import write_session
from yunying.index.models import PatientSession, utcnow

IDLE = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)
TOUCH_EVERY = timedelta(seconds=15)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def patient_username(identity: tuple[str, ...] | list[str]) -> str:
    """``patient:<first 8 hex of the identity hash>``: the actor name in the audit trail."""
    return f"patient:{identity[0][:8]}" if identity else "patient:-"


@dataclass(frozen=True)
class NewPatientSession:
    cookie: str  # the raw value: goes to the browser only
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class PatientSessionView:
    session_id: str
    csrf_token: str
    principal: Principal
    display_name: str
    expires_at: datetime  # the earlier of idle and absolute expiry
    identity: tuple[str, ...] = field(default=())


def create(sessions: sessionmaker[Session], identity: tuple[str, ...], display_name: str, *, token_id: int | None,
           source: str = "", now: datetime | None = None) -> NewPatientSession:
    now = now or utcnow()
    raw, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    row = PatientSession(id=_hash(raw), csrf_token=csrf, identity=",".join(identity), display_name=display_name[:64],
                         token_fk=token_id, source=source[:200], created_at=now, last_seen_at=now,
                         expires_at=now + MAX_AGE)
    with write_session(sessions) as session:
        session.add(row)
        session.commit()
    return NewPatientSession(raw, csrf, min(now + IDLE, now + MAX_AGE))


def principal_of(session_id: str, identity: tuple[str, ...]) -> Principal:
    return Principal(user_id=None, username=patient_username(identity), roles=frozenset({Role.PATIENT}),
                     institution_id=None, via=PATIENT_VIA, session_id=session_id,
                     extra={"identity": ",".join(identity)})


def authenticate(sessions: sessionmaker[Session], raw: str, now: datetime | None = None) -> PatientSessionView | None:
    """The live session of cookie ``raw`` (touching it), or None (unknown, revoked, idle, over)."""
    now = now or utcnow()
    session_id = _hash(raw)
    with sessions() as session:
        row = session.get(PatientSession, session_id)
        if row is None or row.revoked_at is not None:
            return None
        last_seen, absolute = aware(row.last_seen_at), aware(row.expires_at)
        identity = tuple(h for h in row.identity.split(",") if h)
        view = PatientSessionView(session_id, row.csrf_token, principal_of(session_id, identity), row.display_name,
                                  min(now + IDLE, absolute), identity)
    if now >= absolute or now - last_seen >= IDLE:
        return None
    if now - last_seen >= TOUCH_EVERY:
        with write_session(sessions) as session:
            session.execute(update(PatientSession).where(PatientSession.id == session_id).values(last_seen_at=now))
            session.commit()
    return view


def logout(sessions: sessionmaker[Session], session_id: str, now: datetime | None = None) -> None:
    with write_session(sessions) as session:
        session.execute(update(PatientSession).where(PatientSession.id == session_id)
                        .values(revoked_at=now or utcnow()))
        session.commit()
