"""Administration use cases behind the admin pages: institutions and users (framework-free).

Who may touch what is decided here, once: a platform administrator reaches every institution, a
hospital administrator their own (:class:`Reach`). Another institution's user is "not found", never
"forbidden", so nothing leaks. A hospital administrator cannot give the platform-admin role nor act on
a platform administrator. Every change and every refused attempt is audited as ``admin:<what>`` with
the administrator as actor and ``user:<name>`` / ``institution:<code>`` as subject, never a password.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth.access import SESSION_ONLY_ROLES, Principal, Role, parse_roles
from yunying.auth.audit import institution_code, record
from yunying.auth.credentials import PasswordPolicyError, check_password_policy, hash_password
from yunying.index.db import write_session
from yunying.index.models import ApiToken, Institution, User, UserSession, utcnow

USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
CODE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


class Refused(Exception):
    """The change was not made; ``reason`` is an i18n key, ``status`` the HTTP status it maps to
    (400: fix the form, 403: not allowed, 404: not in the caller's reach)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class Actor:
    """The administrator making a change, as the audit trail names them."""

    principal: Principal
    source: str  # client address
    institution: str = ""  # institution code

    @classmethod
    def of(cls, sessions: sessionmaker[Session], principal: Principal, source: str) -> Actor:
        return cls(principal, source, institution_code(sessions, principal.institution_id))


def audit_change(sessions: sessionmaker[Session], actor: Actor, what: str, subject: str, detail: str = "",
                 outcome: str = "success") -> None:
    record(sessions, actor=actor.principal.username, action=f"admin:{what}", subject=subject, source=actor.source,
           outcome=outcome, detail=detail, institution=actor.institution, role=actor.principal.role)


def refuse(sessions: sessionmaker[Session], actor: Actor, what: str, subject: str, reason: str,
           status: int = 403) -> Refused:
    """Audit a refused attempt and return the exception to raise."""
    audit_change(sessions, actor, what, subject, reason, outcome="refused")
    return Refused(reason, status)


@dataclass(frozen=True)
class Reach:
    """The institutions an administrator manages: their own, or every one (platform administrator)."""

    institution_id: int | None
    everything: bool

    @classmethod
    def of(cls, principal: Principal) -> Reach:
        return cls(principal.institution_id, Role.PLATFORM_ADMIN in principal.roles)

    def covers(self, institution_id: int | None) -> bool:
        return self.everything or (institution_id is not None and institution_id == self.institution_id)

    def assignable_roles(self) -> list[Role]:
        return [r for r in Role if r not in SESSION_ONLY_ROLES and (self.everything or r is not Role.PLATFORM_ADMIN)]


# --- institutions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstitutionRow:
    id: int
    code: str
    name: str
    level: str
    kind: str
    region: str
    disabled: bool


def list_institutions(sessions: sessionmaker[Session]) -> list[InstitutionRow]:
    with sessions() as session:
        rows = session.execute(select(Institution).order_by(Institution.code)).scalars()
        return [InstitutionRow(i.id, i.code, i.name, i.level, i.kind, i.region, i.disabled) for i in rows]


def institution_by_code(sessions: sessionmaker[Session], code: str) -> int | None:
    with sessions() as session:
        found = session.execute(select(Institution.id).where(Institution.code == code)).scalar_one_or_none()
    return None if found is None else int(found)


def create_institution(sessions: sessionmaker[Session], actor: Actor, *, code: str, name: str, level: str = "",
                       kind: str = "", region: str = "") -> int:
    if not code or not name:
        raise Refused("form.required")
    if not CODE.match(code):
        raise Refused("form.invalid_code")
    if len(name) > 128 or len(level) > 16 or len(kind) > 32 or len(region) > 64:
        raise Refused("form.too_long")
    try:
        with write_session(sessions) as session:
            row = Institution(code=code, name=name, level=level, kind=kind, region=region)
            session.add(row)
            session.commit()
            new_id = row.id
    except IntegrityError:
        raise Refused("form.taken") from None
    audit_change(sessions, actor, "institution-create", f"institution:{code}", f"name {name!r}")
    return new_id


# --- users ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    display_name: str
    institution: str  # code
    roles: tuple[str, ...]
    disabled: bool
    locked: bool
    totp: bool
    tokens: int  # active API tokens


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def list_users(sessions: sessionmaker[Session], reach: Reach, text: str = "", *, limit: int = 200,
               offset: int = 0) -> tuple[list[UserRow], int]:
    """Users within ``reach`` (optionally whose user name or name contains ``text``), by user name, and their number."""
    now = datetime.now(UTC)
    active = (select(func.count(ApiToken.id)).where(ApiToken.user_fk == User.id, ApiToken.revoked_at.is_(None),
                                                    or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))
              .correlate(User).scalar_subquery())
    query = select(User, Institution.code, active).outerjoin(Institution, User.institution_fk == Institution.id)
    if not reach.everything:
        query = query.where(User.institution_fk == reach.institution_id)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(User.username.like(pattern, escape="\\"), User.display_name.like(pattern, escape="\\")))
    with sessions() as session:
        total = session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
        rows = session.execute(query.order_by(User.username).limit(limit).offset(offset)).all()
    users = []
    for user, code, tokens in rows:
        locked_until = _aware(user.locked_until)
        users.append(UserRow(user.id, user.username, user.display_name, code or "", tuple(sorted(parse_roles(user.roles))),
                             user.disabled, locked_until is not None and locked_until > now, user.totp_enabled,
                             int(tokens or 0)))
    return users, int(total)


