"""Feedback tickets (CF-10): a patient, share visitor or staff member reports a problem with exam context.

A ticket names the page, a text (at most :data:`MAX_TEXT` characters), optionally the exam (a Study
Instance UID the sender may see: its institution then owns the ticket) and a screenshot (PNG or JPEG,
at most :data:`MAX_SCREENSHOT` bytes, checked by decoding it with Pillow; stored in the blob store
under ``feedback/``). Tickets without an exam belong to the platform (``institution_fk`` NULL).
Administrators list and close the tickets of their institution; platform administrators those of none.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO

from PIL import Image, UnidentifiedImageError
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth import audit
from yunying.auth.access import Principal, Role
from yunying.errors import NotFound, YunyingError
from yunying.index.access import Scope, visible_study
from yunying.index.db import write_session
from yunying.index.models import FeedbackTicket, Study
from yunying.storage.base import BlobStore, checksum, content_key

MAX_TEXT = 2000
MAX_SCREENSHOT = 2 * 1024 * 1024  # decoded bytes
MAX_PIXELS = 40_000_000  # a screenshot, not a decompression bomb
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}  # data URL media type → what Pillow must find
STATES = ("open", "closed")
_DATA_URL = re.compile(r"data:(image/(?:png|jpeg));base64,([A-Za-z0-9+/=\s]+)")


class BadFeedback(YunyingError):
    """The ticket cannot be accepted; the message says why (422)."""


class NoTickets(YunyingError):
    """The caller administers no tickets (403)."""


@dataclass(frozen=True)
class Screenshot:
    media_type: str
    data: bytes


@dataclass(frozen=True)
class TicketView:
    id: int
    institution_id: int | None
    study_uid: str | None
    who: str
    via: str
    page: str
    text: str
    has_screenshot: bool
    state: str
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None


def parse_screenshot(data_url: str) -> Screenshot:
    """Decode and check a ``data:image/png|jpeg;base64,…`` URL; BadFeedback when it is not such an image."""
    match = _DATA_URL.fullmatch(data_url.strip())
    if match is None:
        raise BadFeedback("the screenshot must be a data URL of a PNG or JPEG image")
    media, encoded = match.groups()
    if len(encoded) > (MAX_SCREENSHOT * 4) // 3 + 8:
        raise BadFeedback(f"the screenshot exceeds {MAX_SCREENSHOT} bytes")
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadFeedback("the screenshot is not valid base64") from None
    if len(data) > MAX_SCREENSHOT:
        raise BadFeedback(f"the screenshot exceeds {MAX_SCREENSHOT} bytes")
    try:
        with Image.open(BytesIO(data)) as image:
            if image.format != FORMATS[media] or image.width * image.height > MAX_PIXELS:
                raise BadFeedback("the screenshot is not the image its data URL says")
            image.load()  # decode it all: truncated or damaged images fail here
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise BadFeedback("the screenshot is not a readable PNG or JPEG image") from None
    return Screenshot(media, data)


def submit(sessions: sessionmaker[Session], blobs: BlobStore, *, who: str, via: str, scope: Scope | None,
           study_uid: str | None, page: str, text: str, screenshot: Screenshot | None) -> int:
    """Store a ticket; the exam (if any) must be in ``scope`` (None: the sender may read no exam) → NotFound."""
    if not text.strip() or len(text) > MAX_TEXT:
        raise BadFeedback(f"the text must have 1 to {MAX_TEXT} characters")
    institution: int | None = None
    study_fk: int | None = None
    if study_uid:
        with sessions() as session:
            row = None if scope is None else session.execute(
                select(Study.id, Study.institution_fk).where(Study.study_uid == study_uid, visible_study(scope))).first()
        if row is None:
            raise NotFound("no such exam")
        study_fk, institution = row
    key = None
    if screenshot is not None:
        key = content_key(checksum(screenshot.data), "feedback")
        blobs.put(key, screenshot.data)  # durable before the row that names it
    with write_session(sessions) as session:
        ticket = FeedbackTicket(institution_fk=institution, study_fk=study_fk, who=who[:100], via=via[:100],
                                page=page[:500], text=text, screenshot_key=key,
                                screenshot_type=screenshot.media_type if screenshot else None)
        session.add(ticket)
        session.commit()
        return ticket.id


def _mine(institution_id: int | None) -> ColumnElement[bool]:
    return FeedbackTicket.institution_fk.is_(None) if institution_id is None \
        else FeedbackTicket.institution_fk == institution_id


def list_tickets(sessions: sessionmaker[Session], institution_id: int | None, state: str | None = None,
                 limit: int = 200) -> list[TicketView]:
    """Tickets of ``institution_id`` (None: the platform's), newest first."""
    query = (select(FeedbackTicket, Study.study_uid).outerjoin(Study, Study.id == FeedbackTicket.study_fk)
             .where(_mine(institution_id)))
    if state:
        query = query.where(FeedbackTicket.state == state)
    with sessions() as session:
        rows = session.execute(query.order_by(FeedbackTicket.id.desc()).limit(limit)).all()
    return [_view(t, uid) for t, uid in rows]


def _view(t: FeedbackTicket, study_uid: str | None) -> TicketView:
    def aware(m: datetime) -> datetime:
        return m.replace(tzinfo=UTC) if m.tzinfo is None else m

    return TicketView(t.id, t.institution_fk, study_uid, t.who, t.via, t.page, t.text, t.screenshot_key is not None,
                      t.state, aware(t.created_at), aware(t.closed_at) if t.closed_at else None, t.closed_by)


def _ticket(session: Session, institution_id: int | None, ticket_id: int) -> FeedbackTicket:
    ticket = session.execute(select(FeedbackTicket).where(FeedbackTicket.id == ticket_id, _mine(institution_id))
                             ).scalar_one_or_none()
    if ticket is None:
        raise NotFound("no such ticket")
    return ticket


def close(sessions: sessionmaker[Session], institution_id: int | None, ticket_id: int, by: str) -> None:
    """Close a ticket of ``institution_id``; NotFound for others' tickets."""
    with write_session(sessions) as session:
        ticket = _ticket(session, institution_id, ticket_id)
        if ticket.state != "closed":
            ticket.state, ticket.closed_at, ticket.closed_by = "closed", datetime.now(UTC), by[:100]
        session.commit()


def screenshot(sessions: sessionmaker[Session], blobs: BlobStore, institution_id: int | None,
               ticket_id: int) -> Screenshot:
    """The screenshot of a ticket of ``institution_id``; NotFound when there is none."""
    with sessions() as session:
        ticket = _ticket(session, institution_id, ticket_id)
    if ticket.screenshot_key is None or ticket.screenshot_type is None:
        raise NotFound("the ticket has no screenshot")
    return Screenshot(ticket.screenshot_type, blobs.get(ticket.screenshot_key))


# --- the administrators' use cases (audited) ---------------------------------------------------------------------


def owner_of(admin: Principal) -> int | None:
    """Whose tickets ``admin`` administers: its institution's; a platform administrator's: those naming no exam."""
    if Role.PLATFORM_ADMIN in admin.roles:
        return None
    if admin.institution_id is None:
        raise NoTickets("you administer no institution")
    return admin.institution_id


def _record(sessions: sessionmaker[Session], admin: Principal, action: str, subject: str, detail: str,
            source: str) -> None:
    audit.record(sessions, actor=admin.username, action=action, subject=subject, source=source, detail=detail,
                 role=admin.role, institution=audit.institution_code(sessions, admin.institution_id))


def tickets_for(sessions: sessionmaker[Session], admin: Principal, state: str | None, source: str) -> list[TicketView]:
    """The tickets ``admin`` administers, newest first (audited: ``feedback-read``)."""
    found = list_tickets(sessions, owner_of(admin), state)
    _record(sessions, admin, "feedback-read", ",".join(sorted({t.study_uid for t in found if t.study_uid})),
            f"{len(found)} tickets", source)
    return found


def close_for(sessions: sessionmaker[Session], admin: Principal, ticket_id: int, source: str) -> None:
    """Close one of ``admin``'s tickets (audited: ``feedback-close``); NotFound for others'."""
    close(sessions, owner_of(admin), ticket_id, admin.username)
    _record(sessions, admin, "feedback-close", "", f"ticket {ticket_id}", source)


def screenshot_for(sessions: sessionmaker[Session], blobs: BlobStore, admin: Principal, ticket_id: int,
                   source: str) -> Screenshot:
    shot = screenshot(sessions, blobs, owner_of(admin), ticket_id)
    _record(sessions, admin, "feedback-read", "", f"ticket {ticket_id} screenshot", source)
    return shot
