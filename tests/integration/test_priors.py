"""Priors across hospitals (VW-2, VW-7): the patient's other studies are found through the same patient record
and through records at other hospitals with the same resident ID card number (keyed hash) — only those the
caller may see (a regional-sharing agreement makes the other hospital's study visible), never another
patient's; an invisible study answers NotFound. Both databases."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.integration.test_sensitive_fields import ID_CARD, OTHER_ID_CARD, instance, make_archive  # noqa: F401
from yunying.archive.ingest import Outcome
from yunying.archive.patients import prior_studies
from yunying.auth.credentials import institution_id
from yunying.auth.grants import share_institution
from yunying.compose import Archive
from yunying.errors import NotFound
from yunying.index.access import Scope
from yunying.index.models import Institution


def _study(archive: Archive, institution: str, *, card: str, patient_id: str, date: str) -> str:
    ds = dcmread(BytesIO(instance(card=card)))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientID, ds.StudyDate = patient_id, date
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    result = archive.ingest.store_instance(out.getvalue(), "test", institution_id=institution_id(archive.sessions, institution))
    assert result.outcome is Outcome.STORED, result.reason
    return str(ds.StudyInstanceUID)


def _uids(found: list[dict[str, dict[str, list[str]]]]) -> list[str]:
    return [row["0020000D"]["Value"][0] for row in found]


def test_priors_come_from_every_hospital_the_caller_may_see(make_archive) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    archive: Archive = make_archive()
    with archive.sessions() as session:
        session.add(Institution(code="county", name="County hospital"))
        session.commit()
    default, county = institution_id(archive.sessions, "default"), institution_id(archive.sessions, "county")
    current = _study(archive, "default", card=ID_CARD, patient_id="MRN-1", date="20260301")
    older_here = _study(archive, "default", card=ID_CARD, patient_id="MRN-1", date="20250101")
    at_county = _study(archive, "county", card=ID_CARD, patient_id="C-998", date="20251201")  # other hospital's ID
    _study(archive, "default", card=OTHER_ID_CARD, patient_id="MRN-2", date="20260201")  # another patient
    own = Scope(None, default)
    assert _uids(prior_studies(archive.sessions, own, current)) == [older_here]  # the county's study is not visible
    share_institution(archive.sessions, source_institution=county, to_institution=default, granted_by=None)
    assert _uids(prior_studies(archive.sessions, own, current)) == [at_county, older_here]  # newest first
    # from the county's side its own study sees the default hospital's only with a grant the other way
    assert _uids(prior_studies(archive.sessions, Scope(None, county), at_county)) == []
    with pytest.raises(NotFound):
        prior_studies(archive.sessions, Scope(None, county), current)
