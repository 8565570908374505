"""Exam access tokens (CF-2, SH-3): 32 random bytes in the QR code / SMS link, only their SHA-256 stored.

A token names one exam, expires after the hospital's ``token_days`` and can be revoked. Opening it
shows nothing but the hospital's name and the exam's modality and date; the exam's contents need a
one-time code (:mod:`yunying.cloudfilm.verify`).

:func:`on_final` is the ``yunying.reports.events.ON_FINAL`` listener: inside the report's transaction it
creates the exam's token once (when the hospital offers cloud film for the exam's patient class) and,
when the hospital has ``sms_on_final`` and a phone is on file, queues the SMS with the link.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.cloudfilm import hospital
from yunying.dicom.parse import normalise_phone
from yunying.errors import NotFound, YunyingError
from yunying.index.access import DEFAULT_PATIENT_CLASS, exam_patient_class
from yunying.index.models import CloudfilmToken, Patient, Report, Study, utcnow
from yunying.index.repository import PHONE_CONTEXT
from yunying.notify import service as notify
from yunying.notify.service import FieldCipherLike


class CloudfilmCipher(FieldCipherLike, Protocol):
    """What cloud film needs of ``yunying.auth.fieldcrypt.FieldCipher``: encrypt, decrypt, keyed hash."""

    def blind_index(self, text: str, context: str) -> str: ...


TOKEN_BYTES = 32
CONFIG_KEY = "yunying.cloudfilm"
LINK_TEXT = "【{hospital}】您的检查（{modality} {date}）已出报告，查看云胶片：{url} （{days}天内有效）"


class TokenGone(YunyingError):
    """The token expired or was revoked, or the hospital's cloud film is off for the exam (HTTP 410)."""


@dataclass(frozen=True)
class CloudfilmConfig:
    """What the listener needs besides the session: where links point, and the field cipher (phones)."""

    public_url: str
    cipher: CloudfilmCipher | None


def configure(sessions: sessionmaker[Session], public_url: str, cipher: CloudfilmCipher | None) -> None:
    """Attach the cloud-film configuration to ``sessions`` (``yunying.compose.build_archive``)."""
    info = dict(sessions.kw.get("info") or {})
    info[CONFIG_KEY] = CloudfilmConfig(public_url.rstrip("/"), cipher)
    sessions.configure(info=info)


def config_of(session: Session) -> CloudfilmConfig | None:
    found = session.info.get(CONFIG_KEY)
    return found if isinstance(found, CloudfilmConfig) else None


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def open_url(public_url: str, raw: str) -> str:
    """The link of the QR code and the SMS (the phone page, ``/m/open/{token}``)."""
    return f"{public_url.rstrip('/')}/m/open/{raw}"


def aware(moment: datetime) -> datetime:
    """SQLite returns naive UTC datetimes."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def issue_token(session: Session, study: Study, *, purpose: str, created_by: str,
                now: datetime | None = None) -> tuple[str, CloudfilmToken]:
    """A new token for ``study`` valid for the hospital's ``token_days``; returns the raw value (never stored)."""
    now = now or utcnow()
    days = hospital.read(session, study.institution_fk).token_days
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    row = CloudfilmToken(token_hash=hash_token(raw), study_fk=study.id, institution_fk=study.institution_fk,
                         purpose=purpose, created_by=created_by[:100], created_at=now,
                         expires_at=now + timedelta(days=days))
    session.add(row)
    session.flush()
    return raw, row


@dataclass(frozen=True)
class ExamAccess:
    """A valid token and what it opens."""

    token_id: int
    study_id: int
    study_uid: str
    institution_id: int | None
    patient_pk: int
    hospital: str
    modality: str
    date: str  # YYYYMMDD
    expires_at: datetime
    locked_until: datetime | None


def first_modality(modalities: str) -> str:
    """``\\CT\\SR\\`` → ``CT`` (image modalities before SR/PR/KO/DOC)."""
    found = [m for m in modalities.split("\\") if m]
    images = [m for m in found if m not in ("SR", "PR", "KO", "DOC")]
    return (images or found or [""])[0]


def resolve(session: Session, raw: str, now: datetime | None = None) -> ExamAccess:
    """The exam ``raw`` opens. Raises NotFound (unknown) or :class:`TokenGone` (expired, revoked, service off)."""
    now = now or utcnow()
    row = session.execute(select(CloudfilmToken).where(CloudfilmToken.token_hash == hash_token(raw))).scalar_one_or_none()
    if row is None:
        raise NotFound("no such link")
    if row.revoked_at is not None or aware(row.expires_at) <= now:
        raise TokenGone("this link has expired or was withdrawn: ask the hospital for a new one")
    study = session.get(Study, row.study_fk)
    assert study is not None
    klass = session.execute(select(exam_patient_class()).where(Study.id == study.id)).scalar_one()
    if not hospital.read(session, study.institution_fk).offers(klass):
        raise TokenGone("the hospital does not offer cloud film for this exam")
    return ExamAccess(row.id, study.id, study.study_uid, study.institution_fk, study.patient_fk,
                      hospital.hospital_name(session, study.institution_fk), first_modality(study.modalities),
                      study.study_date, aware(row.expires_at),
                      aware(row.locked_until) if row.locked_until is not None else None)


def patient_phone(session: Session, cipher: CloudfilmCipher, patient_pk: int) -> str:
    """The phone on file for the patient record (digits), or ""."""
    encrypted = session.execute(select(Patient.phone_enc).where(Patient.id == patient_pk)).scalar_one_or_none()
    return normalise_phone(cipher.decrypt(encrypted, PHONE_CONTEXT)) if encrypted else ""


def link_message(session: Session, study: Study, url: str, expires_at: datetime) -> str:
    days = max(1, (expires_at - utcnow()).days + (1 if (expires_at - utcnow()).seconds else 0))
    date = study.study_date
    return LINK_TEXT.format(hospital=hospital.hospital_name(session, study.institution_fk) or "医院",
                            modality=first_modality(study.modalities), url=url, days=days,
                            date=f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 else date)


def queue_link_sms(session: Session, config: CloudfilmConfig, study: Study, raw: str, expires_at: datetime) -> int | None:
    """Queue the SMS with the link to the phone on file; the notification id, or None without a phone."""
    if config.cipher is None:
        return None
    phone = patient_phone(session, config.cipher, study.patient_fk)
    if not phone:
        return None
    body = link_message(session, study, open_url(config.public_url, raw), aware(expires_at))
    row = notify.enqueue(session, config.cipher, channel="sms", purpose="cloudfilm-link", recipient=phone, body=body,
                         institution_id=study.institution_fk)
    session.flush()
    return row.id


def on_final(session: Session, report: Report) -> None:
    """ON_FINAL listener: the exam's token (once), and the SMS with its link when the hospital wants it."""
    config = config_of(session)
    if config is None or report.study_fk is None:
        return
    study = session.get(Study, report.study_fk)
    if study is None:
        return
    settings = hospital.read(session, study.institution_fk)
    if not settings.offers(report.patient_class or DEFAULT_PATIENT_CLASS):
        return
    already = session.execute(select(CloudfilmToken.id).where(CloudfilmToken.study_fk == study.id,
                                                              CloudfilmToken.purpose == "final").limit(1)).first()
    if already is not None:
        return
    raw, row = issue_token(session, study, purpose="final", created_by="report-final")
    if settings.sms_on_final:
        queue_link_sms(session, config, study, raw, row.expires_at)
