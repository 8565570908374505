"""Annotation documents: one per (study, user), replaced as a whole, versioned for optimistic concurrency.

Access follows the study: a caller who cannot see the study (``yunying.index.access.visible_study``)
gets :class:`~yunying.errors.NotFound`, as for DICOMweb, so the study's existence is not revealed.
A document belongs to its author alone: every function takes the caller's user id, and nobody
else's document is ever read or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yunying.errors import NotFound, YunyingError
from yunying.index.access import Scope, visible_study
from yunying.index.db import write_session
from yunying.index.models import AnnotationDocument, Instance, Institution, Series, Study, utcnow


class VersionConflict(YunyingError):
    """The document changed since the version the writer last read (someone saved from another tab)."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the annotations are at version {current}: reload them and apply your change again")
        self.current = current


class UnknownReference(YunyingError):
    """An annotation or key image names an instance that is not part of the study."""


@dataclass(frozen=True)
class KeyImage:
    sop_instance_uid: str
    frame: int | None = None


@dataclass(frozen=True)
class Document:
    """The caller's annotations of a study. ``version`` 0: nothing saved yet."""

    study_uid: str
    annotations: list[dict[str, Any]]
    key_images: list[KeyImage]
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Owner:
    """Who writes: the user (documents are per user) and the institution they write for."""

    user_id: int
    institution_id: int | None


def _study_id(session: Session, scope: Scope, study_uid: str) -> int:
    found = session.scalar(select(Study.id).where(Study.study_uid == study_uid, visible_study(scope)))
    if found is None:
        raise NotFound("no such study")
    return found


def _row(session: Session, study_fk: int, user_id: int, lock: bool = False) -> AnnotationDocument | None:
    query = select(AnnotationDocument).where(AnnotationDocument.study_fk == study_fk, AnnotationDocument.user_fk == user_id)
    # PostgreSQL: lock the row so two writers at the same version cannot both win (SQLite's write lock is taken up front)
    return session.scalar(query.with_for_update() if lock else query)


def _utc(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their zone: they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _document(study_uid: str, row: AnnotationDocument | None) -> Document:
    if row is None:
        return Document(study_uid, [], [], 0)
    annotations = row.payload.get("annotations", [])
    keys = [KeyImage(str(k["sop_instance_uid"]), frame if isinstance(frame := k.get("frame"), int) else None)
            for k in row.key_images]
    return Document(study_uid, list(annotations) if isinstance(annotations, list) else [], keys, row.version,
                    _utc(row.created_at), _utc(row.updated_at))


def get(sessions: sessionmaker[Session], scope: Scope, owner: Owner, study_uid: str) -> Document:
    """The owner's document for the study (empty, version 0, when none was saved)."""
    with sessions() as session:
        study_fk = _study_id(session, scope, study_uid)
        return _document(study_uid, _row(session, study_fk, owner.user_id))


def study_instances(sessions: sessionmaker[Session], scope: Scope, study_uid: str) -> dict[str, tuple[str, str]]:
    """SOP Instance UID → (SOP Class UID, Series Instance UID) of every instance of a visible study."""
    with sessions() as session:
        study_fk = _study_id(session, scope, study_uid)
        rows = session.execute(select(Instance.sop_uid, Instance.sop_class_uid, Series.series_uid)
                               .join(Series, Series.id == Instance.series_fk).where(Instance.study_fk == study_fk))
        return {sop: (sop_class, series) for sop, sop_class, series in rows}


def referenced_instances(annotations: list[dict[str, Any]], key_images: list[KeyImage]) -> set[str]:
    """Every SOP Instance UID the document refers to."""
    uids = {str(a["sop_instance_uid"]) for a in annotations if a.get("sop_instance_uid")}
    return uids | {k.sop_instance_uid for k in key_images}


def put(sessions: sessionmaker[Session], scope: Scope, owner: Owner, study_uid: str, annotations: list[dict[str, Any]],
        key_images: list[KeyImage], expected_version: int) -> Document:
    """Replace the owner's document if it is still at ``expected_version`` (0: none yet); return it with its new version.

    Raises :class:`VersionConflict` when it changed meanwhile and :class:`UnknownReference` when an
    annotation or key image refers to an instance outside the study.
    """
    known = study_instances(sessions, scope, study_uid)
    unknown = referenced_instances(annotations, key_images) - set(known)
    if unknown:
        raise UnknownReference(f"{len(unknown)} referenced instance(s) are not part of the study")
    with write_session(sessions) as session:
        study_fk = _study_id(session, scope, study_uid)
        row = _row(session, study_fk, owner.user_id, lock=True)
        current = row.version if row is not None else 0
        if current != expected_version:
            raise VersionConflict(current)
        now = utcnow()
        keys: list[dict[str, object]] = [{"sop_instance_uid": k.sop_instance_uid, "frame": k.frame} for k in key_images]
        if row is None:
            row = AnnotationDocument(study_fk=study_fk, user_fk=owner.user_id, institution_fk=owner.institution_id,
                                     version=1, created_at=now)
            session.add(row)
        else:
            row.version = current + 1
        row.payload, row.key_images, row.updated_at = {"annotations": annotations}, keys, now
        row.institution_fk = owner.institution_id
        try:
            session.commit()
        except IntegrityError as exc:  # a concurrent first save of the same document won the race
            raise VersionConflict(1) from exc
        return _document(study_uid, row)


def delete(sessions: sessionmaker[Session], scope: Scope, owner: Owner, study_uid: str) -> bool:
    """Remove the owner's document; False when there was none."""
    with write_session(sessions) as session:
        study_fk = _study_id(session, scope, study_uid)
        row = _row(session, study_fk, owner.user_id)
        if row is None:
            return False
        session.delete(row)
        session.commit()
        return True


def institution_name(sessions: sessionmaker[Session], institution_id: int | None) -> str | None:
    """The name of the author's institution, for the SR's Institution Name."""
    if institution_id is None:
        return None
    with sessions() as session:
        return session.scalar(select(Institution.name).where(Institution.id == institution_id))


def study_key_images(session: Session, study_fk: int) -> list[KeyImage]:
    """Key images of a study marked by any user (for its film): documents oldest first, each in its own order.

    Only for the platform's own paths (film composition); requests read their own document with :func:`get`.
    """
    rows = session.scalars(select(AnnotationDocument).where(AnnotationDocument.study_fk == study_fk)
                           .order_by(AnnotationDocument.created_at, AnnotationDocument.id))
    seen: set[tuple[str, int | None]] = set()
    keys: list[KeyImage] = []
    for row in rows:
        for key in _document("", row).key_images:
            if (key.sop_instance_uid, key.frame) not in seen:
                seen.add((key.sop_instance_uid, key.frame))
                keys.append(key)
    return keys
