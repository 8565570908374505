"""The patient's scope and controls (CF-3, CF-8, CF-12) in-process on both databases.

Proves: a patient whose ID card matches records at two hospitals sees both hospitals' exams and no
other patient's; a hidden exam leaves the scope (still listed, marked) until unhidden; a hospital
that turns cloud film off (or off for the exam's patient class, from HL7 PV1-2) drops out of the
patient's scope; a block cuts a hospital's regional sharing and a doctor's grant (and priors found by
identity) but never the owning hospital's own access.
"""

from __future__ import annotations

from sqlalchemy import select

from tests.cloudfilm.conftest import CARD_1, CARD_2, PHONE_1, PHONE_2, store
from tests.support.archive import default_institution
from yunying.archive.patients import prior_studies
from yunying.auth.access import Role
from yunying.auth.credentials import create_user, institution_id
from yunying.auth.grants import grant_study, share_institution
from yunying.cloudfilm import hospital, space
from yunying.compose import Archive
from yunying.index.access import Scope, visible_study
from yunying.index.models import Institution, Patient, Study
from yunying.reports import service
from yunying.reports.service import ReportInput, Source, Status


def _visible(archive: Archive, scope: Scope) -> set[str]:
    with archive.sessions() as session:
        return set(session.execute(select(Study.study_uid).where(visible_study(scope))).scalars())


def test_identity_scope_hide_service_off_and_blocks(cf_archive: Archive) -> None:
    archive = cf_archive
    with archive.sessions() as session:
        session.add_all([Institution(code="county", name="County hospital"), Institution(code="clinic", name="Clinic")])
        session.commit()
    home, county, clinic = (default_institution(archive), institution_id(archive.sessions, "county"),
                            institution_id(archive.sessions, "clinic"))
    at_home = store(archive, home, card=CARD_1, phone=PHONE_1, patient_id="MRN-1", accession="H-1", date="20260301")
    at_county = store(archive, county, card=CARD_1, phone=PHONE_2, patient_id="C-77", accession="C-1", date="20251201")
    stranger = store(archive, home, card=CARD_2, phone=PHONE_2, patient_id="MRN-2", accession="H-2")
    with archive.sessions() as session:
        card_hash = session.execute(select(Patient.id_card_hash).where(Patient.patient_id == "MRN-1")).scalar_one()
    identity = frozenset({card_hash})
    patient = Scope(None, None, identity_hashes=identity)

    # Both hospitals' exams of the same ID card, none of another patient's (who shares a phone at the county).
    assert _visible(archive, patient) == {at_home, at_county}
    listed = space.exams(archive.sessions, identity)
    assert [e.study_uid for e in listed] == [at_home, at_county]  # newest first
    assert {(h.name, n) for h, n in space.hospitals(listed)} == {(_name(archive, home), 1),
                                                                 ("County hospital", 1)}
    assert [e.study_uid for e in space.exams(archive.sessions, identity, space.ExamFilter(hospital=county))] == [at_county]
    assert [e.study_uid for e in space.exams(archive.sessions, identity, space.ExamFilter(q="county"))] == [at_county]
    assert stranger not in _visible(archive, patient)

    # Hide / unhide.
    space.set_hidden(archive.sessions, identity, at_county, True)
    assert _visible(archive, patient) == {at_home}
    assert [(e.study_uid, e.hidden) for e in space.exams(archive.sessions, identity)] == [(at_home, False), (at_county, True)]
    space.set_hidden(archive.sessions, identity, at_county, False)
    assert _visible(archive, patient) == {at_home, at_county}

    # The county turns cloud film off; then only for physical exams, and this exam's report says physical exam.
    hospital.put(archive.sessions, county, hospital.HospitalSettings(enabled=False))
    assert _visible(archive, patient) == {at_home}
    hospital.put(archive.sessions, county, hospital.HospitalSettings(patient_classes={"physical-exam": False}))
    assert _visible(archive, patient) == {at_home, at_county}
    service.receive(archive.sessions, ReportInput(institution_id=county, status=Status.FINAL, source=Source.HL7,
                                                  accession_number="C-1", findings="ok", source_ref="c1",
                                                  patient_class="physical-exam"))
    assert _visible(archive, patient) == {at_home}
    hospital.put(archive.sessions, county, hospital.HospitalSettings())
    assert _visible(archive, patient) == {at_home, at_county}

    # Regional sharing county → home and a clinic doctor's grant; the patient blocks both.
    share_institution(archive.sessions, source_institution=county, to_institution=home, granted_by=None)
    doctor = create_user(archive.sessions, "dr-clinic", "Yy-Pass-word-123", [Role.RADIOLOGIST], institution=clinic)
    grant_study(archive.sessions, kind="consultation", study_uid=at_home, granted_by=None, to_user=doctor)
    home_staff, county_staff, clinic_doctor = Scope(None, home), Scope(None, county), Scope(doctor, clinic)
    assert at_county in _visible(archive, home_staff) and at_home in _visible(archive, clinic_doctor)
    assert at_county in _uids(prior_studies(archive.sessions, home_staff, at_home))

    space.add_block(archive.sessions, identity, institution_id=home)
    block = space.add_block(archive.sessions, identity, username="dr-clinic")
    assert {(b.institution, b.username) for b in space.blocks(archive.sessions, identity)} == {
        (_name(archive, home), ""), ("", "dr-clinic")}
    assert at_county not in _visible(archive, home_staff)  # sharing cut
    assert at_home in _visible(archive, home_staff)  # the owning hospital keeps its own exam
    assert _uids(prior_studies(archive.sessions, home_staff, at_home)) == []
    assert at_home not in _visible(archive, clinic_doctor)  # the doctor's grant is cut
    assert at_county in _visible(archive, county_staff) and stranger in _visible(archive, home_staff)
    assert _visible(archive, patient) == {at_home, at_county}  # blocks never hide anything from the patient

    space.remove_block(archive.sessions, identity, block.id)
    assert at_home in _visible(archive, clinic_doctor)
    other = frozenset({"0" * 64})
    assert space.blocks(archive.sessions, other) == [] and _visible(archive, Scope(None, None, identity_hashes=other)) == set()


def _name(archive: Archive, institution: int) -> str:
    with archive.sessions() as session:
        return session.execute(select(Institution.name).where(Institution.id == institution)).scalar_one()


def _uids(found: list[dict[str, dict[str, list[str]]]]) -> list[str]:
    return [row["0020000D"]["Value"][0] for row in found]
