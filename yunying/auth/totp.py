"""TOTP second factor (RFC 6238, 30-second steps, 6 digits, SHA-1 as every authenticator app expects).

The shared secret is stored encrypted (``app_user.totp_secret_enc``) by the field cipher
(``yunying.auth.fieldcrypt``), bound to the user's row; without a configured field key there is no
TOTP. Enrolment is two steps: :func:`enroll` stores a pending secret and returns it once (with an
``otpauth://`` URI for a QR code), :func:`confirm` switches it on when the user proves their app
generates its codes. A code is accepted one step early or late (clock skew) and **only once**
(RFC 6238 §5.2): the last accepted step of each user is kept in the shared ``rate_counter`` table
(key ``totp-step:<user id>``), so a code seen by a shoulder-surfer is useless, on every node.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Protocol

import pyotp
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from yunying.index.db import write_session
from yunying.index.models import RateCounter, User

ISSUER = "Yunying"
STEP_S = 30
DIGITS = 6
SKEW_STEPS = 1  # accept the previous and the next code too


class SecretCipher(Protocol):
    """What TOTP needs of ``yunying.auth.fieldcrypt.FieldCipher``."""

    def encrypt(self, text: str, context: str) -> str: ...

    def decrypt(self, token: str, context: str) -> str: ...


class TotpUnavailable(Exception):
    """No field key is configured, so no secret can be stored encrypted."""

    def __init__(self) -> None:
        super().__init__("TOTP needs the field encryption key (YUNYING_FIELD_KEY and YUNYING_FIELD_HASH_KEY) "
                         "to store second-factor secrets encrypted")


class AlreadyEnrolled(Exception):
    """The user's second factor is already on; an administrator resets it (lost device)."""


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, shown once
    uri: str  # otpauth://totp/Yunying:<user>?secret=…&issuer=Yunying


def _context(user_id: int) -> str:
    return f"app_user.totp_secret:{user_id}"  # a secret copied to another user's row does not decrypt


def _clean(code: str) -> str:
    code = code.replace(" ", "")
    return code if len(code) == DIGITS and code.isdigit() else ""


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code ``code`` is (within the allowed skew), or None."""
    code = _clean(code)
    if not code:
        return None
    generator = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = int((time.time() if now is None else now) // STEP_S)
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if hmac.compare_digest(generator.generate_otp(step), code):
            return step
    return None


def _claim_step(sessions: sessionmaker[Session], user_id: int, step: int) -> bool:
    """Record ``step`` as used; False when it (or a later one) was used already: a replayed code."""
    key = f"totp-step:{user_id}"
    with write_session(sessions) as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(RateCounter).values(key=key, window_start=-1.0, count=0)
                        .on_conflict_do_nothing(index_elements=["key"]))
        claimed = session.execute(update(RateCounter).where(RateCounter.key == key, RateCounter.window_start < step)
                                  .values(window_start=float(step), count=RateCounter.count + 1)).rowcount  # type: ignore[attr-defined]
        session.commit()
    return bool(claimed)


def _secret_of(sessions: sessionmaker[Session], user_id: int, cipher: SecretCipher | None) -> tuple[str | None, bool]:
    """The user's (pending or active) secret in clear, and whether TOTP is on."""
    with sessions() as session:
        row = session.execute(select(User.totp_secret_enc, User.totp_enabled).where(User.id == user_id)).one()
    if row.totp_secret_enc is None:
        return None, bool(row.totp_enabled)
    if cipher is None:
        raise TotpUnavailable
    return cipher.decrypt(row.totp_secret_enc, _context(user_id)), bool(row.totp_enabled)


def enroll(sessions: sessionmaker[Session], user_id: int, username: str, cipher: SecretCipher | None) -> Enrolment:
    """Store a new pending secret (replacing an unconfirmed one) and return it once."""
    if cipher is None:
        raise TotpUnavailable
    secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
    with write_session(sessions) as session:
        user = session.execute(select(User).where(User.id == user_id)).scalar_one()
        if user.totp_enabled:
            raise AlreadyEnrolled("the second factor is already enabled")
        user.totp_secret_enc = cipher.encrypt(secret, _context(user_id))
        session.commit()
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(name=username, issuer_name=ISSUER)
    return Enrolment(secret, uri)


def confirm(sessions: sessionmaker[Session], user_id: int, code: str, cipher: SecretCipher | None,
            now: float | None = None) -> bool:
    """Switch TOTP on when ``code`` matches the pending secret; False for a wrong (or replayed) code."""
    secret, enabled = _secret_of(sessions, user_id, cipher)
    if enabled:
        raise AlreadyEnrolled("the second factor is already enabled")
    step = None if secret is None else matching_step(secret, code, now)
    if step is None or not _claim_step(sessions, user_id, step):
        return False
    with write_session(sessions) as session:
        session.execute(update(User).where(User.id == user_id).values(totp_enabled=True))
        session.commit()
    return True


def verify(sessions: sessionmaker[Session], user_id: int, code: str, cipher: SecretCipher | None,
           now: float | None = None) -> bool:
    """Whether ``code`` is the user's current code, not used before (TOTP must be on)."""
    secret, enabled = _secret_of(sessions, user_id, cipher)
    if not enabled or secret is None:
        return False
    step = matching_step(secret, code, now)
    return step is not None and _claim_step(sessions, user_id, step)
