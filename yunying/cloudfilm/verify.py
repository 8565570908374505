"""One-time codes for an exam token (CF-2): sent only to the phone on file, entered with the phone or ID card.

Rules (decision 0010), all kept in rows so every API node agrees:

- a code is 6 random digits, stored as HMAC-SHA-256 under a per-code random salt, valid 5 minutes,
  at most 5 attempts; asking for a new code voids the previous one;
- at most :data:`MAX_CODES_PER_HOUR` codes per token (SMS cost, harassment) — ``rate_counter``;
- at most :data:`MAX_FAILURES_PER_HOUR` failed attempts per token (wrong code, wrong number, expired
  code), then the token is locked for :data:`LOCK` (``cloudfilm_token.locked_until``);
- the answer to a code request is the same whether or not the number matches, so it cannot be used
  to test numbers; the code goes to the phone on file, never to the number typed.

The patient's identity after verification is the ID card hash of the exam's patient record when it
has one (every hospital's records with that ID card), else its phone hash: a phone number is often
shared in a family, an ID card number is not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth import throttle
from yunying.cloudfilm.tokens import CloudfilmCipher, ExamAccess, aware, patient_phone, resolve
from yunying.dicom.parse import normalise_id_card, valid_id_card
from yunying.errors import YunyingError
from yunying.index.db import write_session
from yunying.index.models import CloudfilmChallenge, CloudfilmToken, Patient, utcnow
from yunying.index.repository import ID_CARD_CONTEXT, PHONE_CONTEXT
from yunying.notify import mask_phone
from yunying.notify import service as notify

CODE_TTL = timedelta(minutes=5)
MAX_CODE_ATTEMPTS = 5
MAX_FAILURES_PER_HOUR = 10
MAX_CODES_PER_HOUR = 5
LOCK = timedelta(minutes=30)
HOUR_S = 3600.0
METHODS = ("phone", "id_card")
CODE_TEXT = "【{hospital}】云胶片验证码 {code}，5分钟内有效。请勿告诉他人。Cloud film code {code} (5 min)."


class Locked(YunyingError):
    """Too many codes or failures for this token: try again after ``retry_after_s`` (HTTP 429)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many attempts for this link: try again later")
        self.retry_after_s = max(1, retry_after_s)


class Refused(YunyingError):
    """Wrong or expired code, or a number that is not the exam patient's (HTTP 401; one answer for all)."""


class NoPhone(YunyingError):
    """No phone number on file for the exam's patient (or no field key): the hospital must help (HTTP 409)."""


@dataclass(frozen=True)
class CodeSent:
    sent_to: str  # the masked phone on file
    expires_in: int  # seconds
    notification_id: int | None  # None: the number did not match, nothing was sent


@dataclass(frozen=True)
class Verified:
    identity: tuple[str, ...]  # keyed hashes, the first names the patient ("patient:<first 8>")
    display_name: str  # masked
    token_id: int
    study_uid: str


def methods(session: Session, access: ExamAccess) -> list[str]:
    """How the exam's patient can prove who they are: a phone on file is needed for any method."""
    phone_hash, card_hash = session.execute(select(Patient.phone_hash, Patient.id_card_hash)
                                            .where(Patient.id == access.patient_pk)).one()
    if not phone_hash:
        return []
    return ["phone", "id_card"] if card_hash else ["phone"]


def _code_hash(salt: str, code: str) -> str:
    return hmac.new(bytes.fromhex(salt), code.encode(), hashlib.sha256).hexdigest()


def _matches(session: Session, cipher: CloudfilmCipher, patient_pk: int, method: str, value: str) -> bool:
    phone_hash, card_hash = session.execute(select(Patient.phone_hash, Patient.id_card_hash)
                                            .where(Patient.id == patient_pk)).one()
    if method == "phone" and phone_hash:
        return hmac.compare_digest(_blind(cipher, value, PHONE_CONTEXT), phone_hash)
    if method == "id_card" and card_hash and valid_id_card(normalise_id_card(value)):
        return hmac.compare_digest(_blind(cipher, value, ID_CARD_CONTEXT), card_hash)
    return False


def _blind(cipher: CloudfilmCipher, value: str, context: str) -> str:
    return cipher.blind_index(value, context)


def _check_lock(access: ExamAccess, now: datetime) -> None:
    if access.locked_until is not None and access.locked_until > now:
        raise Locked(int((access.locked_until - now).total_seconds()) + 1)


def _fail(sessions: sessionmaker[Session], token_id: int, now: datetime) -> None:
    """Count a failure; the failure that exceeds the hourly limit locks the token for :data:`LOCK`."""
    verdict = throttle.hit(sessions, f"cf-fail:{token_id}", MAX_FAILURES_PER_HOUR, HOUR_S, now.timestamp())
    if verdict.count >= MAX_FAILURES_PER_HOUR:
        with write_session(sessions) as session:
            session.execute(update(CloudfilmToken).where(CloudfilmToken.id == token_id).values(locked_until=now + LOCK))
            session.commit()


