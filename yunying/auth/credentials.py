"""Users and API tokens: argon2id password hashes, a password policy, lockout, random bearer tokens.

Tokens are stored as SHA-256 only and may be limited to some permissions (scopes). Failed password
attempts lock the account for ``LOCK_MINUTES`` after ``MAX_FAILURES``; the counters live in the
shared database so every API node sees them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth.access import Permission, Principal, Role, check_assignable, parse_roles
from yunying.index.db import write_session
from yunying.index.models import ApiToken, Institution, User, utcnow

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
TOKEN_PREFIX = "yy_"  # noqa: S105 - a prefix, not a secret
MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD_LENGTH = 12

__all__ = ["Principal", "create_user", "verify_password", "verify_token"]


class PasswordPolicyError(ValueError):
    """The password does not meet the policy; the message says which rule (never echoes the password)."""


class AccountLocked(Exception):
    """Too many failed attempts: the account is locked until ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__("account temporarily locked after repeated failed logins")
        self.until = until


def check_password_policy(password: str, username: str = "") -> None:
    """At least 12 characters from at least three of: lower case, upper case, digits, other; not the user name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    classes = sum(any(test(c) for c in password) for test in (str.islower, str.isupper, str.isdigit,
                                                               lambda c: not c.isalnum()))
    if classes < 3:
        raise PasswordPolicyError("password must mix at least three of: lower case, upper case, digits, symbols")
    if username and username.lower() in password.lower():
        raise PasswordPolicyError("password must not contain the user name")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def institution_id(sessions: sessionmaker[Session], code: str) -> int:
    with sessions() as session:
        found = session.execute(select(Institution.id).where(Institution.code == code)).scalar_one_or_none()
    if found is None:
        raise LookupError(f"no institution with code {code!r}")
    return int(found)


def create_user(sessions: sessionmaker[Session], username: str, password: str, roles: Iterable[Role] | str = "",
                *, institution: int | None = None, display_name: str = "") -> int:
    parsed = parse_roles(roles) if isinstance(roles, str) else frozenset(roles)
    if not parsed:
        raise ValueError("a user needs at least one role")
    check_assignable(parsed)
    check_password_policy(password, username)
    with write_session(sessions) as session:
        user = User(username=username, password_hash=hash_password(password), roles=",".join(sorted(parsed)),
                    institution_fk=institution, display_name=display_name, password_changed_at=utcnow())
        session.add(user)
        session.commit()
        return user.id


def set_password(sessions: sessionmaker[Session], username: str, password: str) -> None:
    check_password_policy(password, username)
    with write_session(sessions) as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one()
        user.password_hash = hash_password(password)
        user.password_changed_at = utcnow()
        user.failed_logins = 0
        user.locked_until = None
        session.commit()


def user_exists(sessions: sessionmaker[Session], username: str) -> bool:
    with sessions() as session:
        return session.execute(select(User.id).where(User.username == username)).first() is not None


def principal_of(user: User, via: str, scopes: frozenset[Permission] | None = None,
                 session_id: str | None = None) -> Principal:
    return Principal(user.id, user.username, parse_roles(user.roles), user.institution_fk, via, scopes, session_id)


def verify_password(sessions: sessionmaker[Session], username: str, password: str) -> Principal | None:
    """The user's principal for a correct password; None otherwise. Raises AccountLocked while locked.

    The hash is checked outside any transaction and the failure counter written in a write transaction of
    its own (on SQLite a read transaction cannot always be upgraded to a write one: "database is locked").
    """
    now = datetime.now(UTC)
    with sessions() as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is not None:
            session.expunge(user)
    if user is None or user.disabled:
        _hasher.hash(password)  # same cost either way: no user enumeration by timing
        return None
    locked_until = _aware(user.locked_until)
    if locked_until is not None and locked_until > now:
        raise AccountLocked(locked_until)
    try:
        _hasher.verify(user.password_hash, password)
    except VerificationError:
        failures = user.failed_logins + 1
        lock = now + timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILURES else None
        with write_session(sessions) as session:
            session.execute(update(User).where(User.id == user.id).values(
                failed_logins=0 if lock else User.failed_logins + 1, locked_until=lock))
            session.commit()
        if lock is not None:
            raise AccountLocked(lock) from None
        return None
    if user.failed_logins or user.locked_until is not None:
        with write_session(sessions) as session:
            session.execute(update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None))
            session.commit()
    return principal_of(user, "password")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(sessions: sessionmaker[Session], username: str, name: str, days: int | None = 365,
                 scopes: Iterable[Permission] | None = None) -> str:
    """Create an API token for ``username``; the secret is returned once and only its hash stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_session(sessions) as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one()
        expires = datetime.now(UTC) + timedelta(days=days) if days else None
        scope_text = None if scopes is None else ",".join(sorted(scopes))
        session.add(ApiToken(user_fk=user.id, name=name, token_hash=_token_hash(token), expires_at=expires,
                             scopes=scope_text))
        session.commit()
    return token


def revoke_token(sessions: sessionmaker[Session], name: str) -> int:
    with write_session(sessions) as session:
        tokens = session.execute(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).scalars().all()
        for token in tokens:
            token.revoked_at = utcnow()
        session.commit()
        return len(tokens)


def verify_token(sessions: sessionmaker[Session], token: str) -> Principal | None:
    with sessions() as session:
        row = session.execute(
            select(ApiToken, User).join(User, ApiToken.user_fk == User.id).where(ApiToken.token_hash == _token_hash(token))
        ).first()
        if row is None:
            return None
        api_token, user = row
        expires = _aware(api_token.expires_at)
        if api_token.revoked_at is not None or user.disabled or (expires is not None and expires < datetime.now(UTC)):
            return None
        scopes = None if api_token.scopes is None else frozenset(
            Permission(s) for s in api_token.scopes.split(",") if s)
        return principal_of(user, f"token:{api_token.name}", scopes)
