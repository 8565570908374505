"""ID card number and phone: encrypted and hashed in the index, never in clear, found by keyed hash (issue 5).

Runs on SQLite and PostgreSQL; the raw database is read with the driver itself (sqlite3 / psycopg), not
through the application, to show what an attacker with a copy of the database would see.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import select

from tests.support import data
from yunying.archive.ingest import Outcome
from yunying.archive.patients import find_patients_by_id_card, find_patients_by_phone
from yunying.auth.credentials import institution_id
from yunying.auth.fieldcrypt import FieldCipher, FieldCryptError
from yunying.compose import Archive, build_archive
from yunying.dicom.parse import SENSITIVE_TAGS, ParsedInstance, parse_instance, sensitive_identifiers
from yunying.index.access import Scope
from yunying.index.migrate import upgrade
from yunying.index.models import Institution, Patient
from yunying.index.repository import ID_CARD_CONTEXT, PHONE_CONTEXT
from yunying.settings import Settings

SOURCE = data.SHARED / "ct_abdomen_pancreas_tcia" / "1-001.dcm"
KEY_BYTES = {"aes-256-gcm": 32, "sm4-gcm": 16}


def id_card(first17: str) -> str:
    """A valid resident ID card number: GB 11643 check character, weights 2^(17-i) mod 11."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    return first17 + "10X98765432"[total % 11]


ID_CARD = id_card("44030619850317101")
OTHER_ID_CARD = id_card("44030619850317102")
WRONG_CHECK = ID_CARD[:17] + ("1" if ID_CARD[17] != "1" else "2")  # right shape, wrong check character
PHONE = "+86 13923456789"  # Patient's Telephone Numbers is SH: at most 16 characters
PHONE_DIGITS = "13923456789"


def instance(*, card: str | None = ID_CARD, phone: str | None = PHONE, issuer: str = "身份证",
             new_series: bool = False) -> bytes:
    """The shared CT file carrying an ID card number (Other Patient IDs Sequence) and a phone."""
    ds = dcmread(SOURCE)
    if card is not None:
        hospital, national = Dataset(), Dataset()
        hospital.PatientID, hospital.IssuerOfPatientID = "MRN-77", "HOSPITAL-A"
        national.PatientID, national.IssuerOfPatientID, national.TypeOfPatientID = card, issuer, "TEXT"
        ds.OtherPatientIDsSequence = [hospital, national]
    if phone is not None:
        ds.PatientTelephoneNumbers = phone
    if new_series:
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture
def make_archive(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Archive]]:
    """Archives on the test database with the given field cipher settings."""
    upgrade(db_url)
    built: list[Archive] = []

    def make(algorithm: str = "aes-256-gcm", key: str | None = None, hash_key: str | None = None) -> Archive:
        key = bytes(range(KEY_BYTES[algorithm])).hex() if key is None else key
        hash_key = bytes(range(100, 132)).hex() if hash_key is None else hash_key
        settings = Settings(data_dir=tmp_path / "data", database_url=db_url, field_cipher=algorithm,
                            field_key=key, field_hash_key=hash_key)
        built.append(build_archive(settings))
        return built[-1]

    yield make
    for archive in built:
        archive.close()


def raw_cells(db_url: str) -> list[str]:
    """Every value of every table of the database, as text, read with the database driver directly."""
    rows: list[tuple[Any, ...]] = []
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                rows += conn.execute(f'SELECT * FROM "{table}"').fetchall()
    else:
        with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
            for table in tables:
                rows += conn.execute(f'SELECT * FROM "{table}"').fetchall()
    assert "patient" in tables
    return [cell.decode("latin-1") if isinstance(cell, bytes) else str(cell) for row in rows for cell in row]


def assert_nowhere_in_clear(db_url: str) -> None:
    cells = raw_cells(db_url)
    assert any("Pancreas-CT-CB_001" in cell for cell in cells)  # the scan does see the index's clear values
    for secret in (ID_CARD, ID_CARD[:17], PHONE, PHONE_DIGITS, "2345678"):
        leaks = [cell for cell in cells if secret in cell]
        assert not leaks, f"{secret!r} in clear in the database"


def stored_patient(archive: Archive) -> Patient:
    with archive.sessions() as session:
        return session.execute(select(Patient)).scalar_one()


def store(archive: Archive, payload: bytes) -> None:
    result = archive.ingest.store_instance(payload, "test", institution_id=institution_id(archive.sessions, "default"))
    assert result.outcome is Outcome.STORED, result.reason


