"""Feedback tickets (CF-10, docs/cloudfilm.md §7): anyone signed in sends one; administrators read and close.

``POST /api/feedback`` takes a JSON body up to ``LARGER_BODIES`` (a 2 MB screenshot as base64); callers
without an account (patients, share visitors) may send ``feedback_per_hour`` tickets an hour each (a
row-based counter shared by every node). Hospital administrators see their institution's tickets,
platform administrators the tickets that name no exam. Every call is audited.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import JsonApiRoute, ProblemError
from yunying.api.routes.reports import _problems
from yunying.auth import audit, throttle
from yunying.auth.access import Permission, Principal, scope_of
from yunying.compose import Archive
from yunying.feedback import service
from yunying.feedback.service import MAX_SCREENSHOT, MAX_TEXT

router = APIRouter(prefix="/api/feedback", tags=["feedback"], route_class=JsonApiRoute)
TicketId = Annotated[int, Path(ge=1, le=2**53)]
T = TypeVar("T")


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    study: Annotated[str, Field(max_length=64, pattern=r"^[0-9.]+$")] | None = Field(
        default=None, description="Study Instance UID of the exam the ticket is about")
    page: Annotated[str, Field(max_length=500)] = ""
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    screenshot: Annotated[str, Field(max_length=(MAX_SCREENSHOT * 4) // 3 + 64)] | None = Field(
        default=None, description=f"data:image/png;base64,… or data:image/jpeg;base64,… (at most {MAX_SCREENSHOT} bytes)")


class FeedbackCreated(BaseModel):
    id: int


class TicketPublic(BaseModel):
    id: int
    study_uid: str | None
    who: str
    via: str
    page: str
    text: str
    screenshot: str | None = Field(description="URL of the screenshot")
    state: str
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None


class TicketList(BaseModel):
    tickets: list[TicketPublic] = Field(description="newest first")


def _record(archive: Archive, user: Principal, request: Request, action: str, subject: str, detail: str,
            outcome: str = "success") -> None:
    audit.record(archive.sessions, actor=user.username, action=action, subject=subject, source=client_address(request),
                 outcome=outcome, detail=detail, role=user.role,
                 institution=audit.institution_code(archive.sessions, user.institution_id))


def _throttle(archive: Archive, user: Principal) -> None:
    """Patients and share visitors (no account): ``feedback_per_hour`` tickets an hour each."""
    if user.user_id is not None:
        return
    who = hashlib.sha256(f"{user.username}\0{user.extra.get('identity', '')}".encode()).hexdigest()
    verdict = throttle.hit(archive.sessions, f"feedback:{who}", archive.settings.feedback_per_hour, window_s=3600)
    if not verdict.allowed:
        raise ProblemError(429, "Too Many Requests", "too many tickets: try again later",
                           headers={"Retry-After": str(verdict.retry_after_s)})


def _create(archive: Archive, user: Principal, request: Request, body: FeedbackCreate) -> int:
    _throttle(archive, user)
    try:
        shot = service.parse_screenshot(body.screenshot) if body.screenshot else None
        ticket = service.submit(archive.sessions, archive.blobs, who=user.username, via=user.via,
                                scope=scope_of(user) if user.can(Permission.STUDY_READ) else None,
                                study_uid=body.study, page=body.page, text=body.text, screenshot=shot)
    except service.BadFeedback as exc:
        raise ProblemError(422, "Invalid request", str(exc)) from exc
    _record(archive, user, request, "feedback", body.study or "", f"ticket {ticket}")
    return ticket


@router.post("", operation_id="feedback_create", response_model=FeedbackCreated, status_code=201,
             summary="Send a feedback ticket (patient, share visitor or staff)",
             responses={**_problems(400, 401, 403, 404, 422), 413: {"description": "body too large"},
                        429: {"description": "too many tickets (Retry-After)"}})
async def create_ticket(body: FeedbackCreate, request: Request, archive: ArchiveDep,
                        user: CurrentUser) -> FeedbackCreated:
    return FeedbackCreated(id=await run_in_threadpool(_create, archive, user, request, body))


def public(t: service.TicketView) -> TicketPublic:
    return TicketPublic(id=t.id, study_uid=t.study_uid, who=t.who, via=t.via, page=t.page, text=t.text,
                        screenshot=f"/api/feedback/{t.id}/screenshot" if t.has_screenshot else None, state=t.state,
                        created_at=t.created_at, closed_at=t.closed_at, closed_by=t.closed_by)


def _admin(call: Callable[[], T]) -> T:
    try:
        return call()
    except service.NoTickets as exc:
        raise ProblemError(403, "Forbidden", "you are not allowed to do this") from exc


def _list(archive: Archive, user: Principal, request: Request, state: str | None) -> TicketList:
    tickets = _admin(lambda: service.tickets_for(archive.sessions, user, state, client_address(request)))
    return TicketList(tickets=[public(t) for t in tickets])


@router.get("", operation_id="feedback_list", response_model=TicketList,
            summary="The feedback tickets the caller administers", responses=_problems(400, 401, 403))
async def list_tickets(request: Request, archive: ArchiveDep, user: CurrentUser,
                       state: Annotated[Literal["open", "closed"] | None, Query()] = None) -> TicketList:
    return await run_in_threadpool(_list, archive, user, request, state)


def close_ticket(archive: Archive, user: Principal, request: Request, ticket_id: int) -> None:
    _admin(lambda: service.close_for(archive.sessions, user, ticket_id, client_address(request)))


@router.post("/{ticket_id}/close", operation_id="feedback_close", status_code=204, summary="Close a ticket",
             responses=_problems(401, 403, 404))
async def close(ticket_id: TicketId, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    await run_in_threadpool(close_ticket, archive, user, request, ticket_id)
    return Response(status_code=204)


def _screenshot(archive: Archive, user: Principal, request: Request, ticket_id: int) -> service.Screenshot:
    return _admin(lambda: service.screenshot_for(archive.sessions, archive.blobs, user, ticket_id,
                                                 client_address(request)))


@router.get("/{ticket_id}/screenshot", operation_id="feedback_screenshot", summary="A ticket's screenshot",
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "the image"},
                       **_problems(401, 403, 404)})
async def screenshot(ticket_id: TicketId, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    shot = await run_in_threadpool(_screenshot, archive, user, request, ticket_id)
    return Response(shot.data, media_type=shot.media_type, headers={"Cache-Control": "private, no-store"})
