"""The phone DICOM viewer (``/m/viewer?study=<uid>[&series=<uid>]``, CF-4): a second page of the viewer build.

The page is ``mobile-viewer.html`` of the same Vite build as the diagnostic viewer (``yunying.web.viewer``),
so its scripts, workers and codecs are the public ``/viewer/assets/…``. Opening it needs a principal who may
read studies — today a doctor's session; patients and share visitors get the same through their own
sessions (decision 0010) — and is audited as a "view" of the study; what the page then reads goes through
DICOMweb, which checks and audits every access again.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.auth import audit
from yunying.web.render import WebRoute

router = APIRouter(prefix="/m", tags=["viewer"], route_class=WebRoute)

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
