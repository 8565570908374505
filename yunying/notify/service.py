"""The message table: queue a message in the caller's transaction, deliver it after the commit.

:func:`enqueue` only adds a row (so a listener running inside a report's transaction sends nothing
for a report that is rolled back). :func:`deliver` claims one queued row with a compare-and-set
``UPDATE … WHERE state = 'queued'`` (works the same on SQLite and PostgreSQL, several nodes never send
one message twice), decrypts the recipient, hands the message to the channel's provider and records
the outcome. A failed attempt goes back to the queue until :data:`MAX_ATTEMPTS`; then it is ``failed``.
Once a real provider has the message, one-time codes and link tokens are cut out of the stored body.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from yunying.index.db import write_session
from yunying.index.models import Notification, utcnow
from yunying.notify import CHANNELS, DeliveryError, Notifiers, Outgoing, mask

log = logging.getLogger(__name__)

RECIPIENT_CONTEXT = "notification.recipient"  # field-cipher context of notification.recipient_enc
MAX_ATTEMPTS = 3
STUCK_AFTER = timedelta(minutes=5)  # a "sending" row this old was left by a crashed process: queue it again
_SECRETS = ((re.compile(r"(?<!\d)\d{6}(?!\d)"), "******"), (re.compile(r"(/m/open/)[A-Za-z0-9_-]+"), r"\1…"))


class FieldCipherLike(Protocol):
    """What the service needs of ``yunying.auth.fieldcrypt.FieldCipher``."""

    def encrypt(self, text: str, context: str) -> str: ...
    def decrypt(self, token: str, context: str) -> str: ...


def redact(body: str) -> str:
    """``body`` without one-time codes (six digits) and link tokens (``/m/open/<token>``)."""
    for pattern, replacement in _SECRETS:
        body = pattern.sub(replacement, body)
    return body


def enqueue(session: Session, cipher: FieldCipherLike, *, channel: str, purpose: str, recipient: str, body: str,
            institution_id: int | None = None, subject: str = "") -> Notification:
    """Add a queued message to ``session`` (the caller commits). ``recipient``: phone digits or e-mail address."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    row = Notification(institution_fk=institution_id, channel=channel, purpose=purpose[:32],
                       recipient_masked=mask(channel, recipient)[:64],
                       recipient_enc=cipher.encrypt(recipient, RECIPIENT_CONTEXT),
                       body=(subject + "\n" if subject else "") + body if channel == "email" else body,
                       state="queued", attempts=0)
    session.add(row)
    return row


@dataclass(frozen=True)
class DeliveryOutcome:
    id: int
    state: str  # sent | queued (will retry) | failed | skipped (someone else has it)
    error: str = ""


def deliver(sessions: sessionmaker[Session], notifiers: Notifiers, cipher: FieldCipherLike,
            notification_id: int) -> DeliveryOutcome:
    """Send one queued message now (no-op when another process claimed it)."""
    now = utcnow()
    with write_session(sessions) as session:
        claimed = session.execute(update(Notification).where(Notification.id == notification_id,
                                                              Notification.state == "queued")
                                  .values(state="sending", attempts=Notification.attempts + 1, updated_at=now))
        session.commit()
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return DeliveryOutcome(notification_id, "skipped")
    with sessions() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        channel, body, attempts = row.channel, row.body, row.attempts
        recipient = cipher.decrypt(row.recipient_enc, RECIPIENT_CONTEXT)
    notifier = notifiers.for_channel(channel)
    subject, _, text = body.partition("\n") if channel == "email" else ("", "", body)
    try:
        reference = notifier.send(Outgoing(channel, recipient, text, subject))
    except DeliveryError as exc:
        state = "failed" if attempts >= MAX_ATTEMPTS else "queued"
        _finish(sessions, notification_id, state=state, error=str(exc)[:500], provider=notifier.name)
        log.warning("notification %d: %s (attempt %d, now %s)", notification_id, exc, attempts, state)
        return DeliveryOutcome(notification_id, state, str(exc))
    keep_body = notifier.name == "outbox"  # the outbox is the delivery: its body is what a developer reads
    _finish(sessions, notification_id, state="sent", provider=notifier.name, provider_ref=reference[:200],
            body=None if keep_body else redact(body), sent_at=utcnow())
    return DeliveryOutcome(notification_id, "sent")


def _finish(sessions: sessionmaker[Session], notification_id: int, *, state: str, provider: str, error: str = "",
            provider_ref: str = "", body: str | None = None, sent_at: datetime | None = None) -> None:
    values: dict[str, object] = {"state": state, "error": error, "provider": provider, "updated_at": utcnow()}
    if provider_ref:
        values["provider_ref"] = provider_ref
    if body is not None:
        values["body"] = body
    if sent_at is not None:
        values["sent_at"] = sent_at
    with write_session(sessions) as session:
        session.execute(update(Notification).where(Notification.id == notification_id).values(**values))
        session.commit()


def deliver_pending(sessions: sessionmaker[Session], notifiers: Notifiers, cipher: FieldCipherLike,
                    limit: int = 50) -> list[DeliveryOutcome]:
    """Deliver up to ``limit`` queued messages, oldest first (the worker's one round)."""
    with write_session(sessions) as session:
        session.execute(update(Notification).where(Notification.state == "sending",
                                                   Notification.updated_at < utcnow() - STUCK_AFTER)
                        .values(state="queued"))
        session.commit()
    with sessions() as session:
        ids = list(session.execute(select(Notification.id).where(Notification.state == "queued")
                                   .order_by(Notification.id).limit(limit)).scalars())
    return [deliver(sessions, notifiers, cipher, i) for i in ids]


@dataclass(frozen=True)
class MessageView:
    id: int
    institution_id: int | None
    channel: str
    purpose: str
    recipient: str  # masked
    body: str
    state: str
    attempts: int
    error: str
    provider: str
    provider_ref: str
    created_at: datetime
    sent_at: datetime | None


def list_messages(sessions: sessionmaker[Session], institution_id: int | None, *, everything: bool = False,
                  limit: int = 100, offset: int = 0) -> list[MessageView]:
    """Messages of ``institution_id`` (``everything``: of every institution), newest first."""
    query = select(Notification)
    if not everything:
        query = query.where(Notification.institution_fk == institution_id)
    with sessions() as session:
        rows = session.execute(query.order_by(Notification.id.desc()).limit(limit).offset(offset)).scalars()
        return [MessageView(r.id, r.institution_fk, r.channel, r.purpose, r.recipient_masked, r.body, r.state,
                            r.attempts, r.error, r.provider, r.provider_ref, r.created_at, r.sent_at) for r in rows]


class NotificationWorker:
    """A thread of ``yunying serve`` delivering queued messages every ``interval_s`` seconds."""

    def __init__(self, sessions: sessionmaker[Session], notifiers: Notifiers, cipher: FieldCipherLike,
                 interval_s: float = 2.0) -> None:
        self._args = (sessions, notifiers, cipher)
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)

    def start(self) -> NotificationWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deliver_pending(*self._args)
            except Exception:  # the worker must outlive a database hiccup; the row keeps the state
                log.exception("notifications: delivery round failed")
            self._stop.wait(self._interval)
