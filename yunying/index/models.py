"""The archive's index: patient / study / series / instance, plus access tables.

Designed for billions of instances: every query path of QIDO-RS and C-FIND is
served by an index (see the ``Index`` definitions), counters are kept on the
parent rows instead of counted at query time, and patient name/ID are
denormalised onto the study so study search is a single-table range scan.
These classes are storage; API schemas live in the adapters.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")
UID = String(64)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Institution(Base):
    """A hospital (or other organisation) on the platform: the owner of the data it produces."""

    __tablename__ = "institution"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(16), default="")  # 三级 / 二级 / 一级 ...
    kind: Mapped[str] = mapped_column(String(32), default="")  # general, specialist, community, imaging centre ...
    region: Mapped[str] = mapped_column(String(64), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Department(Base):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    institution_fk: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("uq_department_code", "institution_fk", "code", unique=True),)


class Patient(Base):
    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True)
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    issuer: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str] = mapped_column(String(324), default="")
    patient_name_norm: Mapped[str] = mapped_column(String(330), default="")
    birth_date: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(16), default="")
    attrs: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    n_studies: Mapped[int] = mapped_column(Integer, default=0)
    # Sensitive identifiers (ID card number, phone): encrypted (FieldCipher) and a keyed hash for matching.
    id_card_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    id_card_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("uq_patient_identity", "institution_fk", "patient_id", "issuer", unique=True),
        Index("ix_patient_name_norm", "patient_name_norm"),
    )


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    patient_fk: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True, index=True)
    study_uid: Mapped[str] = mapped_column(UID, unique=True)
    # denormalised from patient for single-table study search
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name_norm: Mapped[str] = mapped_column(String(330), default="")
    study_date: Mapped[str] = mapped_column(String(8), default="")
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(String(64), default="")
    study_id: Mapped[str] = mapped_column(String(16), default="")
    study_description: Mapped[str] = mapped_column(String(64), default="")
    referring_physician_norm: Mapped[str] = mapped_column(String(330), default="")
    modalities: Mapped[str] = mapped_column(String(160), default="")  # "\\CT\\SR\\"
    n_series: Mapped[int] = mapped_column(Integer, default=0)
    n_instances: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    attrs: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    __table_args__ = (
        Index("ix_study_date_time", "study_date", "study_time"),
        Index("ix_study_patient_id_date", "patient_id", "study_date"),
        Index("ix_study_patient_name_norm", "patient_name_norm"),
        Index("ix_study_accession_number", "accession_number"),
    )


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    series_uid: Mapped[str] = mapped_column(UID, unique=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    series_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_description: Mapped[str] = mapped_column(String(64), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    pps_start_date: Mapped[str] = mapped_column(String(8), default="")
    pps_start_time: Mapped[str] = mapped_column(String(16), default="")
    n_instances: Mapped[int] = mapped_column(Integer, default=0)
    attrs: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_series_modality", "modality"),)


class Instance(Base):
    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    series_fk: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    sop_uid: Mapped[str] = mapped_column(UID, unique=True)
    sop_class_uid: Mapped[str] = mapped_column(UID, default="")
    instance_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    transfer_syntax_uid: Mapped[str] = mapped_column(UID, default="")
    received_transfer_syntax_uid: Mapped[str] = mapped_column(UID, default="")
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    columns: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bits_allocated: Mapped[int | None] = mapped_column(Integer, nullable=True)
    number_of_frames: Mapped[int | None] = mapped_column(Integer, nullable=True)
    renderable: Mapped[bool] = mapped_column(Boolean, default=True)
    blob_key: Mapped[str] = mapped_column(String(200))
    blob_size: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(64))
    received_size: Mapped[int] = mapped_column(BigInteger)
    received_checksum: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_instance_blob_key", "blob_key"),)


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(300), default="")  # comma-separated yunying.auth.access.Role values
    institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True, index=True)
    department_fk: Mapped[int | None] = mapped_column(ForeignKey("department.id"), nullable=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sessions_valid_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # logout everywhere
    external_issuer: Mapped[str | None] = mapped_column(String(200), nullable=True)  # OIDC issuer (hospital SSO)
    external_subject: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("uq_app_user_external", "external_issuer", "external_subject", unique=True),)


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_fk: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str | None] = mapped_column(String(300), nullable=True)  # comma-separated permissions; None: all
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UserSession(Base):
    """A browser session (cookie). Only the SHA-256 of the cookie value is stored."""

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_fk: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    second_factor_done: Mapped[bool] = mapped_column(Boolean, default=False)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)  # screen lock: password again to continue
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    source: Mapped[str] = mapped_column(String(200), default="")


class AccessGrant(Base):
    """Cross-institution access, always explicit and recorded (consultation, patient authorisation, sharing).

    The grant covers one study (``study_fk``) or, for a regional sharing agreement, every study of
    ``source_institution_fk``; it is given to one user or to a whole institution.
    """

    __tablename__ = "access_grant"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # consultation | patient-authorization | regional-sharing | ...
    study_fk: Mapped[int | None] = mapped_column(ForeignKey("study.id"), nullable=True, index=True)
    source_institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True, index=True)
    grantee_user_fk: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True, index=True)
    grantee_institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True, index=True)
    granted_by_fk: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DicomPeer(Base):
    """A DICOM application entity of an institution allowed to associate (AE title + address)."""

    __tablename__ = "dicom_peer"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ae_title: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(64))  # an address or a network in CIDR notation
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)  # for C-MOVE destinations
    institution_fk: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    roles: Mapped[str] = mapped_column(String(300), default="technician")  # what the AE may do, as roles
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("uq_dicom_peer_ae_host", "ae_title", "host", unique=True),)


class RateCounter(Base):
    """Fixed-window counters shared by every API node (login throttling, public endpoints)."""

    __tablename__ = "rate_counter"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AuditEvent(Base):
    """Append-only record of every access to patient data (who, what, when, from where, outcome).

    Tamper-evident: ``seq`` is gap-free and ``hash`` = H(``prev_hash`` || canonical entry), so a
    modified, deleted or reordered entry breaks the chain (``yunying audit verify``).
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64), default="")
    hash: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor_institution: Mapped[str] = mapped_column(String(32), default="")
    actor: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(100), default="")  # the actor's roles, comma-separated
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(40), default="success")
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_audit_event_subject", "subject"), Index("ix_audit_event_actor", "actor", "at"))