def request_code(sessions: sessionmaker[Session], cipher: CloudfilmCipher | None, raw: str, method: str, value: str,
                 now: datetime | None = None) -> CodeSent:
    """Send a code to the phone on file when ``value`` (phone or ID card) is the exam patient's.

    Raises NotFound / TokenGone (token), :class:`Locked`, :class:`NoPhone`, ValueError (unknown method).
    """
    now = now or utcnow()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    with sessions() as session:
        access = resolve(session, raw, now)
        _check_lock(access, now)
        phone = patient_phone(session, cipher, access.patient_pk) if cipher is not None else ""
        if not phone:
            raise NoPhone("no phone number on file for this exam: please ask the hospital")
        matches = _matches(session, cipher, access.patient_pk, method, value) if cipher is not None else False
    verdict = throttle.hit(sessions, f"cf-code:{access.token_id}", MAX_CODES_PER_HOUR, HOUR_S, now.timestamp())
    if not verdict.allowed:
        raise Locked(verdict.retry_after_s)
    sent = CodeSent(mask_phone(phone), int(CODE_TTL.total_seconds()), None)
    if not matches or cipher is None:
        _fail(sessions, access.token_id, now)
        return sent
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(16)
    with write_session(sessions) as session:
        session.execute(update(CloudfilmChallenge).where(CloudfilmChallenge.token_fk == access.token_id,
                                                         CloudfilmChallenge.used_at.is_(None)).values(used_at=now))
        session.add(CloudfilmChallenge(token_fk=access.token_id, method=method, salt=salt, code_hash=_code_hash(salt, code),
                                       attempts=0, created_at=now, expires_at=now + CODE_TTL))
        message = notify.enqueue(session, cipher, channel="sms", purpose="cloudfilm-code", recipient=phone,
                                 body=CODE_TEXT.format(hospital=access.hospital or "云影", code=code),
                                 institution_id=access.institution_id)
        session.commit()
        return CodeSent(sent.sent_to, sent.expires_in, message.id)


def verify_code(sessions: sessionmaker[Session], cipher: CloudfilmCipher | None, raw: str, method: str, value: str,
                code: str, now: datetime | None = None) -> Verified:
    """The patient's identity when ``code`` is the token's live code and ``value`` the exam patient's number.

    Raises NotFound / TokenGone (token), :class:`Locked`, :class:`Refused` (one answer for every mistake).
    """
    now = now or utcnow()
    with write_session(sessions) as session:
        access = resolve(session, raw, now)
        _check_lock(access, now)
        challenge = session.execute(select(CloudfilmChallenge).where(
            CloudfilmChallenge.token_fk == access.token_id, CloudfilmChallenge.used_at.is_(None))
            .order_by(CloudfilmChallenge.id.desc()).limit(1).with_for_update()).scalar_one_or_none()
        live = (challenge is not None and aware(challenge.expires_at) > now
                and challenge.attempts < MAX_CODE_ATTEMPTS)
        right_value = cipher is not None and method in METHODS and _matches(session, cipher, access.patient_pk, method,
                                                                            value)
        right_code = live and challenge is not None and hmac.compare_digest(
            _code_hash(challenge.salt, code.strip()), challenge.code_hash)
        if challenge is not None and live:
            if right_code and right_value:
                challenge.used_at = now
            else:
                challenge.attempts += 1
        identity, name = _identity(session, access.patient_pk)
        session.commit()
    if not (right_code and right_value):
        _fail(sessions, access.token_id, now)
        raise Refused("wrong or expired code, or not the number on file")
    return Verified(identity, name, access.token_id, access.study_uid)


def _identity(session: Session, patient_pk: int) -> tuple[tuple[str, ...], str]:
    card_hash, phone_hash, name = session.execute(select(Patient.id_card_hash, Patient.phone_hash, Patient.patient_name)
                                                  .where(Patient.id == patient_pk)).one()
    identity = (card_hash,) if card_hash else (phone_hash,) if phone_hash else ()
    return identity, mask_name(name)


def mask_name(name: str) -> str:
    """A DICOM person name for a patient's own screen: ``张三`` → ``张*``, ``Zhang^San`` → ``Zhang *``."""
    groups = name.split("=")
    ideographic = groups[1] if len(groups) > 1 and groups[1] else ""
    text = (ideographic or groups[0]).strip()
    family, _, given = text.partition("^")
    if given:
        return f"{family} *" if family.isascii() else family + "*"
    return (text[:1] + "*" * min(3, max(1, len(text) - 1))) if text else ""
