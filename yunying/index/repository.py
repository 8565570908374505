"""Hot-path SQL of the ingest path. Never commits: the use case owns the transaction."""

from __future__ import annotations

from typing import Any, Protocol, cast

from sqlalchemy import Select, Table, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from yunying.dicom.parse import ParsedInstance
from yunying.index.models import Instance, Patient, Series, Study, utcnow


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"unsupported database dialect {dialect}")


# Sensitive patient columns (issue 5): the context each value is encrypted and hashed under is its column.
ID_CARD_CONTEXT = "patient.id_card"
PHONE_CONTEXT = "patient.phone"


class SensitiveCipher(Protocol):
    """What the index needs of ``yunying.auth.fieldcrypt.FieldCipher``: a token and a keyed hash per value."""

    def encrypt(self, text: str, context: str) -> str: ...

    def blind_index(self, text: str, context: str) -> str: ...


def sensitive_values(parsed: ParsedInstance, cipher: SensitiveCipher | None) -> dict[str, str]:
    """Patient column values for the instance's ID card number / phone: encrypted and hashed, never in clear.

    Empty without a cipher (no field key configured: these values are not stored at all).
    """
    values: dict[str, str] = {}
    if cipher is None:
        return values
    for column, context, text in (("id_card", ID_CARD_CONTEXT, parsed.id_card), ("phone", PHONE_CONTEXT, parsed.phone)):
        if text:
            values[f"{column}_enc"] = cipher.encrypt(text, context)
            values[f"{column}_hash"] = cipher.blind_index(text, context)
    return values


def _update_sensitive(session: Session, patient_id: int, values: dict[str, str]) -> None:
    """Bring an existing patient's sensitive columns up to a later instance's values (only when they differ)."""
    for column in ("id_card", "phone"):
        if f"{column}_hash" not in values:
            continue
        current = getattr(Patient, f"{column}_hash")
        session.execute(
            update(Patient)
            .where(Patient.id == patient_id, or_(current.is_(None), current != values[f"{column}_hash"]))
            .values({f"{column}_enc": values[f"{column}_enc"], f"{column}_hash": values[f"{column}_hash"]})
        )


def _get_or_create(session: Session, model: type[Any], unique: dict[str, Any], values: dict[str, Any]) -> tuple[int, bool]:
    """Insert a row unless one with ``unique`` exists; return ``(id, created)``. Race-safe."""
    stmt = _insert(session, model).values(**unique, **values).on_conflict_do_nothing().returning(model.id)
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is not None:
        return int(new_id), True
    query: Select[Any] = select(model.id)
    for key, value in unique.items():
        query = query.where(getattr(model, key) == value)
    return int(session.execute(query).scalar_one()), False


def study_owner(session: Session, study_uid: str) -> tuple[int | None] | None:
    """``(institution id,)`` of an existing study, None when the study is new."""
    row = session.execute(select(Study.institution_fk).where(Study.study_uid == study_uid)).first()
    return None if row is None else (row[0],)


def find_instance(session: Session, sop_uid: str) -> Instance | None:
    return session.execute(select(Instance).where(Instance.sop_uid == sop_uid)).scalar_one_or_none()


def stored_transfer_syntax(session: Session, sop_uid: str) -> str | None:
    """The stored transfer syntax of ``sop_uid`` if it is indexed (a light, Core-level lookup)."""
    row = session.connection().execute(
        select(Instance.__table__.c.transfer_syntax_uid).where(Instance.__table__.c.sop_uid == sop_uid)
    ).first()
    return None if row is None else str(row[0])


_INSTANCE = cast(Table, Instance.__table__)
_SERIES = cast(Table, Series.__table__)
_STUDY = cast(Table, Study.__table__)


class NotOwner(Exception):
    """The instance's study (or series) belongs to another institution."""


def _owner(session: Session, study_id: int) -> int | None:
    return session.execute(select(Study.institution_fk).where(Study.id == study_id)).scalar_one_or_none()


