"""A hospital's cloud-film settings (CF-12): on/off, per patient class, token validity, branding, SMS on final.

The patient class of an exam is the HL7 ORU's PV1-2 (``yunying.reports.oru.PATIENT_CLASS``) when the
report came by HL7, else outpatient (``yunying.index.access.exam_patient_class``). Without a settings
row a hospital has the defaults of :class:`HospitalSettings` (on for every class, 30 days).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.index.access import PATIENT_CLASS_SETTING
from yunying.index.db import write_session
from yunying.index.models import CloudfilmSetting, Institution, utcnow

PATIENT_CLASSES = tuple(PATIENT_CLASS_SETTING)  # outpatient, inpatient, emergency, physical-exam
_COLUMN = {name: column.key for name, column in PATIENT_CLASS_SETTING.items()}
MAX_TOKEN_DAYS = 3650
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class HospitalSettings:
    enabled: bool = True
    patient_classes: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(PATIENT_CLASSES, True))
    token_days: int = 30
    display_name: str = ""  # shown to patients; empty: the institution's name
    brand_color: str = "#0a6cff"
    sms_on_final: bool = False

    def offers(self, patient_class: str) -> bool:
        """Cloud film is on for exams of ``patient_class``."""
        return self.enabled and self.patient_classes.get(patient_class, False)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _of(row: CloudfilmSetting | None) -> HospitalSettings:
    if row is None:
        return HospitalSettings()
    return HospitalSettings(row.enabled, {name: bool(getattr(row, column)) for name, column in _COLUMN.items()},
                            row.token_days, row.display_name, row.brand_color, row.sms_on_final)


def read(session: Session, institution_id: int | None) -> HospitalSettings:
    """The settings of ``institution_id`` inside an open session (defaults without a row or institution)."""
    if institution_id is None:
        return HospitalSettings()
    return _of(session.get(CloudfilmSetting, institution_id))


def get(sessions: sessionmaker[Session], institution_id: int) -> HospitalSettings:
    with sessions() as session:
        return read(session, institution_id)


def hospital_name(session: Session, institution_id: int | None) -> str:
    """What patients see as the hospital: the cloud-film display name, else the institution's name."""
    if institution_id is None:
        return ""
    shown = read(session, institution_id).display_name
    if shown:
        return shown
    return session.execute(select(Institution.name).where(Institution.id == institution_id)).scalar_one_or_none() or ""


def validate(settings: HospitalSettings) -> None:
    """ValueError naming the field at fault."""
    unknown = set(settings.patient_classes) - set(PATIENT_CLASSES)
    if unknown:
        raise ValueError(f"unknown patient class(es): {', '.join(sorted(unknown))} (known: {', '.join(PATIENT_CLASSES)})")
    if not 1 <= settings.token_days <= MAX_TOKEN_DAYS:
        raise ValueError(f"token_days must be between 1 and {MAX_TOKEN_DAYS}")
    if not COLOR.match(settings.brand_color):
        raise ValueError("brand_color must be #rrggbb")
    if len(settings.display_name) > 128:
        raise ValueError("display_name is at most 128 characters")


def put(sessions: sessionmaker[Session], institution_id: int, settings: HospitalSettings) -> HospitalSettings:
    """Store the settings of ``institution_id`` (classes not named keep their value)."""
    validate(settings)
    with write_session(sessions) as session:
        row = session.get(CloudfilmSetting, institution_id)
        if row is None:
            row = CloudfilmSetting(institution_fk=institution_id)
            session.add(row)
            for column in _COLUMN.values():
                setattr(row, column, True)
        row.enabled, row.token_days = settings.enabled, settings.token_days
        row.display_name, row.brand_color, row.sms_on_final = settings.display_name, settings.brand_color, settings.sms_on_final
        for name, on in settings.patient_classes.items():
            setattr(row, _COLUMN[name], on)
        row.updated_at = utcnow()
        session.commit()
        return _of(row)