@pytest.mark.parametrize("algorithm", ["aes-256-gcm", "sm4-gcm"])
def test_sensitive_values_are_encrypted_and_hashed_never_in_clear(
        make_archive: Callable[..., Archive], db_url: str, algorithm: str) -> None:
    archive = make_archive(algorithm)
    cipher = archive.fields
    assert cipher is not None and cipher.algorithm == algorithm
    store(archive, instance())
    assert_nowhere_in_clear(db_url)
    patient = stored_patient(archive)
    assert patient.id_card_enc and patient.id_card_enc.startswith(f"v1:{algorithm}:")
    assert cipher.decrypt(patient.id_card_enc, ID_CARD_CONTEXT) == ID_CARD
    assert patient.phone_enc and cipher.decrypt(patient.phone_enc, PHONE_CONTEXT) == PHONE
    assert patient.id_card_hash == cipher.blind_index(ID_CARD, ID_CARD_CONTEXT)
    assert patient.phone_hash == cipher.blind_index(PHONE_DIGITS, PHONE_CONTEXT)
    assert patient.patient_id == "Pancreas-CT-CB_001"  # the hospital's id stays the patient's DICOM identity
    assert not SENSITIVE_TAGS & set(patient.attrs)
    # the archived instance itself is kept as received (fidelity): the values are in the blob, not the index
    [stored] = archive.retrieve.list(Scope.all(), dcmread(SOURCE, stop_before_pixels=True).StudyInstanceUID)
    kept = dcmread(BytesIO(archive.retrieve.read(stored)))
    assert kept.OtherPatientIDsSequence[1].PatientID == ID_CARD and kept.PatientTelephoneNumbers == PHONE


def test_another_key_cannot_decrypt_nor_match(make_archive: Callable[..., Archive]) -> None:
    archive = make_archive()
    store(archive, instance())
    patient = stored_patient(archive)
    thief = FieldCipher("aes-256-gcm", bytes(range(1, 33)), bytes(range(100, 132)))
    with pytest.raises(FieldCryptError, match="wrong key or context"):
        thief.decrypt(patient.id_card_enc or "", ID_CARD_CONTEXT)
    with pytest.raises(FieldCryptError):
        thief.decrypt(patient.phone_enc or "", PHONE_CONTEXT)
    guesser = FieldCipher("aes-256-gcm", bytes(range(32)), bytes(range(101, 133)))  # right key, other hash key
    assert guesser.blind_index(ID_CARD, ID_CARD_CONTEXT) != patient.id_card_hash


def test_matching_by_id_card_and_phone_is_by_hash_and_scoped(make_archive: Callable[..., Archive]) -> None:
    archive = make_archive()
    cipher = archive.fields
    assert cipher is not None
    store(archive, instance())
    own = Scope(None, institution_id(archive.sessions, "default"))
    study_uid = dcmread(SOURCE, stop_before_pixels=True).StudyInstanceUID
    for asked in (ID_CARD, ID_CARD.lower(), f" {ID_CARD[:6]} {ID_CARD[6:14]} {ID_CARD[14:].lower()} "):
        [match] = find_patients_by_id_card(archive.sessions, cipher, asked, own)
        assert match.patient_id == "Pancreas-CT-CB_001" and match.study_uids == [study_uid]
    assert find_patients_by_id_card(archive.sessions, cipher, OTHER_ID_CARD, own) == []
    for asked in (PHONE, PHONE_DIGITS, "139-2345-6789", "0086 13923456789"):
        assert len(find_patients_by_phone(archive.sessions, cipher, asked, own)) == 1
    assert find_patients_by_phone(archive.sessions, cipher, "13923456780", own) == []
    with pytest.raises(ValueError, match="not a valid resident ID card number") as info:
        find_patients_by_id_card(archive.sessions, cipher, WRONG_CHECK, own)
    assert ID_CARD[:17] not in str(info.value)
    # another hospital sees nothing without a grant; the platform's maintenance scope sees the patient
    with archive.sessions() as session:
        other = Institution(code="other", name="Other hospital")
        session.add(other)
        session.commit()
        other_id = other.id
    assert find_patients_by_id_card(archive.sessions, cipher, ID_CARD, Scope(None, other_id)) == []
    assert find_patients_by_phone(archive.sessions, cipher, PHONE, Scope(None, other_id)) == []
    assert len(find_patients_by_id_card(archive.sessions, cipher, ID_CARD, Scope.all())) == 1


def test_without_a_field_key_nothing_is_stored(archive: Archive, db_url: str) -> None:
    assert archive.fields is None
    store(archive, instance())
    assert_nowhere_in_clear(db_url)
    patient = stored_patient(archive)
    assert (patient.id_card_enc, patient.id_card_hash, patient.phone_enc, patient.phone_hash) == (None, None, None, None)