def add_instance(session: Session, parsed: ParsedInstance, institution_id: int | None, *,
                 cipher: SensitiveCipher | None = None, **blob: Any) -> None:
    """Index one new instance of ``institution_id``, creating its patient/study/series as needed and bumping counters.

    The patient's ID card number and phone are stored through ``cipher`` when the patient row is
    created, and updated when a new series brings other values (instances of an already indexed
    series — the hot path — do not revisit the patient row).

    Raises NotOwner when the study already exists for another institution (institutions never write into
    each other's studies).
    """
    now = utcnow()
    known = session.connection().execute(
        select(_SERIES.c.id, _SERIES.c.study_fk).where(_SERIES.c.series_uid == parsed.series_uid)
    ).first()
    if known is not None:  # the common case: another instance of a series we already have
        if _owner(session, int(known[1])) != institution_id:
            raise NotOwner(parsed.study_uid)
        _add_to_series(session, parsed, int(known[0]), int(known[1]), now, **blob)
        return
    sensitive = sensitive_values(parsed, cipher)
    patient_id, patient_created = _get_or_create(
        session,
        Patient,
        {"institution_fk": institution_id, "patient_id": parsed.patient_id, "issuer": parsed.issuer},
        {
            "patient_name": parsed.patient_name,
            "patient_name_norm": parsed.patient_name_norm,
            "birth_date": parsed.birth_date,
            "sex": parsed.sex,
            "attrs": parsed.patient_attrs,
            "n_studies": 0,
            "created_at": now,
            **sensitive,
        },
    )
    if sensitive and not patient_created:
        _update_sensitive(session, patient_id, sensitive)
    study_id, study_created = _get_or_create(
        session,
        Study,
        {"study_uid": parsed.study_uid},
        {
            "institution_fk": institution_id,
            "patient_fk": patient_id,
            "patient_id": parsed.patient_id,
            "patient_name_norm": parsed.patient_name_norm,
            "study_date": parsed.study_date,
            "study_time": parsed.study_time,
            "accession_number": parsed.accession_number,
            "study_id": parsed.study_id,
            "study_description": parsed.study_description,
            "referring_physician_norm": parsed.referring_physician_norm,
            "modalities": "",
            "n_series": 0,
            "n_instances": 0,
            "size_bytes": 0,
            "attrs": parsed.study_attrs,
            "created_at": now,
            "updated_at": now,
        },
    )
    if not study_created and _owner(session, study_id) != institution_id:
        raise NotOwner(parsed.study_uid)
    series_id, series_created = _get_or_create(
        session,
        Series,
        {"series_uid": parsed.series_uid},
        {
            "study_fk": study_id,
            "modality": parsed.modality,
            "series_number": parsed.series_number,
            "series_description": parsed.series_description,
            "body_part": parsed.body_part,
            "pps_start_date": parsed.pps_start_date,
            "pps_start_time": parsed.pps_start_time,
            "n_instances": 0,
            "attrs": parsed.series_attrs,
            "created_at": now,
            "updated_at": now,
        },
    )
    _add_to_series(session, parsed, series_id, study_id, now, series_created=series_created, **blob)
    if patient_created or study_created:
        session.execute(update(Patient).where(Patient.id == patient_id).values(n_studies=Patient.n_studies + int(study_created)))
    if series_created and parsed.modality:
        current = session.execute(select(Study.modalities).where(Study.id == study_id)).scalar_one()
        token = f"\\{parsed.modality}\\"
        if token not in (current or ""):
            modalities = (current or "\\") + parsed.modality + "\\"
            session.execute(update(Study).where(Study.id == study_id).values(modalities=modalities))


def _add_to_series(session: Session, parsed: ParsedInstance, series_id: int, study_id: int, now: Any, *,
                   series_created: bool = False, blob_key: str, blob_size: int, checksum: str,
                   transfer_syntax_uid: str, received_size: int, received_checksum: str, origin: str) -> None:
    """Insert the instance row and bump the counters with Core statements (the per-instance hot path)."""
    conn = session.connection()
    conn.execute(
        insert(_INSTANCE).values(
            series_fk=series_id, study_fk=study_id, sop_uid=parsed.sop_instance_uid,
            sop_class_uid=parsed.sop_class_uid, instance_number=parsed.instance_number,
            transfer_syntax_uid=transfer_syntax_uid, received_transfer_syntax_uid=parsed.transfer_syntax_uid,
            rows=parsed.rows, columns=parsed.columns, bits_allocated=parsed.bits_allocated,
            number_of_frames=parsed.number_of_frames, renderable=parsed.has_pixels and parsed.pixels_plausible,
            blob_key=blob_key, blob_size=blob_size, checksum=checksum, received_size=received_size,
            received_checksum=received_checksum, origin=origin[:200], created_at=now,
        )
    )
    conn.execute(
        update(_SERIES).where(_SERIES.c.id == series_id).values(n_instances=_SERIES.c.n_instances + 1, updated_at=now)
    )
    conn.execute(
        update(_STUDY).where(_STUDY.c.id == study_id).values(
            n_instances=_STUDY.c.n_instances + 1, n_series=_STUDY.c.n_series + int(series_created),
            size_bytes=_STUDY.c.size_bytes + blob_size, updated_at=now)
    )


def replace_instance_blob(
    session: Session, instance: Instance, *, blob_key: str, blob_size: int, checksum: str,
    transfer_syntax_uid: str, parsed: ParsedInstance, received_size: int, received_checksum: str, origin: str,
) -> str:
    """Point an existing instance at a new blob (overwrite policy); return the old key."""
    old_key = instance.blob_key
    delta = blob_size - instance.blob_size
    instance.blob_key = blob_key
    instance.blob_size = blob_size
    instance.checksum = checksum
    instance.transfer_syntax_uid = transfer_syntax_uid
    instance.received_transfer_syntax_uid = parsed.transfer_syntax_uid
    instance.received_size = received_size
    instance.received_checksum = received_checksum
    instance.renderable = parsed.has_pixels and parsed.pixels_plausible
    instance.origin = origin[:200]
    session.execute(
        update(Study).where(Study.id == instance.study_fk).values(size_bytes=Study.size_bytes + delta, updated_at=utcnow())
    )
    session.execute(update(Series).where(Series.id == instance.series_fk).values(updated_at=utcnow()))
    return old_key
