"""Requests of an anonymous visitor name studies by replaced UIDs: map them back inside the scope.

The replacement is a keyed hash, so it is inverted by hashing the UIDs the visitor may see (a share
holds a few studies) and looking the request's UIDs up. A UID that matches nothing is returned as
given: the scope condition then answers 404 exactly as for an unknown study.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.deid.profile import Deidentifier
from yunying.index.access import Scope, visible_study
from yunying.index.models import Instance, Series, Study


@dataclass(frozen=True)
class Originals:
    study: str
    series: str | None = None
    instance: str | None = None


def originals(sessions: sessionmaker[Session], scope: Scope, deid: Deidentifier, study: str,
              series: str | None = None, instance: str | None = None) -> Originals:
    """The original UIDs behind ``study`` / ``series`` / ``instance`` as the visitor named them."""
    with sessions() as session:
        study_uids = session.scalars(select(Study.study_uid).where(visible_study(scope))).all()
        original_study = _match(deid, study, study_uids)
        if series is None and instance is None:
            return Originals(original_study)
        rows = session.execute(
            select(Series.series_uid, Instance.sop_uid).join(Instance, Instance.series_fk == Series.id)
            .join(Study, Series.study_fk == Study.id).where(Study.study_uid == original_study)).all()
    original_series = _match(deid, series, {r[0] for r in rows}) if series is not None else None
    original_instance = _match(deid, instance, [r[1] for r in rows]) if instance is not None else None
    return Originals(original_study, original_series, original_instance)


def _match(deid: Deidentifier, given: str, candidates: Iterable[str]) -> str:
    for candidate in candidates:
        if deid.uid(candidate) == given:
            return str(candidate)
    return given
