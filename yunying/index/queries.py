"""Read-path SQL for C-FIND and QIDO-RS: matching keys → indexed columns.

Every matching key maps to a column with an index (or to a parent row found by one);
results are ordered by primary key for stable paging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from yunying.dicom.matching import Match, MatchKind, like_escape, parse_match, wildcard_to_like
from yunying.index.access import Scope, visible_study
from yunying.index.models import Instance, Patient, Series, Study

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
_LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}


@dataclass(frozen=True)
class Key:
    level: str
    column: Any
    vr: str


# Matching keys (PS3.4 Table C.6-1..C.6-5, PS3.18 Table 10.6.1-5) and the columns that serve them.
MATCHING_KEYS: dict[str, Key] = {
    "PatientName": Key("PATIENT", Patient.patient_name_norm, "PN"),
    "PatientID": Key("PATIENT", Patient.patient_id, "LO"),
    "IssuerOfPatientID": Key("PATIENT", Patient.issuer, "LO"),
    "PatientBirthDate": Key("PATIENT", Patient.birth_date, "DA"),
    "PatientSex": Key("PATIENT", Patient.sex, "CS"),
    "StudyInstanceUID": Key("STUDY", Study.study_uid, "UI"),
    "StudyDate": Key("STUDY", Study.study_date, "DA"),
    "StudyTime": Key("STUDY", Study.study_time, "TM"),
    "AccessionNumber": Key("STUDY", Study.accession_number, "SH"),
    "StudyID": Key("STUDY", Study.study_id, "SH"),
    "StudyDescription": Key("STUDY", Study.study_description, "LO"),
    "ReferringPhysicianName": Key("STUDY", Study.referring_physician_norm, "PN"),
    "ModalitiesInStudy": Key("STUDY", Study.modalities, "CS"),
    "SeriesInstanceUID": Key("SERIES", Series.series_uid, "UI"),
    "Modality": Key("SERIES", Series.modality, "CS"),
    "SeriesNumber": Key("SERIES", Series.series_number, "IS"),
    "SeriesDescription": Key("SERIES", Series.series_description, "LO"),
    "BodyPartExamined": Key("SERIES", Series.body_part, "CS"),
    "PerformedProcedureStepStartDate": Key("SERIES", Series.pps_start_date, "DA"),
    "PerformedProcedureStepStartTime": Key("SERIES", Series.pps_start_time, "TM"),
    "SOPInstanceUID": Key("IMAGE", Instance.sop_uid, "UI"),
    "SOPClassUID": Key("IMAGE", Instance.sop_class_uid, "UI"),
    "InstanceNumber": Key("IMAGE", Instance.instance_number, "IS"),
}

# On study and lower levels, patient attributes are read from the study's denormalised copy.
_STUDY_COPY = {"PatientName": Study.patient_name_norm, "PatientID": Study.patient_id}


def _condition(name: str, key: Key, column: Any, match: Match) -> ColumnElement[bool] | None:
    if match.kind is MatchKind.UNIVERSAL:
        return None
    if name == "ModalitiesInStudy":
        wanted = [v for v in match.values[0].split("\\") if v] if match.values else []
        # an alias: at series and instance level the outer query has its own Series row, which the
        # subquery must not correlate with (that gave a 500 for /series?ModalitiesInStudy=CT)
        other = aliased(Series)
        return exists().where(and_(other.study_fk == Study.id, other.modality.in_(wanted)))
    if key.vr == "IS":
        try:
            return column == int(match.values[0])  # type: ignore[no-any-return]
        except ValueError:
            return column == -(2**31)  # type: ignore[no-any-return]
    if match.kind is MatchKind.LIST_OF_UID:
        return column.in_(match.values)  # type: ignore[no-any-return]
    if match.kind is MatchKind.RANGE:
        parts = []
        if match.low is not None:
            parts.append(column >= match.low)
        if match.high is not None:
            parts.append(column <= match.high)
        parts.append(column != "")
        return and_(*parts)
    if key.vr == "PN":
        return _pn_condition(column, match)
    value = match.values[0]
    if key.vr == "CS" and "\\" in value and match.kind is MatchKind.SINGLE:
        return column.in_(value.split("\\"))  # type: ignore[no-any-return]
    if match.kind is MatchKind.WILDCARD:
        return column.like(wildcard_to_like(value), escape="\\")  # type: ignore[no-any-return]
    return column == value  # type: ignore[no-any-return]


def _pn_condition(column: Any, match: Match) -> ColumnElement[bool]:
    """Case-insensitive PN matching against the whole name or any component group."""
    if match.kind is MatchKind.FUZZY:
        return and_(*[column.like(f"%{like_escape(w.upper())}%", escape="\\") for w in match.values])
    pattern = match.values[0].upper()
    like = wildcard_to_like(pattern) if match.kind is MatchKind.WILDCARD else like_escape(pattern)
    return or_(
        column.like(like, escape="\\"),
        column.like(like + "=%", escape="\\"),
        column.like("%=" + like, escape="\\"),
        column.like("%=" + like + "=%", escape="\\"),
    )


def build_query(level: str, filters: dict[str, str], scope: Scope, *, fuzzy: bool = False) -> Select[Any]:
    """SELECT of the rows at ``level`` matching ``filters`` (keyword → DICOM matching value) that ``scope`` may see."""
    rank = _LEVEL_RANK[level]
    query: Select[Any]
    if level == "PATIENT":
        query = select(Patient)
        if not scope.everything:
            query = query.where(exists(select(Study.id).where(Study.patient_fk == Patient.id, visible_study(scope))))
    elif level == "STUDY":
        query = select(Study, Patient).join(Patient, Study.patient_fk == Patient.id)  # type: ignore[assignment]
    elif level == "SERIES":
        query = (
            select(Series, Study, Patient)  # type: ignore[assignment]
            .join(Study, Series.study_fk == Study.id)
            .join(Patient, Study.patient_fk == Patient.id)
        )
    else:
        query = (
            select(Instance, Series, Study, Patient)  # type: ignore[assignment]
            .join(Series, Instance.series_fk == Series.id)
            .join(Study, Series.study_fk == Study.id)
            .join(Patient, Study.patient_fk == Patient.id)
        )
    for name, value in filters.items():
        key = MATCHING_KEYS.get(name)
        if key is None or _LEVEL_RANK[key.level] > rank:
            continue
        column = _STUDY_COPY.get(name, key.column) if level != "PATIENT" else key.column
        if name == "ModalitiesInStudy" and level == "PATIENT":
            continue
        condition = _condition(name, key, column, parse_match(value, key.vr, fuzzy=fuzzy))
        if condition is not None:
            query = query.where(condition)
    if level != "PATIENT" and not scope.everything:
        query = query.where(visible_study(scope))
    primary = {"PATIENT": Patient.id, "STUDY": Study.id, "SERIES": Series.id, "IMAGE": Instance.id}[level]
    return query.order_by(primary)


def run_query(session: Session, level: str, filters: dict[str, str], scope: Scope, *, fuzzy: bool = False,
              limit: int | None = None, offset: int = 0) -> list[Any]:
    query = build_query(level, filters, scope, fuzzy=fuzzy)
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(query).all())


def count_query(session: Session, level: str, filters: dict[str, str], scope: Scope, *, fuzzy: bool = False) -> int:
    sub = build_query(level, filters, scope, fuzzy=fuzzy).order_by(None).subquery()
    return int(session.execute(select(func.count()).select_from(sub)).scalar_one())


def instances_for(session: Session, study_uid: str, scope: Scope, series_uid: str | None = None,
                  sop_uid: str | None = None) -> list[tuple[Instance, Series, Study]]:
    """Instances of a study / series / single instance in display order (series, instance number).

    A study ``scope`` may not see answers like a study that does not exist (nothing leaks).
    """
    query = (
        select(Instance, Series, Study)
        .join(Series, Instance.series_fk == Series.id)
        .join(Study, Instance.study_fk == Study.id)
        .where(Study.study_uid == study_uid)
    )
    if not scope.everything:
        query = query.where(visible_study(scope))
    if series_uid is not None:
        query = query.where(Series.series_uid == series_uid)
    if sop_uid is not None:
        query = query.where(Instance.sop_uid == sop_uid)
    query = query.order_by(Series.series_number, Series.id, Instance.instance_number, Instance.id)
    return [(row[0], row[1], row[2]) for row in session.execute(query).all()]
