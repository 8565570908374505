"""Interactive (browser) sessions: login, idle lock, absolute expiry, logout everywhere, password change.

A session is a random cookie value; the database keeps only its SHA-256 (``user_session.id``) with a
CSRF token, so every API node behind the load balancer sees the same sessions and nothing lives in a
process. The rules:

- **Login** is the password, plus the TOTP code when the user has enabled the second factor. Wrong
  passwords and wrong codes count towards the account lockout (``credentials.MAX_FAILURES``); a
  locked account is refused like a wrong password. Every attempt is audited (``login``: success,
  failed, locked) with the client address; never a password or a code.
- **Administrators** (``ADMIN_ROLES``) get their administrative permissions in a session only after
  a TOTP code; until then the session carries ``self`` only (profile, password, enrolment).
- **Idle**: unused for ``session_idle_minutes`` → locked; only the password unlocks it.
- **Absolute**: ``session_max_hours`` after login the session is over, used or not.
- **Logout everywhere** sets ``app_user.sessions_valid_after``: every session created before is void.
- **Password change** enforces the policy and ends the user's other sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth import totp
from yunying.auth.access import ADMIN_ROLES, Permission, Principal, Role, parse_roles, permissions_of
from yunying.auth.audit import record
from yunying.auth.credentials import (
    LOCK_MINUTES,
    MAX_FAILURES,
    AccountLocked,
    PasswordPolicyError,
    check_password_policy,
    principal_of,
    set_password,
    verify_password,
)
from yunying.index.db import write_session
from yunying.index.models import Institution, User, UserSession

__all__ = ["AccountLocked", "LoginRefused", "PasswordPolicyError", "SessionPolicy", "SessionView", "WrongPassword",
           "authenticate", "change_password", "lock", "login", "logout", "logout_everywhere", "unlock"]


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta  # unused this long → locked
    max_age: timedelta  # this long after login → over
    touch_every: timedelta = timedelta(seconds=15)  # last_seen_at is written at most this often

    @classmethod
    def of(cls, idle_minutes: int, max_hours: int) -> SessionPolicy:
        return cls(timedelta(minutes=idle_minutes), timedelta(hours=max_hours))


@dataclass(frozen=True)
class SessionView:
    """One live session as the API sees it."""

    session_id: str
    csrf_token: str
    principal: Principal  # with the roles this session carries (administrative ones only after the second factor)
    locked: bool
    expires_at: datetime
    second_factor_done: bool
    totp_enabled: bool
    held_roles: frozenset[Role] = frozenset()  # every role of the user, whatever this session carries

    @property
    def second_factor_required(self) -> bool:
        """An administrator without a TOTP code in this session: administrative permissions withheld."""
        return bool((self.held_roles or self.principal.roles) & ADMIN_ROLES) and not self.second_factor_done


@dataclass(frozen=True)
class NewSession:
    cookie: str  # the secret cookie value: given to the browser once, stored nowhere
    view: SessionView


class LoginRefused(Exception):
    """Login refused; ``reason`` is "invalid" (wrong name, password or code; also a locked account, so
    the answer never tells which) or "second-factor-required" (right password, TOTP code missing)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WrongPassword(Exception):
    """The password given to unlock a session or to change it is not the user's."""


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def session_id_of(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _view(row: UserSession, user: User) -> SessionView:
    roles = parse_roles(user.roles)
    pending = bool(roles & ADMIN_ROLES) and not row.second_factor_done
    # One factor so far: the user's other roles work, the administrative ones wait for the code.
    scopes = permissions_of(roles - ADMIN_ROLES) | {Permission.SELF} if pending else None
    principal = principal_of(user, "session", scopes, row.id)
    return SessionView(row.id, row.csrf_token, principal, row.locked, _aware(row.expires_at), row.second_factor_done,
                       user.totp_enabled, roles)


def _audit(sessions: sessionmaker[Session], actor: str, action: str, outcome: str, source: str, detail: str = "") -> None:
    record(sessions, actor=actor[:64], action=action, source=source, outcome=outcome, detail=detail)


def _failed_logins(sessions: sessionmaker[Session], username: str) -> int:
    with sessions() as session:
        return int(session.execute(select(User.failed_logins).where(User.username == username)).scalar_one_or_none() or 0)


def _keep_failures(sessions: sessionmaker[Session], user_id: int, before: int, add: int, now: datetime) -> bool:
    """Undo the reset a right password made while the second factor is still missing or wrong, and count a
    wrong code (``add``); True when that locked the account."""
    with write_session(sessions) as session:
        kept = case((User.failed_logins < before, before), else_=User.failed_logins) + add
        session.execute(update(User).where(User.id == user_id).values(failed_logins=kept))
        failures = session.execute(select(User.failed_logins).where(User.id == user_id)).scalar_one()
        locked = failures >= MAX_FAILURES
        if locked:
            session.execute(update(User).where(User.id == user_id).values(
                failed_logins=0, locked_until=now + timedelta(minutes=LOCK_MINUTES)))
        session.commit()
    return locked


def _second_factor(sessions: sessionmaker[Session], user_id: int, username: str, code: str, cipher: totp.SecretCipher | None,
                   before: int, source: str, now: datetime) -> None:
    """Check the TOTP code of a user who has it on; raises LoginRefused."""
    if not code:
        _keep_failures(sessions, user_id, before, 0, now)
        _audit(sessions, username, "login", "failed", source, "second factor missing")
        raise LoginRefused("second-factor-required")
    if not totp.verify(sessions, user_id, code, cipher, now.timestamp()):
        locked = _keep_failures(sessions, user_id, before, 1, now)
        _audit(sessions, username, "login", "locked" if locked else "failed", source, "wrong second factor")
        raise LoginRefused("invalid")


def login(sessions: sessionmaker[Session], username: str, password: str, code: str, *, policy: SessionPolicy,
          cipher: totp.SecretCipher | None, source: str, now: datetime | None = None) -> NewSession:
    """A new session for the right password (and TOTP code when enabled); raises LoginRefused."""
    now = _now(now)
    before = _failed_logins(sessions, username)
    try:
        principal = verify_password(sessions, username, password)
    except AccountLocked:
        _audit(sessions, username, "login", "locked", source)
        raise LoginRefused("invalid") from None
    if principal is None or principal.user_id is None:
        _audit(sessions, username, "login", "failed", source)
        raise LoginRefused("invalid")
    with sessions() as session:
        totp_on = bool(session.execute(select(User.totp_enabled).where(User.id == principal.user_id)).scalar_one())
    if totp_on:
        _second_factor(sessions, principal.user_id, username, code, cipher, before, source, now)
    cookie = secrets.token_urlsafe(32)
    with write_session(sessions) as session:
        session.execute(delete(UserSession).where(UserSession.user_fk == principal.user_id, or_(
            UserSession.expires_at < now, UserSession.revoked_at.is_not(None))))  # the user's dead sessions
        row = UserSession(id=session_id_of(cookie), user_fk=principal.user_id, csrf_token=secrets.token_urlsafe(32),
                          created_at=now, last_seen_at=now, expires_at=now + policy.max_age,
                          second_factor_done=totp_on, locked=False, source=source[:200])
        session.add(row)
        session.commit()
        user = session.execute(select(User).where(User.id == principal.user_id)).scalar_one()
        view = _view(row, user)
    _audit(sessions, username, "login", "success", source, "password and TOTP" if totp_on else "password")
    return NewSession(cookie, view)


def authenticate(sessions: sessionmaker[Session], cookie: str, policy: SessionPolicy,
                 now: datetime | None = None) -> SessionView | None:
    """The live session of ``cookie`` (locked when idle too long), or None when unknown, over or void."""
    now = _now(now)
    with sessions() as session:
        found = session.execute(select(UserSession, User).join(User, UserSession.user_fk == User.id)
                                .where(UserSession.id == session_id_of(cookie))).first()
    if found is None:
        return None
    row, user = found
    valid_after = user.sessions_valid_after
    if (row.revoked_at is not None or user.disabled or _aware(row.expires_at) <= now
            or (valid_after is not None and _aware(row.created_at) <= _aware(valid_after))):
        return None
    idle = now - _aware(row.last_seen_at)
    if not row.locked and idle > policy.idle:
        _set(sessions, row.id, locked=True)
        row.locked = True
    elif not row.locked and idle >= policy.touch_every:
        _set(sessions, row.id, last_seen_at=now)
    return _view(row, user)


def _set(sessions: sessionmaker[Session], session_id: str, **values: object) -> None:
    with write_session(sessions) as session:
        session.execute(update(UserSession).where(UserSession.id == session_id).values(**values))
        session.commit()


def lock(sessions: sessionmaker[Session], view: SessionView, source: str) -> None:
    _set(sessions, view.session_id, locked=True)
    _audit(sessions, view.principal.username, "session-lock", "success", source)


def unlock(sessions: sessionmaker[Session], view: SessionView, password: str, source: str,
           now: datetime | None = None) -> None:
    """Unlock with the user's password; raises WrongPassword, or AccountLocked (the session is then ended)."""
    username = view.principal.username
    try:
        if verify_password(sessions, username, password) is None:
            _audit(sessions, username, "session-unlock", "failed", source)
            raise WrongPassword
    except AccountLocked:
        _set(sessions, view.session_id, revoked_at=_now(now))
        _audit(sessions, username, "session-unlock", "locked", source, "account locked: session ended")
        raise
    _set(sessions, view.session_id, locked=False, last_seen_at=_now(now))
    _audit(sessions, username, "session-unlock", "success", source)


def logout(sessions: sessionmaker[Session], principal: Principal, source: str, now: datetime | None = None) -> None:
    if principal.session_id is not None:
        _set(sessions, principal.session_id, revoked_at=_now(now))
        _audit(sessions, principal.username, "logout", "success", source)


def logout_everywhere(sessions: sessionmaker[Session], principal: Principal, source: str,
                      now: datetime | None = None) -> None:
    """End every session of the caller's user, on every device (this one included)."""
    now = _now(now)
    with write_session(sessions) as session:
        session.execute(update(User).where(User.id == principal.user_id).values(sessions_valid_after=now))
        session.execute(update(UserSession).where(UserSession.user_fk == principal.user_id,
                                                  UserSession.revoked_at.is_(None)).values(revoked_at=now))
        session.commit()
    _audit(sessions, principal.username, "logout-all", "success", source)


def change_password(sessions: sessionmaker[Session], principal: Principal, current: str, new: str, source: str,
                    now: datetime | None = None) -> None:
    """Set a new password (policy enforced) after the current one; ends the user's other sessions.

    Raises PasswordPolicyError, WrongPassword, or AccountLocked (this session is then ended too).
    """
    username = principal.username
    check_password_policy(new, username)
    if secrets.compare_digest(new.encode(), current.encode()):
        raise PasswordPolicyError("the new password must differ from the current one")
    try:
        if verify_password(sessions, username, current) is None:
            _audit(sessions, username, "password-change", "failed", source)
            raise WrongPassword
    except AccountLocked:
        if principal.session_id is not None:
            _set(sessions, principal.session_id, revoked_at=_now(now))
        _audit(sessions, username, "password-change", "locked", source, "account locked")
        raise
    set_password(sessions, username, new)
    with write_session(sessions) as session:
        others = update(UserSession).where(UserSession.user_fk == principal.user_id, UserSession.revoked_at.is_(None))
        if principal.session_id is not None:
            others = others.where(UserSession.id != principal.session_id)
        session.execute(others.values(revoked_at=_now(now)))
        session.commit()
    _audit(sessions, username, "password-change", "success", source, "other sessions ended")


def view_of(sessions: sessionmaker[Session], session_id: str) -> SessionView:
    """The session as stored now (after a change made in this request)."""
    with sessions() as session:
        row, user = session.execute(select(UserSession, User).join(User, UserSession.user_fk == User.id)
                                    .where(UserSession.id == session_id)).one()
    return _view(row, user)


def start_enrolment(sessions: sessionmaker[Session], principal: Principal, cipher: totp.SecretCipher | None,
                    source: str) -> totp.Enrolment:
    """A new pending TOTP secret for the caller (raises totp.AlreadyEnrolled, totp.TotpUnavailable)."""
    if principal.user_id is None:
        raise ValueError("a DICOM peer has no second factor")
    enrolment = totp.enroll(sessions, principal.user_id, principal.username, cipher)
    _audit(sessions, principal.username, "totp-enroll", "started", source)
    return enrolment


def confirm_enrolment(sessions: sessionmaker[Session], principal: Principal, code: str, cipher: totp.SecretCipher | None,
                      source: str) -> bool:
    """Switch the caller's TOTP on with a current code; the session (if any) then counts as second-factor
    authenticated, so an administrator gets their permissions without signing in again."""
    if principal.user_id is None:
        raise ValueError("a DICOM peer has no second factor")
    if not totp.confirm(sessions, principal.user_id, code, cipher):
        _audit(sessions, principal.username, "totp-enroll", "failed", source, "wrong code")
        return False
    if principal.session_id is not None:
        _set(sessions, principal.session_id, second_factor_done=True)
    _audit(sessions, principal.username, "totp-enroll", "success", source)
    return True


@dataclass(frozen=True)
class Profile:
    """What "who am I" shows beyond the principal."""

    display_name: str
    held_roles: frozenset[Role]  # as granted (a login may carry fewer)
    totp_enabled: bool
    institution: tuple[int, str, str] | None  # id, code, name

    @property
    def enrolment_required(self) -> bool:
        return bool(self.held_roles & ADMIN_ROLES) and not self.totp_enabled


def profile(sessions: sessionmaker[Session], user_id: int) -> Profile:
    with sessions() as session:
        user = session.execute(select(User).where(User.id == user_id)).scalar_one()
        institution = None
        if user.institution_fk is not None:
            found = session.execute(select(Institution).where(Institution.id == user.institution_fk)).scalar_one()
            institution = (found.id, found.code, found.name)
        return Profile(user.display_name, parse_roles(user.roles), user.totp_enabled, institution)
