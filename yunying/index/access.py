"""What a principal may see, as SQL: its institution's studies plus explicitly granted ones.

One condition on ``study`` used by every read path (QIDO-RS, WADO-RS, C-FIND, C-MOVE, C-GET), so
the access rule is written once. Grants are indexed by study, grantee user and grantee
institution; the condition is a few index probes per candidate study.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true

from yunying.index.models import AccessGrant, Study


@dataclass(frozen=True)
class Scope:
    """The data a caller may read: ``institution_id``'s own, plus grants to ``user_id`` / the institution.

    ``everything`` is for the platform's own maintenance paths (fsck, import), never for a request.
    ``study_ids`` (a share visitor) is exactly these studies: no institution, no grants.
    """

    user_id: int | None
    institution_id: int | None
    everything: bool = False
    study_ids: frozenset[int] | None = None

    @classmethod
    def all(cls) -> Scope:
        return cls(None, None, everything=True)


def _active(now: datetime) -> ColumnElement[bool]:
    return and_(AccessGrant.revoked_at.is_(None),
                or_(AccessGrant.expires_at.is_(None), AccessGrant.expires_at > now))


def _grantee(scope: Scope) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if scope.user_id is not None:
        parts.append(AccessGrant.grantee_user_fk == scope.user_id)
    if scope.institution_id is not None:
        parts.append(AccessGrant.grantee_institution_fk == scope.institution_id)
    return or_(*parts) if parts else false()


def visible_study(scope: Scope, now: datetime | None = None) -> ColumnElement[bool]:
    """Condition on ``Study`` rows the scope may read."""
    if scope.everything:
        return true()
    if scope.study_ids is not None:  # a share: exactly its studies, whatever else the scope says
        return Study.id.in_(sorted(scope.study_ids)) if scope.study_ids else false()
    now = now or datetime.now(UTC)
    own = Study.institution_fk == scope.institution_id if scope.institution_id is not None else false()
    granted_study = exists(select(AccessGrant.id).where(
        AccessGrant.study_fk == Study.id, _grantee(scope), _active(now)))
    shared_institution = exists(select(AccessGrant.id).where(
        AccessGrant.source_institution_fk == Study.institution_fk, AccessGrant.study_fk.is_(None),
        _grantee(scope), _active(now)))
    return or_(own, granted_study, shared_institution)
