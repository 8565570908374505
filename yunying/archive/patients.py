"""Find patients by resident ID card number or phone, without ever decrypting: matching is by keyed hash.

The number asked for is normalised and hashed exactly as ingest hashed the stored value
(``FieldCipher.blind_index``), so ``11010519491231002x`` and ``110105 19491231 002X`` find the same
patient. Results are scoped like every read path: only patients with a study the caller's
:class:`~yunying.index.access.Scope` may see, and of those only the visible studies. Auditing the
lookup is the caller's (the adapter's) job, like for every other read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, sessionmaker

from yunying.archive.query import JsonDataset, study_json
from yunying.dicom.parse import normalise_id_card, normalise_phone, valid_id_card
from yunying.errors import NotFound
from yunying.index.access import Scope, visible_study
from yunying.index.models import Patient, Study
from yunying.index.repository import ID_CARD_CONTEXT, PHONE_CONTEXT


class BlindIndex(Protocol):
    """What matching needs of ``yunying.auth.fieldcrypt.FieldCipher``."""

    def blind_index(self, text: str, context: str) -> str: ...


@dataclass
class PatientMatch:
    """A matching patient record (one per institution that holds the patient) and its visible studies."""

    patient_pk: int
    institution_id: int | None
    patient_id: str
    issuer: str
    patient_name: str
    birth_date: str
    sex: str
    study_uids: list[str] = field(default_factory=list)


def find_patients_by_id_card(sessions: sessionmaker[Session], cipher: BlindIndex, number: str,
                             scope: Scope) -> list[PatientMatch]:
    """Patients whose resident ID card number is ``number`` (spaces and a lower-case ``x`` allowed).

    Raises
    ------
    ValueError
        ``number`` is not a valid 18-character resident ID card number (GB 11643 check character);
        the message does not repeat it.
    """
    if not valid_id_card(normalise_id_card(number)):
        raise ValueError("not a valid resident ID card number (18 characters with a correct check character)")
    return _find(sessions, Patient.id_card_hash == cipher.blind_index(number, ID_CARD_CONTEXT), scope)


def find_patients_by_phone(sessions: sessionmaker[Session], cipher: BlindIndex, phone: str,
                           scope: Scope) -> list[PatientMatch]:
    """Patients whose phone is ``phone`` (compared as digits only; +86 before a mobile number ignored).

    Raises
    ------
    ValueError
        ``phone`` has no digits.
    """
    if not normalise_phone(phone):
        raise ValueError("a phone number needs digits")
    return _find(sessions, Patient.phone_hash == cipher.blind_index(phone, PHONE_CONTEXT), scope)


def _find(sessions: sessionmaker[Session], matches: ColumnElement[bool], scope: Scope) -> list[PatientMatch]:
    query = (
        select(Patient.id, Patient.institution_fk, Patient.patient_id, Patient.issuer, Patient.patient_name,
               Patient.birth_date, Patient.sex, Study.study_uid)
        .join(Study, Study.patient_fk == Patient.id)
        .where(matches, visible_study(scope))
        .order_by(Patient.id, Study.study_date, Study.study_uid)
    )
    found: dict[int, PatientMatch] = {}
    with sessions() as session:
        for pk, institution, patient_id, issuer, name, birth_date, sex, study_uid in session.execute(query):
            match = found.setdefault(pk, PatientMatch(pk, institution, patient_id, issuer, name, birth_date, sex))
            match.study_uids.append(study_uid)
    return list(found.values())


def prior_studies(sessions: sessionmaker[Session], scope: Scope, study_uid: str, limit: int = 200) -> list[JsonDataset]:
    """The other studies of the patient of ``study_uid`` that ``scope`` may see, newest first (VW-2, VW-7).

    The same patient is the study's own patient record (patient ID within its institution) and the records at
    other institutions with the same resident ID card number (matched by keyed hash, never decrypted): so the
    priors of a patient come from every hospital on the platform whose studies the caller may read.

    Raises
    ------
    NotFound
        ``study_uid`` does not exist or is not visible (the same answer for both).
    """
    with sessions() as session:
        found = session.execute(select(Study.id, Study.patient_fk).where(Study.study_uid == study_uid,
                                                                         visible_study(scope))).first()
        if found is None:
            raise NotFound("no such study")
        current, patient_pk = found
        card = session.execute(select(Patient.id_card_hash).where(Patient.id == patient_pk)).scalar_one()
        same = or_(Patient.id == patient_pk, Patient.id_card_hash == card) if card else Patient.id == patient_pk
        rows = session.execute(
            select(Study, Patient).join(Patient, Study.patient_fk == Patient.id)
            .where(same, visible_study(scope), Study.id != current)
            .order_by(Study.study_date.desc(), Study.study_time.desc(), Study.id.desc()).limit(limit))
        return [study_json(study, patient) for study, patient in rows]
