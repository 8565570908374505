"""Shares (CF-6, SH-1, SH-3): a patient's chosen exams behind an unguessable, expiring, revocable link.

The rules (decision 0010, docs/cloudfilm.md §5):

- **Token**: 32 random bytes, URL-safe base64, in the link ``{public_url}/s/{token}``; only its SHA-256 is
  stored. An unknown token is 404, an expired or revoked share 410.
- **Exams**: only exams the creating patient may see now (their scope: hidden exams, blocked or switched-off
  hospitals are not in it), named by Study Instance UID; an exam outside it is "no such exam".
- **History** (``history=True``): at creation the share also gets every *other* exam in the patient's scope
  (``share_study.chosen = False``). It is a snapshot: exams stored later are not added, and an exam hidden
  later stays in the shares made before (the patient revokes those shares instead).
- **Expiry** is required, at most ``share_max_days``. **Password** (optional, 4-64 characters) is stored as
  argon2id. Wrong passwords are counted on the share, for every visitor together; after
  ``share_password_failures`` of them the share refuses every password for ``share_lock_minutes``.
- **Sessions**: opening a share makes a ``share_session`` row (SHA-256 of the cookie ``yy_share``).
  :func:`authenticate` reads the session *and* its share on every request, so revoking or expiring the share
  ends every open session at once; nothing is cached.
- **Audit**: ``share-create`` / ``share-revoke`` by the patient, ``share-open`` (success, failed, locked) by
  ``share:<id>``, one entry per exam with the Study Instance UID as subject and ``creator:<identity hash>`` as
  detail, so the patient's access log can show who opened what.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth.access import SHARE_STUDIES, Principal, Role
from yunying.auth.audit import AuditRecord, record_many
from yunying.errors import NotFound, YunyingError
from yunying.index.access import Scope, visible_study
from yunying.index.db import write_session
from yunying.index.models import Share, ShareSession, ShareStudy, Study

_hasher = PasswordHasher()
PASSWORD_LENGTH = (4, 64)
ACTION_OPEN = "share-open"


@dataclass(frozen=True)
class Limits:
    """From Settings: the longest share, and the password lockout."""

    max_days: int = 30
    failures: int = 5
    lock_minutes: int = 30


class ShareGone(YunyingError):
    """The share expired or was revoked (410)."""


class ShareRefused(YunyingError):
    """The request cannot make a share; the message says why (422)."""


class WrongPassword(YunyingError):
    """Wrong or missing password for a share that has one (401)."""


class ShareLocked(YunyingError):
    """Too many wrong passwords: the share refuses every password until ``until`` (429)."""

    def __init__(self, until: datetime) -> None:
        super().__init__("too many wrong passwords: try again later")
        self.until = until


@dataclass(frozen=True)
class NewShare:
    id: int
    token: str  # the secret of the link: returned once, stored nowhere
    expires_at: datetime
    study_uids: tuple[str, ...]  # every exam of the share, chosen ones first


@dataclass(frozen=True)
class ShareView:
    """One share as its creator lists it."""

    id: int
    studies: tuple[str, ...]  # chosen exams
    history_studies: tuple[str, ...]  # added by the history option
    created_at: datetime
    expires_at: datetime
    anonymous: bool
    password: bool
    history: bool
    revoked: bool
    opened: int
    last_opened_at: datetime | None


@dataclass(frozen=True)
class ShareInfo:
    needs_password: bool
    expires_at: datetime


@dataclass(frozen=True)
class Opened:
    cookie: str  # the session's secret: given to the browser once
    share_id: int
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


def aware(moment: datetime) -> datetime:
    """SQLite returns naive UTC times."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _live(share: Share, now: datetime) -> bool:
    return share.revoked_at is None and aware(share.expires_at) > now


# --- the patient's side -------------------------------------------------------------------------------------------


