"""What a principal may see, as SQL: its institution's studies plus explicitly granted ones.

One condition on ``study`` used by every read path (QIDO-RS, WADO-RS, C-FIND, C-MOVE, C-GET), so
the access rule is written once. Grants are indexed by study, grantee user and grantee
institution; the condition is a few index probes per candidate study.

Cloud film (decision 0010) adds two things. A verified patient's scope names their identity (keyed
hashes of the ID card number / phone): the studies of every hospital's patient records with that
identity, minus exams the patient hid, minus hospitals whose cloud-film service is off for the
exam's patient class. And a patient's blocks (CF-8) cut every way *into* their exams except the
owning institution's own: grants, regional sharing, and therefore priors found by identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, exists, false, func, literal, not_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, aliased

from yunying.index.models import (
    AccessGrant,
    CloudfilmSetting,
    Patient,
    PatientBlock,
    PatientHidden,
    Report,
    Study,
)

DEFAULT_PATIENT_CLASS = "outpatient"
# Patient class of an exam (CF-12) → the hospital setting that switches cloud film for it.
PATIENT_CLASS_SETTING: dict[str, InstrumentedAttribute[bool]] = {
    "outpatient": CloudfilmSetting.outpatient,
    "inpatient": CloudfilmSetting.inpatient,
    "emergency": CloudfilmSetting.emergency,
    "physical-exam": CloudfilmSetting.physical_exam,
}


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
    identity_hashes: frozenset[str] = frozenset()  # a verified patient (cloud film): their keyed identity hashes

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
    parts = [own]
    if scope.user_id is not None or scope.institution_id is not None:
        parts.append(and_(or_(granted_study, shared_institution), not_(_blocked(scope))))
    if scope.identity_hashes:
        parts.append(patient_exams(scope.identity_hashes))
    return or_(*parts)


def _blocked(scope: Scope) -> ColumnElement[bool]:
    """The study's patient blocked the caller's institution or the caller (CF-8)."""
    who: list[ColumnElement[bool]] = []
    if scope.institution_id is not None:
        who.append(PatientBlock.institution_fk == scope.institution_id)
    if scope.user_id is not None:
        who.append(PatientBlock.user_fk == scope.user_id)
    owner = aliased(Patient)  # never correlated with a Patient of the outer query
    return exists(select(PatientBlock.id).join(owner, or_(PatientBlock.identity_hash == owner.id_card_hash,
                                                           PatientBlock.identity_hash == owner.phone_hash))
                  .where(owner.id == Study.patient_fk, or_(*who)))


def exam_patient_class() -> ColumnElement[str]:
    """The exam's patient class: of its newest report when the sender gave one (HL7 PV1-2), else outpatient."""
    report = aliased(Report)  # never correlated with a Report of the outer query (reports.visible_report)
    newest = (select(report.patient_class).where(report.study_fk == Study.id, report.patient_class != "")
              .order_by(report.id.desc()).limit(1).scalar_subquery())
    return func.coalesce(newest, literal(DEFAULT_PATIENT_CLASS))


def cloudfilm_on() -> ColumnElement[bool]:
    """The study's hospital offers cloud film for the exam's patient class (no settings row: on for all)."""
    klass = exam_patient_class()
    allowed = or_(*(and_(klass == name, column) for name, column in PATIENT_CLASS_SETTING.items()))
    return not_(exists(select(CloudfilmSetting.institution_fk).where(
        CloudfilmSetting.institution_fk == Study.institution_fk, not_(and_(CloudfilmSetting.enabled, allowed)))))


def identity_exams(identity_hashes: frozenset[str]) -> ColumnElement[bool]:
    """Studies of every patient record (any hospital) whose ID card or phone hash is one of ``identity_hashes``."""
    hashes = sorted(identity_hashes)
    patient = aliased(Patient)  # QIDO joins Patient in the outer query: never correlate with it
    return exists(select(patient.id).where(patient.id == Study.patient_fk,
                                           or_(patient.id_card_hash.in_(hashes), patient.phone_hash.in_(hashes))))


def hidden_by(identity_hashes: frozenset[str]) -> ColumnElement[bool]:
    return exists(select(PatientHidden.id).where(PatientHidden.study_fk == Study.id,
                                                 PatientHidden.identity_hash.in_(sorted(identity_hashes))))


def patient_exams(identity_hashes: frozenset[str], *, include_hidden: bool = False) -> ColumnElement[bool]:
    """A patient's exams: theirs by identity, cloud film on for them, not hidden (unless ``include_hidden``)."""
    parts = [identity_exams(identity_hashes), cloudfilm_on()]
    if not include_hidden:
        parts.append(not_(hidden_by(identity_hashes)))
    return and_(*parts)
