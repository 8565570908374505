"""Cloud film test helpers: exams carrying an ID card number and a phone, archives and servers with field keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.integration.test_sensitive_fields import SOURCE, id_card
from yunying.archive.ingest import Outcome
from yunying.compose import Archive, build_archive
from yunying.index.migrate import upgrade
from yunying.settings import Settings

FIELD_KEY = bytes(range(32)).hex()
FIELD_HASH_KEY = bytes(range(100, 132)).hex()
KEY_ENV = {"YUNYING_FIELD_KEY": FIELD_KEY, "YUNYING_FIELD_HASH_KEY": FIELD_HASH_KEY}

CARD_1 = id_card("11010519491231002")
CARD_2 = id_card("44030619850317102")
PHONE_1 = "13812345678"
PHONE_1_MASKED = "138****5678"
PHONE_2 = "13987654321"


def exam(*, card: str | None, phone: str | None, patient_id: str, accession: str, date: str = "20261120",
         name: str = "Zhang^San") -> tuple[bytes, str]:
    """One CT instance of a new study of this patient (ID card in Other Patient IDs, phone in Patient's Telephone)."""
    ds = dcmread(SOURCE)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientID, ds.PatientName, ds.AccessionNumber, ds.StudyDate = patient_id, name, accession, date
    if card is not None:
        national = Dataset()
        national.PatientID, national.IssuerOfPatientID, national.TypeOfPatientID = card, "身份证", "TEXT"
        ds.OtherPatientIDsSequence = [national]
    if phone is not None:
        ds.PatientTelephoneNumbers = phone
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), str(ds.StudyInstanceUID)


def store(archive: Archive, institution_id: int, **kwargs: str | None) -> str:
    data, study_uid = exam(**kwargs)  # type: ignore[arg-type]
    result = archive.ingest.store_instance(data, "test", institution_id=institution_id)
    assert result.outcome is Outcome.STORED, result.reason
    return study_uid


def six_digits(body: str) -> str:
    found = re.search(r"(?<!\d)(\d{6})(?!\d)", body)
    assert found, "no code in the message"
    return found.group(1)


@pytest.fixture
def cf_archive(db_url: str, tmp_path: Path) -> Iterator[Archive]:
    """An archive with field keys (phones and ID cards stored) and the outbox provider."""
    upgrade(db_url)
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, field_key=FIELD_KEY,
                        field_hash_key=FIELD_HASH_KEY)
    built = build_archive(settings)
    yield built
    built.close()