def create(sessions: sessionmaker[Session], *, creator: str, actor: str, visible: Scope, study_uids: Sequence[str],
           expires_in: timedelta, password: str | None = None, anonymous: bool = False, history: bool = False,
           limits: Limits = Limits(), source: str = "", now: datetime | None = None) -> NewShare:
    """Share ``study_uids`` (each in ``visible``, the creating patient's scope) for ``expires_in``.

    ``creator`` is the patient's identity hash, ``actor`` their name in the audit trail. Raises
    :class:`ShareRefused` for a bad expiry or password, :class:`NotFound` for an exam outside the scope.
    """
    now = _now(now)
    wanted = list(dict.fromkeys(study_uids))
    if not wanted or not creator:
        raise ShareRefused("choose at least one exam")
    if not timedelta(minutes=1) <= expires_in <= timedelta(days=limits.max_days):
        raise ShareRefused(f"a share lasts between one minute and {limits.max_days} days")
    if password is not None and not PASSWORD_LENGTH[0] <= len(password) <= PASSWORD_LENGTH[1]:
        raise ShareRefused(f"a share password has {PASSWORD_LENGTH[0]} to {PASSWORD_LENGTH[1]} characters")
    token = secrets.token_urlsafe(32)
    with write_session(sessions) as session:
        rows = session.execute(select(Study.id, Study.study_uid).where(visible_study(visible, now))
                               .where(Study.study_uid.in_(wanted))).all()
        chosen = {uid: sid for sid, uid in rows}
        if len(chosen) != len(wanted):
            raise NotFound("no such exam")
        extra: dict[str, int] = {}
        if history:
            others = session.execute(select(Study.id, Study.study_uid).where(visible_study(visible, now))
                                     .where(Study.study_uid.not_in(wanted))).all()
            extra = {uid: sid for sid, uid in others}
        share = Share(token_hash=token_hash(token), creator_identity=creator, created_at=now,
                      expires_at=now + expires_in, password_hash=_hasher.hash(password) if password else None,
                      anonymous=anonymous, history=history)
        session.add(share)
        session.flush()
        session.add_all([ShareStudy(share_fk=share.id, study_fk=chosen[uid], chosen=True) for uid in wanted]
                        + [ShareStudy(share_fk=share.id, study_fk=sid, chosen=False) for sid in extra.values()])
        session.commit()
        new = NewShare(share.id, token, share.expires_at, (*wanted, *sorted(extra)))
    _audit(sessions, actor, "share-create", new.study_uids, source, "success", f"share:{new.id}")
    return new


def list_shares(sessions: sessionmaker[Session], creator: str) -> list[ShareView]:
    """The shares ``creator`` made, newest first (revoked and expired ones included)."""
    with sessions() as session:
        shares = session.execute(select(Share).where(Share.creator_identity == creator)
                                 .order_by(Share.id.desc())).scalars().all()
        members = session.execute(select(ShareStudy.share_fk, ShareStudy.chosen, Study.study_uid)
                                  .join(Study, Study.id == ShareStudy.study_fk)
                                  .where(ShareStudy.share_fk.in_([s.id for s in shares]))
                                  .order_by(Study.study_uid)).all()
    views = []
    for s in shares:
        mine = [(chosen, uid) for fk, chosen, uid in members if fk == s.id]
        views.append(ShareView(s.id, tuple(u for c, u in mine if c), tuple(u for c, u in mine if not c),
                               aware(s.created_at), aware(s.expires_at), s.anonymous, s.password_hash is not None,
                               s.history, s.revoked_at is not None, s.open_count,
                               aware(s.last_opened_at) if s.last_opened_at else None))
    return views


def revoke(sessions: sessionmaker[Session], *, creator: str, actor: str, share_id: int, source: str = "",
           now: datetime | None = None) -> None:
    """End share ``share_id`` of ``creator`` and all its sessions; NotFound when it is not theirs."""
    now = _now(now)
    with write_session(sessions) as session:
        share = session.execute(select(Share).where(Share.id == share_id, Share.creator_identity == creator)
                                ).scalar_one_or_none()
        if share is None:
            raise NotFound("no such share")
        if share.revoked_at is None:
            share.revoked_at = now
        session.execute(update(ShareSession).where(ShareSession.share_fk == share_id,
                                                   ShareSession.revoked_at.is_(None)).values(revoked_at=now))
        session.commit()
        uids = _study_uids(session, share_id)
    _audit(sessions, actor, "share-revoke", uids, source, "success", f"share:{share_id}")


# --- the visitor's side -------------------------------------------------------------------------------------------


def _share_of(session: Session, token: str) -> Share:
    share = session.execute(select(Share).where(Share.token_hash == token_hash(token))).scalar_one_or_none()
    if share is None:
        raise NotFound("no such share")
    return share


def info(sessions: sessionmaker[Session], token: str, now: datetime | None = None) -> ShareInfo:
    """What the share's entry page shows; NotFound, or ShareGone when expired or revoked."""
    with sessions() as session:
        share = _share_of(session, token)
    if not _live(share, _now(now)):
        raise ShareGone("this share has ended")
    return ShareInfo(share.password_hash is not None, aware(share.expires_at))