def create_user(sessions: sessionmaker[Session], actor: Actor, reach: Reach, *, username: str, display_name: str,
                password: str, roles: Iterable[str], institution: str = "") -> int:
    """A new user of ``institution`` (a code; a hospital administrator's own when empty)."""
    subject = f"user:{username[:64]}"
    if not username or not password:
        raise Refused("form.required")
    if not USERNAME.match(username):
        raise Refused("form.invalid_username")
    if len(display_name) > 128:
        raise Refused("form.too_long")
    try:
        wanted = parse_roles(list(roles))
    except ValueError:
        raise Refused("form.role_not_allowed") from None
    if not wanted:
        raise Refused("form.roles_required")
    if not wanted <= set(reach.assignable_roles()):
        raise refuse(sessions, actor, "user-create", subject, "form.role_not_allowed")
    institution_id = reach.institution_id if not institution else institution_by_code(sessions, institution)
    if institution_id is None:
        raise Refused("form.unknown_institution")
    if not reach.covers(institution_id):
        raise refuse(sessions, actor, "user-create", subject, "form.institution_not_allowed")
    try:
        check_password_policy(password, username)
    except PasswordPolicyError:
        raise Refused("form.password_policy") from None
    try:
        with write_session(sessions) as session:
            user = User(username=username, password_hash=hash_password(password), roles=",".join(sorted(wanted)),
                        institution_fk=institution_id, display_name=display_name, password_changed_at=utcnow())
            session.add(user)
            session.commit()
            new_id = user.id
    except IntegrityError:
        raise Refused("form.taken") from None
    code = institution_code(sessions, institution_id)
    audit_change(sessions, actor, "user-create", subject, f"roles {','.join(sorted(wanted))}; institution {code}")
    return new_id


def _end_sessions(session: Session, user: User, now: datetime) -> None:
    user.sessions_valid_after = now
    session.execute(update(UserSession).where(UserSession.user_fk == user.id, UserSession.revoked_at.is_(None))
                    .values(revoked_at=now))


def _disable(session: Session, user: User, _password: str, now: datetime) -> str:
    user.disabled = True
    _end_sessions(session, user, now)  # and enabling later does not bring them back
    return "sessions ended"


def _enable(_session: Session, user: User, _password: str, _now: datetime) -> str:
    user.disabled = False
    return ""


def _reset_password(session: Session, user: User, password: str, now: datetime) -> str:
    try:
        check_password_policy(password, user.username)
    except PasswordPolicyError:
        raise Refused("form.password_policy") from None
    user.password_hash = hash_password(password)
    user.password_changed_at, user.failed_logins, user.locked_until = now, 0, None
    _end_sessions(session, user, now)
    return "lockout cleared; sessions ended"


def _reset_totp(session: Session, user: User, _password: str, now: datetime) -> str:
    user.totp_enabled, user.totp_secret_enc = False, None
    _end_sessions(session, user, now)
    return "sessions ended"


def _revoke_tokens(session: Session, user: User, _password: str, now: datetime) -> str:
    revoked = session.execute(update(ApiToken).where(ApiToken.user_fk == user.id, ApiToken.revoked_at.is_(None))
                              .values(revoked_at=now)).rowcount  # type: ignore[attr-defined]
    return f"{revoked} token(s)"


# action → (audited as admin:<what>, i18n notice done.<what>, the change)
USER_ACTIONS: dict[str, tuple[str, Callable[[Session, User, str, datetime], str]]] = {
    "disable": ("user-disabled", _disable),
    "enable": ("user-enabled", _enable),
    "reset-password": ("user-password", _reset_password),
    "reset-totp": ("user-totp-reset", _reset_totp),
    "revoke-tokens": ("token-revoke", _revoke_tokens),
}


def act_on_user(sessions: sessionmaker[Session], actor: Actor, reach: Reach, user_id: int, action: str,
                password: str = "") -> str:
    """Apply one of :data:`USER_ACTIONS` to a user within ``reach``; returns the notice (``done.*``) key."""
    if action not in USER_ACTIONS:
        raise Refused("form.unknown_action")
    what, change = USER_ACTIONS[action]
    with write_session(sessions) as session:
        user = session.get(User, user_id)
        if user is None or not reach.covers(user.institution_fk):
            raise Refused("error.404", 404)  # another institution's user is not found, not forbidden
        subject = f"user:{user.username}"
        if user.id == actor.principal.user_id:
            raise Refused("form.not_self")
        if Role.PLATFORM_ADMIN in parse_roles(user.roles) and not reach.everything:
            raise refuse(sessions, actor, what, subject, "form.role_not_allowed")
        detail = change(session, user, password, datetime.now(UTC))
        session.commit()
    audit_change(sessions, actor, what, subject, detail)
    return what
