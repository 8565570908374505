"""Explicit cross-institution access: create, list and revoke grants (consultation, patient authorisation,
regional sharing). Every change is audited by the caller; reads use ``yunying.index.access``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.errors import NotFound
from yunying.index.db import write_session
from yunying.index.models import AccessGrant, Study, utcnow

GRANT_KINDS = frozenset({"consultation", "patient-authorization", "regional-sharing", "referral", "teaching"})


def grant_study(sessions: sessionmaker[Session], *, kind: str, study_uid: str, granted_by: int | None,
                to_user: int | None = None, to_institution: int | None = None, days: float | None = None,
                reason: str = "") -> int:
    """Let ``to_user`` or ``to_institution`` read one study; returns the grant id."""
    if kind not in GRANT_KINDS:
        raise ValueError(f"unknown grant kind {kind!r} ({', '.join(sorted(GRANT_KINDS))})")
    if (to_user is None) == (to_institution is None):
        raise ValueError("a grant goes to exactly one user or one institution")
    with write_session(sessions) as session:
        study_id = session.execute(select(Study.id).where(Study.study_uid == study_uid)).scalar_one_or_none()
        if study_id is None:
            raise NotFound("no such study")
        grant = AccessGrant(kind=kind, study_fk=study_id, grantee_user_fk=to_user, grantee_institution_fk=to_institution,
                            granted_by_fk=granted_by, reason=reason[:500],
                            expires_at=datetime.now(UTC) + timedelta(days=days) if days else None)
        session.add(grant)
        session.commit()
        return grant.id


def share_institution(sessions: sessionmaker[Session], *, source_institution: int, to_institution: int,
                      granted_by: int | None, days: float | None = None, reason: str = "") -> int:
    """A regional sharing agreement: every study of ``source_institution`` readable by ``to_institution``."""
    with write_session(sessions) as session:
        grant = AccessGrant(kind="regional-sharing", source_institution_fk=source_institution,
                            grantee_institution_fk=to_institution, granted_by_fk=granted_by, reason=reason[:500],
                            expires_at=datetime.now(UTC) + timedelta(days=days) if days else None)
        session.add(grant)
        session.commit()
        return grant.id


def revoke_grant(sessions: sessionmaker[Session], grant_id: int) -> bool:
    with write_session(sessions) as session:
        grant = session.get(AccessGrant, grant_id)
        if grant is None or grant.revoked_at is not None:
            return False
        grant.revoked_at = utcnow()
        session.commit()
        return True