def open_share(sessions: sessionmaker[Session], token: str, password: str | None, *, limits: Limits = Limits(),
               source: str = "", now: datetime | None = None) -> Opened:
    """A visitor's session for the right password (or none when the share has none).

    Raises NotFound, ShareGone, WrongPassword or ShareLocked; every outcome but NotFound is audited.
    """
    now = _now(now)
    with sessions() as session:
        share = _share_of(session, token)
        uids = _study_uids(session, share.id)
    if not _live(share, now):
        raise ShareGone("this share has ended")
    locked_until = aware(share.locked_until) if share.locked_until else None
    if locked_until is not None and locked_until > now:
        _audit_open(sessions, share, uids, source, "locked")
        raise ShareLocked(locked_until)
    if share.password_hash is not None and not _password_ok(share.password_hash, password or ""):
        until = _count_failure(sessions, share.id, limits, now)
        _audit_open(sessions, share, uids, source, "locked" if until else "failed")
        if until is not None:
            raise ShareLocked(until)
        raise WrongPassword("wrong password")
    cookie = secrets.token_urlsafe(32)
    with write_session(sessions) as session:
        session.add(ShareSession(id=token_hash(cookie), share_fk=share.id, created_at=now, expires_at=share.expires_at,
                                 source=source[:200]))
        session.execute(update(Share).where(Share.id == share.id).values(
            open_count=Share.open_count + 1, last_opened_at=now, failed_opens=0, locked_until=None))
        session.commit()
    _audit_open(sessions, share, uids, source, "success")
    return Opened(cookie, share.id, aware(share.expires_at))


def _password_ok(stored: str, given: str) -> bool:
    try:
        return bool(_hasher.verify(stored, given))
    except VerificationError:
        return False


def _count_failure(sessions: sessionmaker[Session], share_id: int, limits: Limits, now: datetime) -> datetime | None:
    """Count one wrong password; the lock's end when this one locked the share."""
    with write_session(sessions) as session:
        session.execute(update(Share).where(Share.id == share_id).values(failed_opens=Share.failed_opens + 1))
        failures = session.execute(select(Share.failed_opens).where(Share.id == share_id)).scalar_one()
        until = now + timedelta(minutes=limits.lock_minutes) if failures >= limits.failures else None
        if until is not None:
            session.execute(update(Share).where(Share.id == share_id).values(failed_opens=0, locked_until=until))
        session.commit()
    return until


def authenticate(sessions: sessionmaker[Session], cookie: str, now: datetime | None = None) -> Principal | None:
    """The visitor of a live share session, with the share's studies; None when unknown or ended."""
    now = _now(now)
    with sessions() as session:
        found = session.execute(select(ShareSession, Share).join(Share, Share.id == ShareSession.share_fk)
                                .where(ShareSession.id == token_hash(cookie))).first()
        if found is None:
            return None
        row, share = found
        if row.revoked_at is not None or aware(row.expires_at) <= now or not _live(share, now):
            return None
        ids = session.execute(select(ShareStudy.study_fk).where(ShareStudy.share_fk == share.id)).scalars().all()
    name = f"share:{share.id}"
    opened = aware(row.created_at).strftime("%Y-%m-%d %H:%M UTC")
    return Principal(None, name, frozenset({Role.SHARE_VIEWER}), None, name, session_id=row.id, extra={
        "share": str(share.id), "anonymous": "1" if share.anonymous else "0", "identity_of_creator": share.creator_identity,
        "watermark": f"分享查看 · {share.id} · {opened}", "expires_at": aware(share.expires_at).isoformat(),
        SHARE_STUDIES: ",".join(str(i) for i in sorted(ids))})


# --- helpers ------------------------------------------------------------------------------------------------------


def _study_uids(session: Session, share_id: int) -> tuple[str, ...]:
    return tuple(session.execute(select(Study.study_uid).join(ShareStudy, ShareStudy.study_fk == Study.id)
                                 .where(ShareStudy.share_fk == share_id).order_by(Study.study_uid)).scalars())


def _audit(sessions: sessionmaker[Session], actor: str, action: str, uids: Sequence[str], source: str, outcome: str,
           detail: str, role: str = "patient") -> None:
    record_many(sessions, [AuditRecord(actor[:100], action, uid, source, outcome, detail, "", role) for uid in uids]
                or [AuditRecord(actor[:100], action, "", source, outcome, detail, "", role)])


def _audit_open(sessions: sessionmaker[Session], share: Share, uids: Sequence[str], source: str, outcome: str) -> None:
    _audit(sessions, f"share:{share.id}", ACTION_OPEN, uids, source, outcome, f"creator:{share.creator_identity}",
           Role.SHARE_VIEWER.value)


def audit_view(sessions: sessionmaker[Session], visitor: Principal, uids: Sequence[str], source: str,
               what: str) -> None:
    """Record a share visitor's view of ``uids`` (action ``view``; ``what``: exam list, report, ...)."""
    creator = visitor.extra.get("identity_of_creator", "")
    _audit(sessions, visitor.username, "view", uids, source, "success", f"{what}; creator:{creator}",
           Role.SHARE_VIEWER.value)
