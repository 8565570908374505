"""Exam tokens and one-time codes (CF-2, SH-3) in-process on both databases, with the clock as a parameter.

Proves: a final report creates the exam's token once (not again when amended); the code goes only to
the phone on file and the answer does not depend on the number typed; wrong code, another patient's
number or code, an expired code, a used code, an expired or revoked token are all refused; ten
failures lock the token for 30 minutes (then the right code works); codes per token are limited;
the identity after verification is the ID card's keyed hash.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.cloudfilm.conftest import CARD_1, CARD_2, PHONE_1, PHONE_1_MASKED, PHONE_2, six_digits, store
from tests.support.archive import default_institution
from yunying.cloudfilm import tokens, verify
from yunying.compose import Archive
from yunying.errors import NotFound
from yunying.index.models import CloudfilmToken, Notification, Patient, Study, utcnow
from yunying.reports import service
from yunying.reports.service import ReportInput, Source, Status


def _token(archive: Archive, study_uid: str) -> str:
    with archive.sessions() as session:
        study = session.execute(select(Study).where(Study.study_uid == study_uid)).scalar_one()
        raw, _row = tokens.issue_token(session, study, purpose="cover", created_by="test")
        session.commit()
    return raw


def _code_of(archive: Archive, notification_id: int | None) -> str:
    assert notification_id is not None
    with archive.sessions() as session:
        message = session.get(Notification, notification_id)
        assert message is not None and message.purpose == "cloudfilm-code"
        assert message.recipient_masked == PHONE_1_MASKED and PHONE_1 not in message.recipient_enc
        return six_digits(message.body)


def test_final_report_token_codes_and_refusals(cf_archive: Archive) -> None:
    archive = cf_archive
    home = default_institution(archive)
    mine = store(archive, home, card=CARD_1, phone=PHONE_1, patient_id="MRN-1", accession="ACC-1")
    theirs = store(archive, home, card=CARD_2, phone=PHONE_2, patient_id="MRN-2", accession="ACC-2")

    # A final report (then an amendment) for the stored exam: one token, made by the ON_FINAL listener.
    for status, ref in ((Status.FINAL, "r1"), (Status.AMENDED, "r2")):
        service.receive(archive.sessions, ReportInput(institution_id=home, status=status, source=Source.HL7,
                                                      accession_number="ACC-1", findings="ok", source_ref=ref))
    with archive.sessions() as session:
        made = session.execute(select(func.count()).select_from(CloudfilmToken).join(Study)
                               .where(Study.study_uid == mine, CloudfilmToken.purpose == "final")).scalar_one()
        assert made == 1
        assert session.execute(select(func.count()).select_from(CloudfilmToken).join(Study)
                               .where(Study.study_uid == theirs)).scalar_one() == 0  # no report, no token

    raw, other_raw = _token(archive, mine), _token(archive, theirs)
    t0 = utcnow()
    sessions, cipher = archive.sessions, archive.fields
    with pytest.raises(NotFound):
        verify.request_code(sessions, cipher, "x" * 43, "phone", PHONE_1, now=t0)

    # The same answer for another number, but nothing is sent.
    wrong_number = verify.request_code(sessions, cipher, raw, "phone", PHONE_2, now=t0)
    assert wrong_number.sent_to == PHONE_1_MASKED and wrong_number.notification_id is None
    sent = verify.request_code(sessions, cipher, raw, "phone", "+86 138 1234 5678", now=t0)
    assert sent.sent_to == PHONE_1_MASKED and sent.expires_in == 300
    code = _code_of(archive, sent.notification_id)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    refused = [("phone", PHONE_1, wrong, t0), ("phone", PHONE_2, code, t0), ("id_card", CARD_2, code, t0),
               ("phone", PHONE_1, code, t0 + timedelta(minutes=6))]  # wrong code, other numbers, expired code
    for method, value, attempt, at in refused:
        with pytest.raises(verify.Refused):
            verify.verify_code(sessions, cipher, raw, method, value, attempt, now=at)

    # A new code; another patient's code (for their own token) does not open this one.
    fresh = _code_of(archive, verify.request_code(sessions, cipher, raw, "id_card", CARD_1.lower(), now=t0).notification_id)
    other_code = verify.request_code(sessions, cipher, other_raw, "phone", PHONE_2, now=t0)
    with archive.sessions() as session:
        message = session.get(Notification, other_code.notification_id)
        assert message is not None
        their_code = six_digits(message.body)
    if their_code != fresh:
        with pytest.raises(verify.Refused):
            verify.verify_code(sessions, cipher, raw, "phone", PHONE_1, their_code, now=t0)
    found = verify.verify_code(sessions, cipher, raw, "id_card", CARD_1, fresh, now=t0 + timedelta(minutes=1))
    with archive.sessions() as session:
        card_hash = session.execute(select(Patient.id_card_hash).join(Study, Study.patient_fk == Patient.id)
                                    .where(Study.study_uid == mine)).scalar_one()
    assert found.identity == (card_hash,) and found.study_uid == mine and found.display_name == "Zhang *"
    with pytest.raises(verify.Refused):  # a code works once
        verify.verify_code(sessions, cipher, raw, "id_card", CARD_1, fresh, now=t0 + timedelta(minutes=1))

    # Expired and revoked tokens are gone (410), whatever the code.
    with archive.sessions() as session:
        row = session.execute(select(CloudfilmToken).where(CloudfilmToken.token_hash == tokens.hash_token(raw))).scalar_one()
        expires = tokens.aware(row.expires_at)
    with pytest.raises(tokens.TokenGone):
        verify.request_code(sessions, cipher, raw, "phone", PHONE_1, now=expires + timedelta(seconds=1))
    with archive.sessions() as session:
        row = session.execute(select(CloudfilmToken)
                              .where(CloudfilmToken.token_hash == tokens.hash_token(other_raw))).scalar_one()
        row.revoked_at = t0
        session.commit()
    with pytest.raises(tokens.TokenGone):
        verify.verify_code(sessions, cipher, other_raw, "phone", PHONE_2, their_code, now=t0)


def test_brute_force_locks_the_token_and_codes_are_limited(cf_archive: Archive) -> None:
    archive = cf_archive
    study = store(archive, default_institution(archive), card=CARD_1, phone=PHONE_1, patient_id="MRN-9", accession="A9")
    raw = _token(archive, study)
    sessions, cipher = archive.sessions, archive.fields
    t0 = utcnow().replace(minute=0, second=1, microsecond=0)  # the start of an hour window
    code = _code_of(archive, verify.request_code(sessions, cipher, raw, "phone", PHONE_1, now=t0).notification_id)
    for n in range(verify.MAX_FAILURES_PER_HOUR):
        with pytest.raises(verify.Refused):
            verify.verify_code(sessions, cipher, raw, "phone", PHONE_2 if n % 2 else PHONE_1, "000000"
                               if code != "000000" else "111111", now=t0 + timedelta(seconds=n))
    with pytest.raises(verify.Locked) as locked:  # locked: even the right code is refused
        verify.verify_code(sessions, cipher, raw, "phone", PHONE_1, code, now=t0 + timedelta(minutes=1))
    assert 28 * 60 < locked.value.retry_after_s <= 30 * 60 + 1
    with pytest.raises(verify.Locked):
        verify.request_code(sessions, cipher, raw, "phone", PHONE_1, now=t0 + timedelta(minutes=29))

    after = t0 + timedelta(minutes=31)  # the lock is over; a new code works
    code = _code_of(archive, verify.request_code(sessions, cipher, raw, "phone", PHONE_1, now=after).notification_id)
    assert verify.verify_code(sessions, cipher, raw, "phone", PHONE_1, code, now=after).study_uid == study

    for _ in range(verify.MAX_CODES_PER_HOUR - 2):  # two codes were sent in this hour already
        verify.request_code(sessions, cipher, raw, "phone", PHONE_1, now=after)
    with pytest.raises(verify.Locked):
        verify.request_code(sessions, cipher, raw, "phone", PHONE_1, now=after)
