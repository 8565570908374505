"""WADO-URI (PS3.18 §9): ``/wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydicom.uid import ExplicitVRLittleEndian

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.auth.access import scope_of
from yunying.auth.audit import record
from yunying.dicom.render import render_frame

router = APIRouter(tags=["WADO-URI"])


@router.get("/wado", operation_id="wado_uri", summary="WADO-URI retrieval of one object", response_class=Response)
def wado_uri(
    request: Request,
    archive: ArchiveDep,
    user: CurrentUser,
    requestType: str = Query(..., description="must be WADO"),  # noqa: N803 - names fixed by PS3.18
    studyUID: str = Query(...),  # noqa: N803
    seriesUID: str = Query(...),  # noqa: N803
    objectUID: str = Query(...),  # noqa: N803
    contentType: str = Query("image/jpeg"),  # noqa: N803
    transferSyntax: str | None = Query(None),  # noqa: N803
    frameNumber: int = Query(1, ge=1),  # noqa: N803
    windowCenter: float | None = Query(None),  # noqa: N803
    windowWidth: float | None = Query(None, gt=0),  # noqa: N803
    rows: int | None = Query(None, ge=1, le=8192),
    columns: int | None = Query(None, ge=1, le=8192),
) -> Response:
    if requestType != "WADO":
        raise ProblemError(400, "Invalid requestType", "requestType must be WADO")
    inst = archive.retrieve.list(scope_of(user), studyUID, seriesUID, objectUID)[0]
    record(archive.sessions, actor=user.username, action="retrieve", subject=studyUID, source=client_address(request),
           detail=f"WADO-URI {contentType}")
    media = contentType.split(",")[0].strip().lower()
    if media == "application/dicom":
        data, _ = archive.retrieve.read_as(inst, transferSyntax or ExplicitVRLittleEndian)
        return Response(data, media_type="application/dicom")
    if media not in ("image/jpeg", "image/png"):
        raise ProblemError(406, "Not Acceptable", "contentType must be application/dicom, image/jpeg or image/png")
    window = (windowCenter, windowWidth) if windowCenter is not None and windowWidth is not None else None
    viewport = (columns or rows or 0, rows or columns or 0) if (rows or columns) else None
    ds = archive.retrieve.dataset(inst)
    return Response(render_frame(ds, frameNumber, media_type=media, window=window, viewport=viewport), media_type=media)