def test_a_later_series_brings_and_updates_the_values(make_archive: Callable[..., Archive], db_url: str) -> None:
    archive = make_archive()
    cipher = archive.fields
    assert cipher is not None
    store(archive, instance(card=None, phone=None))
    assert stored_patient(archive).id_card_hash is None
    store(archive, instance(new_series=True))
    patient = stored_patient(archive)
    assert patient.id_card_enc and cipher.decrypt(patient.id_card_enc, ID_CARD_CONTEXT) == ID_CARD
    assert patient.phone_hash == cipher.blind_index(PHONE, PHONE_CONTEXT)
    store(archive, instance(phone="13800138000", new_series=True))  # the patient's new phone
    patient = stored_patient(archive)
    assert patient.phone_enc and cipher.decrypt(patient.phone_enc, PHONE_CONTEXT) == "13800138000"
    assert patient.id_card_enc and cipher.decrypt(patient.id_card_enc, ID_CARD_CONTEXT) == ID_CARD
    assert patient.n_studies == 1
    assert_nowhere_in_clear(db_url)


def test_a_bad_field_key_fails_at_start_up(make_archive: Callable[..., Archive]) -> None:
    with pytest.raises(FieldCryptError, match="needs a 32-byte field key"):
        make_archive(key="00" * 16)
    with pytest.raises(FieldCryptError, match="YUNYING_FIELD_HASH_KEY is required"):
        make_archive(hash_key="")


# --- where the values come from (parse.py), without a database ----------------------------------------------

def _ds(**attrs: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


def _item(patient_id: str, issuer: str = "", kind: str = "", type_code: str = "") -> Dataset:
    item = _ds(PatientID=patient_id)
    if issuer:
        item.IssuerOfPatientID = issuer
    if kind:
        item.TypeOfPatientID = kind
    if type_code:
        item.IssuerOfPatientIDQualifiersSequence = [_ds(IdentifierTypeCode=type_code)]
    return item


@pytest.mark.parametrize(("ds", "expected"), [
    (_ds(PatientID=ID_CARD, IssuerOfPatientID="CN-ID"), ID_CARD),
    (_ds(PatientID=ID_CARD.lower(), IssuerOfPatientID="cn-id"), ID_CARD),
    (_ds(PatientID=ID_CARD, IssuerOfPatientID="HOSPITAL-A"), None),  # an ID card-shaped hospital number
    (_ds(PatientID="P1", OtherPatientIDsSequence=[_item(ID_CARD, issuer="居民身份证")]), ID_CARD),
    (_ds(PatientID="P1", OtherPatientIDsSequence=[_item(ID_CARD, kind="RESIDENT_ID")]), ID_CARD),
    (_ds(PatientID="P1", OtherPatientIDsSequence=[_item(ID_CARD, type_code="NNCHN")]), ID_CARD),
    (_ds(PatientID="P1", OtherPatientIDsSequence=[_item(ID_CARD)]), None),  # no issuer: not known to be one
    (_ds(PatientID="P1", OtherPatientIDsSequence=[_item(WRONG_CHECK, issuer="CN-ID")]), None),
    (_ds(PatientID="P1", OtherPatientIDsSequence=[_item("1234", issuer="CN-ID"), _item(ID_CARD, issuer="CN-ID")]),
     ID_CARD),
    (_ds(PatientID="P1"), None),
])
def test_id_card_extraction(ds: Dataset, expected: str | None) -> None:
    assert sensitive_identifiers(ds)[0] == expected


@pytest.mark.parametrize(("value", "expected"), [
    (PHONE, PHONE), (["", "010-6512 3456", PHONE], "010-6512 3456"), ("n/a", None), (None, None)])
def test_phone_extraction(value: Any, expected: str | None) -> None:
    ds = _ds(PatientID="P1")
    if value is not None:
        ds.PatientTelephoneNumbers = value
    assert sensitive_identifiers(ds)[1] == expected


def test_parsed_instance_keeps_the_values_out_of_attrs_and_repr() -> None:
    parsed, _ = parse_instance(instance())
    assert (parsed.id_card, parsed.phone) == (ID_CARD, PHONE)
    assert isinstance(parsed, ParsedInstance)
    for attrs in (parsed.patient_attrs, parsed.study_attrs, parsed.series_attrs):
        assert not SENSITIVE_TAGS & set(attrs) and ID_CARD not in str(attrs) and PHONE_DIGITS[3:] not in str(attrs)
    assert ID_CARD not in repr(parsed) and PHONE not in repr(parsed)


def test_a_malformed_sequence_yields_no_value_but_does_not_refuse_the_instance() -> None:
    class Broken(Dataset):
        def get(self, key: Any, default: Any = None) -> Any:
            if key == "OtherPatientIDsSequence":
                raise ValueError("cannot decode")
            return super().get(key, default)

    assert sensitive_identifiers(Broken()) == (None, None)
