"""The phone DICOM viewer (``/m/viewer?study=<uid>[&series=<uid>]``, CF-4): a second page of the viewer build.

The page is ``mobile-viewer.html`` of the same Vite build as the diagnostic viewer (``yunying.web.viewer``),
so its scripts, workers and codecs are the public ``/viewer/assets/…``. Opening it needs a principal who may
read studies — a doctor's session, a verified patient's (``yy_patient``) or a share visitor's (``yy_share``,
decision 0010) — and is audited as a "view" of the study; what the page then reads goes through DICOMweb,
which checks and audits every access again.

Without credentials a browser is not sent to the doctors' sign-in page: a phone that lands here is mostly a
patient's whose session ended, and a phone has no sign-in. It gets a small page (401) that says to open the
hospital's link again, links back to the phone pages, and offers the staff sign-in as a second choice. A
doctor whose own session ended (``yy_session`` cookie still sent) goes to the sign-in page as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from yunying.api.deps import SESSION_COOKIE, ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.auth import audit
from yunying.web.render import WebRoute, local_page, page


class PhoneViewerRoute(WebRoute):
    """A page for phones: without credentials, a page pointing back to the patient's link (not the sign-in)."""

    def unauthenticated(self, request: Request, headers: Mapping[str, str] | None) -> Response:
        if SESSION_COOKIE in request.cookies:  # a doctor whose session ended signs in again
            return super().unauthenticated(request, headers)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = page(request, "phone_session.html", status=401, staff_next=local_page(target))
        for name, value in (headers or {}).items():
            if name.lower() == "set-cookie":  # an ended patient or share session: the browser forgets it
                response.headers.append(name, value)
        return response


router = APIRouter(prefix="/m", tags=["viewer"], route_class=PhoneViewerRoute)

PAGE = "mobile-viewer.html"
_UID = r"^[0-9.]{1,64}$"


@cache
def _page(folder: FsPath) -> bytes | None:
    path = folder / PAGE
    return path.read_bytes() if path.is_file() else None


@router.get("/viewer", operation_id="mobile_viewer_page",
            summary="The phone DICOM viewer on a study (touch, server-rendered fallback without WebGL)",
            response_class=Response, responses={200: {"content": {"text/html": {}}}})
def mobile_viewer_page(request: Request, archive: ArchiveDep, user: CurrentUser,
                       study: Annotated[str, Query(max_length=64, pattern=_UID, description="StudyInstanceUID to open")],
                       series: Annotated[str | None, Query(max_length=64, pattern=_UID,
                                                           description="SeriesInstanceUID to show first")] = None,
                       ) -> Response:
    audit.record(archive.sessions, actor=user.username, action="view", subject=study, source=client_address(request),
                 detail="phone viewer opened", institution=audit.institution_code(archive.sessions, user.institution_id),
                 role=user.role)
    body = _page(archive.settings.viewer_dist.resolve())
    if body is None:
        raise ProblemError(503, "Viewer not built", "the web viewer is not built: run the set-up (make setup)")
    return Response(body, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
