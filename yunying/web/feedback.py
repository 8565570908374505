"""The feedback tickets page (``/ui/admin/feedback``, CF-10): an administrator's institution's tickets.

Hospital administrators see their institution's tickets (those naming one of its exams), platform
administrators the tickets naming no exam; both may close them. Reading and closing are audited by
the same use cases as the API (``yunying.feedback.service``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.feedback import service
from yunying.web.render import WebRoute, page, redirect

router = APIRouter(prefix="/admin", route_class=WebRoute)


@router.get("/feedback", operation_id="ui_feedback", summary="Feedback tickets the caller administers",
            response_class=HTMLResponse)
async def tickets(request: Request, archive: ArchiveDep, user: CurrentUser,
                  state: Annotated[Literal["open", "closed", ""], Query()] = "open") -> HTMLResponse:
    try:
        found = await run_in_threadpool(service.tickets_for, archive.sessions, user, state or None,
                                        client_address(request))
    except service.NoTickets as exc:
        raise ProblemError(403, "Forbidden", "you are not allowed to do this") from exc
    return page(request, "feedback.html", tickets=found, state=state)


@router.post("/feedback/{ticket_id}", operation_id="ui_feedback_close", summary="Close a ticket (action=close)",
             response_class=HTMLResponse, responses={303: {"description": "done: see the list page in Location"}})
async def close(request: Request, archive: ArchiveDep, user: CurrentUser, ticket_id: Annotated[int, Path(ge=1, le=2**53)],
                action: Annotated[str, Form(max_length=32)] = "") -> Response:
    if action != "close":
        raise ProblemError(400, "Bad Request", "unknown action")
    try:
        await run_in_threadpool(service.close_for, archive.sessions, user, ticket_id, client_address(request))
    except service.NoTickets as exc:
        raise ProblemError(403, "Forbidden", "you are not allowed to do this") from exc
    return redirect("/ui/admin/feedback", "ticket-closed")