class GatewayStatus(Base):
    """The latest heartbeat of each edge gateway (one row per gateway, replaced on every beat).

    Not a history: operators want "how is every hospital's gateway now". The typed columns
    are the figures operators sort and filter on; ``figures`` keeps the whole heartbeat as sent.
    No patient data: queue depths, byte counts, versions and error messages only.
    """

    __tablename__ = "gateway_status"

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # [A-Za-z0-9._-]+, checked on write
    institution: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[str] = mapped_column(String(64))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the gateway's clock
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # the archive's clock
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    figures: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    queue_depth: Mapped[int] = mapped_column(Integer, default=0)
    oldest_age_s: Mapped[float] = mapped_column(Float, default=0.0)
    disk_used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_budget_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditChainHead(Base):
    """One row: the last sequence number and hash of the audit chain (locked while appending)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default="")
    algorithm: Mapped[str] = mapped_column(String(16), default="sha256")


class AnnotationDocument(Base):
    """One user's annotations of one study (VW-5): the viewer's measurements, text, drawings and key images.

    Kept beside the study, never in it: the original instances are not modified; the user exports a
    DICOM SR on demand. ``version`` rises with every write (optimistic concurrency: a write naming an
    older version is refused). ``institution_fk`` is the author's institution at the time of writing.
    """

    __tablename__ = "annotation_document"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"))
    user_fk: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True)
    payload: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)  # {"annotations": [...]}
    key_images: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)  # [{"sop_instance_uid", "frame"}]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("uq_annotation_document_study_user", "study_fk", "user_fk", unique=True),)
class Report(Base):
    """A diagnostic report of one exam (RP, CF-1): the stable identity its versions share.

    Found by ``institution_fk`` + ``accession_number`` (or ``study_uid`` when the sender has no
    accession). ``study_fk`` is set once the exam's images are in the archive, which may be after
    the report arrived (HL7 ORU before C-STORE). The text lives in :class:`ReportVersion` rows, which
    are never changed; ``current_version`` names the one in force.
    """

    __tablename__ = "report"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    institution_fk: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    study_fk: Mapped[int | None] = mapped_column(ForeignKey("study.id"), nullable=True, index=True)
    accession_number: Mapped[str] = mapped_column(String(64), default="")
    study_uid: Mapped[str] = mapped_column(UID, default="")
    patient_id: Mapped[str] = mapped_column(String(64), default="")  # the hospital's patient number (as on study)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))  # of the current version, for worklists
    # outpatient | inpatient | emergency | physical-exam, from HL7 PV1-2 when given ("": outpatient; CF-12)
    patient_class: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_report_institution_accession", "institution_fk", "accession_number"),
        Index("ix_report_institution_patient", "institution_fk", "patient_id"),
        Index("ix_report_study_uid", "study_uid"),
    )


class ReportVersion(Base):
    """One version of a report, immutable once written (every amendment is a new row)."""

    __tablename__ = "report_version"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    report_fk: Mapped[int] = mapped_column(ForeignKey("report.id"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # preliminary | final | amended | cancelled
    findings: Mapped[str] = mapped_column(Text, default="")
    impression: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="")
    verifier: Mapped[str] = mapped_column(String(200), default="")
    observed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # the sender's time
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)  # when the archive stored it
    source: Mapped[str] = mapped_column(String(16))  # hl7 | dicom-sr | dicom-pdf | api
    source_ref: Mapped[str] = mapped_column(String(200), default="")  # HL7 control id, SOP Instance UID, user name
    pdf_sop_uid: Mapped[str | None] = mapped_column(UID, nullable=True)  # Encapsulated PDF instance in the archive

    __table_args__ = (Index("uq_report_version", "report_fk", "version", unique=True),)


class Job(Base):
    """One unit of background work (``yunying.jobs``): film sheets, downloads, messages.

    ``state`` moves queued → running → done, or back to queued with a later ``run_after`` after a
    failure (until ``max_attempts``), then failed. A running job whose ``locked_until`` has passed
    (its worker died) is claimed again. ``dedupe_key`` merges repeated requests while one is queued.
    """

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_job_state_run_after", "state", "run_after"),
        Index("ix_job_kind_dedupe_key", "kind", "dedupe_key"),
    )


class FilmSheet(Base):
    """One sheet of a study's electronic film (CF-1, CF-5, CF-12): a PNG in the blob store, plus the set's PDF.

    A study has one current set (one ``version``: the id of the job that composed it); a new set
    replaces the old one in one transaction and the old blobs are deleted after the commit.
    """

    __tablename__ = "film_sheet"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"))
    version: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(Integer)  # 1-based
    n_sheets: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    pdf_key: Mapped[str] = mapped_column(String(200))  # the whole set as one PDF (same on every sheet of a version)
    pdf_size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    layout: Mapped[str] = mapped_column(String(8))  # "4x5": columns x rows
    window: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)  # {"center", "width"} of the first cell
    images: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)  # cells in reading order
    header: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)  # the text printed at the top
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("uq_film_sheet_study_version_n", "study_fk", "version", "n", unique=True),)
class Download(Base):
    """A download package of one study (CF-7): encrypted ZIP parts in the blob store under ``exports/<id>/``.

    The extraction password is shown once, when the download is made, and stored nowhere (not even
    hashed: nothing here reveals it). ``owner`` is who may fetch the parts (``user:<id>``,
    ``patient:<identity hash>``, ``share:<id>``); ``parts`` is ``[{"n", "size", "key", "sha256",
    "instances"}]``. After ``valid_until`` the parts are deleted and ``deleted_at`` set; the row stays
    as the record of what was handed out.
    """

    __tablename__ = "download"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    owner: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200), default="")  # the name audit entries use
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))  # pending | ready | failed | expired
    parts: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    total_size: Mapped[int] = mapped_column(BigInteger, default=0)
    instances: Mapped[int] = mapped_column(Integer, default=0)
    withheld: Mapped[int] = mapped_column(Integer, default=0)  # images left out (burned-in annotation)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
class Share(Base):
    """A patient's share of chosen exams (CF-6, SH-1, SH-3): an unguessable, expiring, revocable link.

    Only the SHA-256 of the link's token is stored. ``creator_identity`` is the keyed identity hash of
    the patient who made it (the patient principal's ``extra["identity"]``), never a name or number.
    Wrong passwords count in ``failed_opens``; ``locked_until`` stops further tries for a while.
    """

    __tablename__ = "share"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    creator_identity: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)  # argon2id; None: no password
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    history: Mapped[bool] = mapped_column(Boolean, default=False)  # the patient's other exams were added at creation
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    open_count: Mapped[int] = mapped_column(Integer, default=0)
    last_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failed_opens: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ShareStudy(Base):
    """One exam of a share: chosen by the patient, or added by the share's history option."""

    __tablename__ = "share_study"

    share_fk: Mapped[int] = mapped_column(ForeignKey("share.id"), primary_key=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"), primary_key=True, index=True)
    chosen: Mapped[bool] = mapped_column(Boolean, default=True)  # False: added as history


class ShareSession(Base):
    """A visitor's session of a share (cookie ``yy_share``); only the SHA-256 of the cookie is stored.

    It ends with its share (revocation, expiry: checked on every request) or on its own ``revoked_at``.
    """

    __tablename__ = "share_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    share_fk: Mapped[int] = mapped_column(ForeignKey("share.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    source: Mapped[str] = mapped_column(String(200), default="")


class FeedbackTicket(Base):
    """A feedback ticket (CF-10) from a patient, share visitor or staff member, with exam context.

    ``institution_fk`` is the institution of the exam it names (None: no exam, platform-wide);
    that hospital's administrators see and close it. The screenshot lives in the blob store.
    """

    __tablename__ = "feedback_ticket"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True)
    study_fk: Mapped[int | None] = mapped_column(ForeignKey("study.id"), nullable=True)
    who: Mapped[str] = mapped_column(String(100))  # user name, "share:<id>" or the patient principal's name
    via: Mapped[str] = mapped_column(String(100), default="")  # session, token:…, patient, share:<id>
    page: Mapped[str] = mapped_column(String(500), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    screenshot_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    screenshot_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __table_args__ = (Index("ix_feedback_ticket_institution_state", "institution_fk", "state", "created_at"),)
# --- cloud film (CF-2, CF-3, CF-8, CF-12, SH-1, SH-3; decision 0010) -------------------------------------------


class CloudfilmSetting(Base):
    """A hospital's cloud-film service (CF-12): on/off per patient class, token validity, branding.

    No row means the defaults (on for every class, 30 days); ``yunying.index.access`` reads these
    columns to leave out exams of a class the hospital has turned off.
    """

    __tablename__ = "cloudfilm_setting"

    institution_fk: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    outpatient: Mapped[bool] = mapped_column(Boolean, default=True)
    inpatient: Mapped[bool] = mapped_column(Boolean, default=True)
    emergency: Mapped[bool] = mapped_column(Boolean, default=True)
    physical_exam: Mapped[bool] = mapped_column(Boolean, default=True)
    token_days: Mapped[int] = mapped_column(Integer, default=30)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    brand_color: Mapped[str] = mapped_column(String(7), default="#0a6cff")
    sms_on_final: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CloudfilmToken(Base):
    """An exam access token (QR code / SMS link): only its SHA-256 is stored."""

    __tablename__ = "cloudfilm_token"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True)
    purpose: Mapped[str] = mapped_column(String(16), default="final")  # final | cover | sms
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # brute force


class CloudfilmChallenge(Base):
    """A one-time code sent for a token: HMAC of the code under a random salt, 5 minutes, 5 attempts."""

    __tablename__ = "cloudfilm_challenge"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token_fk: Mapped[int] = mapped_column(ForeignKey("cloudfilm_token.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))  # phone | id_card
    salt: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PatientSession(Base):
    """A verified patient's session (cookie ``yy_patient``); only the SHA-256 of the cookie is stored."""

    __tablename__ = "patient_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    identity: Mapped[str] = mapped_column(String(400))  # keyed hashes (ID card / phone), comma-separated
    display_name: Mapped[str] = mapped_column(String(64), default="")  # masked ("张*")
    token_fk: Mapped[int | None] = mapped_column(ForeignKey("cloudfilm_token.id"), nullable=True)
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PatientHidden(Base):
    """An exam a patient hid from their own space and from new shares (until unhidden)."""

    __tablename__ = "patient_hidden"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    identity_hash: Mapped[str] = mapped_column(String(64))
    study_fk: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("uq_patient_hidden", "identity_hash", "study_fk", unique=True),)


class PatientBlock(Base):
    """CF-8: a patient revoked a hospital's or a doctor's access to their exams (not the owning hospital's)."""

    __tablename__ = "patient_block"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    identity_hash: Mapped[str] = mapped_column(String(64), index=True)
    institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True)
    user_fk: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Notification(Base):
    """One message (SMS or e-mail) through ``yunying.notify``: queued → sent | failed.

    The recipient is stored encrypted (field cipher) and masked for display; one-time codes are
    removed from ``body`` once a real provider has taken the message.
    """

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    institution_fk: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), nullable=True, index=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    purpose: Mapped[str] = mapped_column(String(32))  # cloudfilm-code | cloudfilm-link | ...
    recipient_masked: Mapped[str] = mapped_column(String(64))
    recipient_enc: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8), default="queued", index=True)  # queued | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    provider: Mapped[str] = mapped_column(String(16), default="")
    provider_ref: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
