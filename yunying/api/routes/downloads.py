"""Downloads of a study (CF-7, docs/cloudfilm.md §6): encrypted ZIP parts with a DICOMDIR.

``POST /api/studies/{study}/downloads`` packs the study now (synchronously, instance by instance) and
answers with the extraction password — the only time it is ever shown — its validity and the parts'
sizes. Parts are served only to whoever made the download (the same user, patient or share). Visitors
of an anonymous share get de-identified files (``yunying.deid``). Every creation and every part
fetched is audited as ``download``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import PROBLEM, JsonApiRoute, ProblemError
from yunying.auth.access import Principal, scope_of
from yunying.auth.audit import record
from yunying.compose import Archive
from yunying.deid import for_principal
from yunying.deid.resolve import originals
from yunying.exports.service import DownloadService, DownloadView, Expired, owner_key

router = APIRouter(tags=["downloads"], route_class=JsonApiRoute)
UID = Annotated[str, Path(pattern=r"^[0-9.]{1,64}$", description="StudyInstanceUID")]
DownloadId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such study or download, or not yours", "content": {PROBLEM: {}}},
    410: {"description": "the download has expired", "content": {PROBLEM: {}}}}


class PartPublic(BaseModel):
    n: int
    size: int
    url: str


class DownloadPublic(BaseModel):
    id: str
    state: str  # pending | ready | failed
    valid_until: datetime
    parts: list[PartPublic]
    total_size: int
    instances: int
    withheld: int  # images left out of an anonymous download (burned-in annotation)
    anonymous: bool


class DownloadCreated(DownloadPublic):
    password: str  # shown once, never stored


def service(archive: Archive) -> DownloadService:
    s = archive.settings
    return DownloadService(archive.sessions, archive.blobs, archive.retrieve, part_bytes=s.download_part_bytes,
                           valid_hours=s.download_valid_hours, workdir=s.data_dir / "tmp" / "downloads")


def _public(view: DownloadView) -> dict[str, object]:
    parts = [PartPublic(n=p.n, size=p.size, url=f"/api/downloads/{view.id}/parts/{p.n}") for p in view.parts]
    return {"id": view.id, "state": view.state, "valid_until": view.valid_until, "parts": parts,
            "total_size": view.total_size, "instances": view.instances, "withheld": view.withheld,
            "anonymous": view.anonymous}


def _audit(request: Request, archive: Archive, user: Principal, study: str, detail: str) -> None:
    record(archive.sessions, actor=user.username, action="download", subject=study, source=client_address(request),
           detail=detail, role=user.role)


@router.post("/api/studies/{study}/downloads", operation_id="downloads_create", status_code=202,
             summary="Package a study for download (encrypted ZIP parts with a DICOMDIR); the password is shown once",
             response_model=DownloadCreated, responses={404: _ERRORS[404]})
def create_download(study: UID, request: Request, archive: ArchiveDep, user: CurrentUser) -> DownloadCreated:
    scope = scope_of(user)
    deid = for_principal(user, archive.settings, archive.blobs)
    original = originals(archive.sessions, scope, deid, study).study if deid is not None else study
    created = service(archive).create(scope, original, owner_key(user), user.username, deid)
    view = created.view
    _audit(request, archive, user, original, f"download {view.id}: {view.instances} instance(s) in {len(view.parts)} "
           f"part(s), {view.total_size} bytes{', de-identified' if deid else ''}"
           f"{f', {view.withheld} withheld (burned-in annotation)' if view.withheld else ''}")
    return DownloadCreated(password=created.password, **_public(view))


@router.get("/api/downloads/{download}", operation_id="downloads_get", summary="A download: state, validity, parts",
            response_model=DownloadPublic, responses=_ERRORS)
def get_download(download: DownloadId, request: Request, archive: ArchiveDep, user: CurrentUser) -> DownloadPublic:
    try:
        view = service(archive).get(download, owner_key(user))
    except Expired as exc:
        raise ProblemError(410, "Gone", str(exc)) from exc
    _audit(request, archive, user, view.study_uid, f"download {download}: status ({view.state})")
    return DownloadPublic(**_public(view))


@router.get("/api/downloads/{download}/parts/{n}", operation_id="downloads_part", response_class=Response,
            summary="One part of a download (an AES-256 encrypted ZIP with its own DICOMDIR)",
            responses={200: {"content": {"application/zip": {}}}, **_ERRORS})
def download_part(download: DownloadId, n: int, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    try:
        view, part, path = service(archive).part(download, owner_key(user), n)
    except Expired as exc:
        raise ProblemError(410, "Gone", str(exc)) from exc
    _audit(request, archive, user, view.study_uid, f"download {download}: part {n} ({part.size} bytes)")
    filename = f"yunying-{download[:8]}-part{n}.zip"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    if path is not None:
        return FileResponse(path, media_type="application/zip", headers=headers)  # streamed from disk
    return Response(archive.blobs.get(part.key), media_type="application/zip", headers=headers)
