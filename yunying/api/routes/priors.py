"""The patient's other studies (priors) for the viewer: ``GET /api/studies/{study}/priors``.

QIDO-RS can only match a Patient ID, which differs between hospitals. This answers with every other study of
the same patient the caller may see — the study's own patient record and the records at other institutions
with the same resident ID card number (``yunying.archive.patients.prior_studies``) — as DICOM JSON study
results (like QIDO-RS), newest first. Not visible or not there: 404. The query is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import PROBLEM, JsonApiRoute, ProblemError
from yunying.archive.patients import prior_studies
from yunying.auth import audit
from yunying.auth.access import scope_of
from yunying.errors import NotFound

router = APIRouter(prefix="/api/studies", tags=["viewer"], route_class=JsonApiRoute)
UID = Annotated[str, Path(pattern=r"^[0-9.]{1,64}$", description="StudyInstanceUID")]


@router.get("/{study}/priors", operation_id="study_priors",
            summary="Other studies of the same patient the caller may see, across hospitals (DICOM JSON, newest first)",
            response_class=JSONResponse,
            responses={200: {"content": {"application/dicom+json": {}}},
                       404: {"description": "no such study, or not visible", "content": {PROBLEM: {}}}})
async def study_priors(study: UID, request: Request, archive: ArchiveDep, user: CurrentUser,
                       limit: Annotated[int, Query(ge=1, le=500)] = 200) -> JSONResponse:
    try:
        found: list[dict[str, Any]] = await run_in_threadpool(prior_studies, archive.sessions, scope_of(user), study, limit)
    except NotFound as exc:
        raise ProblemError(404, "Not Found", "no such study") from exc
    institution = await run_in_threadpool(audit.institution_code, archive.sessions, user.institution_id)
    await run_in_threadpool(audit.record, archive.sessions, actor=user.username, action="query", subject=study,
                            source=client_address(request), detail=f"priors: {len(found)} other studies",
                            institution=institution, role=user.role)
    return JSONResponse(found, media_type="application/dicom+json")
