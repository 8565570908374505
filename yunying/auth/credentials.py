"""Users and API tokens: argon2id password hashes, random bearer tokens stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.index.models import ApiToken, User, utcnow

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
TOKEN_PREFIX = "yy_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, possibly through one of its API tokens."""

    user_id: int
    username: str
    role: str
    via: str  # "password" | "token:<name>"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(sessions: sessionmaker[Session], username: str, password: str, role: str = "admin") -> int:
    if len(password) < 12:
        raise ValueError("password must have at least 12 characters")
    with sessions() as session:
        user = User(username=username, password_hash=hash_password(password), role=role)
        session.add(user)
        session.commit()
        return user.id


def set_password(sessions: sessionmaker[Session], username: str, password: str) -> None:
    with sessions() as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one()
        user.password_hash = hash_password(password)
        session.commit()


def user_exists(sessions: sessionmaker[Session], username: str) -> bool:
    with sessions() as session:
        return session.execute(select(User.id).where(User.username == username)).first() is not None


def verify_password(sessions: sessionmaker[Session], username: str, password: str) -> Principal | None:
    with sessions() as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None or user.disabled:
            _hasher.hash(password)  # same cost either way: no user enumeration by timing
            return None
        try:
            _hasher.verify(user.password_hash, password)
        except VerificationError:
            return None
        return Principal(user.id, user.username, user.role, "password")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(sessions: sessionmaker[Session], username: str, name: str, days: int | None = 365) -> str:
    """Create an API token for ``username``; the secret is returned once and only its hash stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with sessions() as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one()
        expires = datetime.now(UTC) + timedelta(days=days) if days else None
        session.add(ApiToken(user_fk=user.id, name=name, token_hash=_token_hash(token), expires_at=expires))
        session.commit()
    return token


def revoke_token(sessions: sessionmaker[Session], name: str) -> int:
    with sessions() as session:
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
        now = datetime.now(UTC)
        expires = api_token.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if api_token.revoked_at is not None or user.disabled or (expires is not None and expires < now):
            return None
        return Principal(user.id, user.username, user.role, f"token:{api_token.name}")
