"""What hospital staff do for a patient's cloud film: print the cover sheet with the QR code, send the link by SMS.

Only the exam's own hospital issues tokens for it (a doctor who sees the exam through a grant does
not): another hospital's exam answers like a missing one. Every print or message is a new token
(the raw value of a token is never stored, so an old one cannot be printed again); each keeps its
own validity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.cloudfilm import cover, hospital
from yunying.cloudfilm.tokens import (
    CloudfilmConfig,
    first_modality,
    issue_token,
    open_url,
    patient_phone,
    queue_link_sms,
)
from yunying.cloudfilm.verify import NoPhone
from yunying.errors import NotFound, YunyingError
from yunying.index.access import Scope, exam_patient_class, visible_study
from yunying.index.db import write_session
from yunying.index.models import Patient, Study
from yunying.notify import mask_phone


class ServiceOff(YunyingError):
    """The hospital does not offer cloud film for this exam's patient class (HTTP 409)."""


def _own_study(session: Session, scope: Scope, institution_id: int | None, study_uid: str) -> Study:
    study = session.execute(select(Study).where(Study.study_uid == study_uid, visible_study(scope))).scalar_one_or_none()
    if study is None or institution_id is None or study.institution_fk != institution_id:
        raise NotFound("no such study")
    klass = session.execute(select(exam_patient_class()).where(Study.id == study.id)).scalar_one()
    if not hospital.read(session, study.institution_fk).offers(klass):
        raise ServiceOff(f"the hospital does not offer cloud film for {klass} exams (its cloud-film settings)")
    return study


@dataclass(frozen=True)
class PrintedCover:
    pdf: bytes
    valid_until: datetime


def print_cover(sessions: sessionmaker[Session], scope: Scope, institution_id: int | None, study_uid: str,
                public_url: str, by: str) -> PrintedCover:
    """A new token for the exam and its cover sheet. NotFound (not the caller's hospital's), ServiceOff."""
    with write_session(sessions) as session:
        study = _own_study(session, scope, institution_id, study_uid)
        raw, token = issue_token(session, study, purpose="cover", created_by=by)
        patient = session.get(Patient, study.patient_fk)
        settings = hospital.read(session, study.institution_fk)
        sheet = cover.Cover(hospital.hospital_name(session, study.institution_fk), settings.brand_color,
                            patient.patient_name if patient else "", study.patient_id,
                            first_modality(study.modalities), study.study_date, study.study_description,
                            study.accession_number, open_url(public_url, raw), token.expires_at)
        session.commit()
    return PrintedCover(cover.render(sheet), sheet.valid_until)


def send_link(sessions: sessionmaker[Session], config: CloudfilmConfig, scope: Scope, institution_id: int | None,
              study_uid: str, by: str) -> tuple[int, str]:
    """Queue the SMS with a new link to the phone on file: (notification id, masked phone).

    Raises NotFound, ServiceOff, :class:`~yunying.cloudfilm.verify.NoPhone`.
    """
    cipher = config.cipher
    with write_session(sessions) as session:
        study = _own_study(session, scope, institution_id, study_uid)
        phone = patient_phone(session, cipher, study.patient_fk) if cipher is not None else ""
        if not phone:
            raise NoPhone("no phone number on file for this exam's patient")
        raw, token = issue_token(session, study, purpose="sms", created_by=by)
        notification_id = queue_link_sms(session, config, study, raw, token.expires_at)
        session.commit()
    assert notification_id is not None
    return notification_id, mask_phone(phone)
