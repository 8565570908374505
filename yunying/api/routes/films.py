"""Electronic film sheets of a study (CF-1, CF-5, CF-12; docs/cloudfilm.md §4).

Any principal with ``study:read`` and the study in its scope (doctor, patient, share visitor) reads
the film; staff (a signed-in user, not a patient or visitor) may queue a new composition. A study
outside the scope answers 404 like a missing one. Every call is audited with the study as subject.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import PROBLEM, JsonApiRoute, ProblemError
from yunying.auth import audit
from yunying.auth.access import Principal, scope_of
from yunying.compose import Archive
from yunying.errors import NotFound
from yunying.film import service

router = APIRouter(prefix="/api/studies", tags=["films"], route_class=JsonApiRoute)
UID = Annotated[str, Path(pattern=r"^[0-9.]{1,64}$", description="StudyInstanceUID")]
SheetNumber = Annotated[int, Path(ge=1, le=1000, description="sheet number, 1-based")]


class FilmWindow(BaseModel):
    center: float
    width: float


class FilmCell(BaseModel):
    series_uid: str
    sop_uid: str
    frame: int = Field(description="1-based frame of the instance")
    key: bool = Field(description="a key image (shown first)")
    row: int
    col: int
    box: list[int] = Field(description="x, y, width, height of the image's pixels on the sheet PNG")
    series_number: int | None
    instance_number: int | None
    window: FilmWindow | None = Field(description="the window applied; null: the image's VOI LUT or value range")
    voi: str = Field(description="window (the image's own) | preset (by modality/body part) | lut | auto")
    spacing: str | None = Field(description="pixel | imager (scale bar at the detector) | null (no scale bar)")


class FilmSheetPublic(BaseModel):
    n: int
    png: str = Field(description="URL of the sheet's PNG")
    pdf: str = Field(description="URL of the PDF of all sheets")
    width: int
    height: int
    layout: str = Field(description="columns x rows, e.g. 4x5")
    window: FilmWindow | None = Field(description="the window of the sheet's first image")
    images: list[FilmCell]
    size: int = Field(description="bytes of the PNG")


class FilmHeader(BaseModel):
    institution: str
    patient_name: str
    sex: str
    age: str
    patient_id: str
    date: str
    modality: str
    description: str
    accession: str


class FilmList(BaseModel):
    state: str = Field(description="ready | pending (queued or being composed) | none")
    version: int | None = None
    updating: bool = Field(False, description="a newer version is queued or being composed")
    header: FilmHeader | None = None
    pdf_size: int | None = None
    sheets: list[FilmSheetPublic]


class FilmRequested(BaseModel):
    state: str = "pending"
    job: int


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 422: "Invalid request"}
    return {code: {"description": text[code], "content": {PROBLEM: {}}} for code in codes}


def _audit(archive: Archive, user: Principal, request: Request, study: str, detail: str, outcome: str = "success",
           action: str = "view") -> None:
    audit.record(archive.sessions, actor=user.username, action=action, subject=study, source=client_address(request),
                 outcome=outcome, detail=detail, role=user.role,
                 institution=audit.institution_code(archive.sessions, user.institution_id))


def _list(archive: Archive, user: Principal, request: Request, study: str) -> FilmList:
    try:
        films = service.film_set(archive.sessions, scope_of(user), study)
    except NotFound:
        _audit(archive, user, request, study, "film", "not-found")
        raise
    _audit(archive, user, request, study, f"film: {films.state}, {len(films.sheets)} sheets")
    base = f"/api/studies/{study}/films"
    sheets = [FilmSheetPublic(n=s.n, png=f"{base}/{s.n}.png", pdf=f"{base}.pdf", width=s.width, height=s.height,
                              layout=s.layout, window=FilmWindow.model_validate(s.window) if s.window else None,
                              images=[FilmCell.model_validate(i) for i in s.images], size=s.size) for s in films.sheets]
    return FilmList(state=films.state, version=films.version, updating=films.updating,
                    header=FilmHeader.model_validate(films.header) if films.header else None,
                    pdf_size=films.pdf_size or None, sheets=sheets)


@router.get("/{study}/films", operation_id="films_list", response_model=FilmList,
            summary="The study's film: state, sheets with their images and layout", responses=_problems(401, 403, 404, 422))
async def list_films(study: UID, request: Request, archive: ArchiveDep, user: CurrentUser) -> FilmList:
    return await run_in_threadpool(_list, archive, user, request, study)


def _png(archive: Archive, user: Principal, request: Request, study: str, n: int) -> bytes:
    try:
        data = service.sheet_png(archive.sessions, archive.blobs, scope_of(user), study, n)
    except NotFound:
        _audit(archive, user, request, study, f"film sheet {n}", "not-found")
        raise
    _audit(archive, user, request, study, f"film sheet {n}")
    return data


@router.get("/{study}/films/{n}.png", operation_id="films_png", summary="One film sheet as PNG",
            responses={200: {"content": {"image/png": {}}, "description": "the sheet"}, **_problems(401, 403, 404, 422)})
async def film_png(study: UID, n: SheetNumber, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    data = await run_in_threadpool(_png, archive, user, request, study, n)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, no-cache"})


def _pdf(archive: Archive, user: Principal, request: Request, study: str) -> bytes:
    try:
        data = service.film_pdf(archive.sessions, archive.blobs, scope_of(user), study)
    except NotFound:
        _audit(archive, user, request, study, "film PDF", "not-found")
        raise
    _audit(archive, user, request, study, "film PDF")
    return data


@router.get("/{study}/films.pdf", operation_id="films_pdf", summary="Every film sheet in one PDF (14 x 17 inch pages)",
            responses={200: {"content": {"application/pdf": {}}, "description": "the film"}, **_problems(401, 403, 404, 422)})
async def film_pdf(study: UID, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    data = await run_in_threadpool(_pdf, archive, user, request, study)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="film.pdf"', "Cache-Control": "private, no-cache"})


def _compose(archive: Archive, user: Principal, request: Request, study: str) -> FilmRequested:
    if user.user_id is None:  # patients, share visitors and DICOM peers read films; only staff ask for new ones
        raise ProblemError(403, "Forbidden", "you are not allowed to do this")
    try:
        job = service.request(archive.sessions, scope_of(user), study, archive.film)
    except NotFound:
        _audit(archive, user, request, study, "film requested", "not-found", action="film-request")
        raise
    _audit(archive, user, request, study, f"film requested (job {job})", action="film-request")
    return FilmRequested(job=job)


@router.post("/{study}/films", operation_id="films_compose", response_model=FilmRequested, status_code=202,
             summary="Queue a new composition of the study's film (staff)", responses=_problems(401, 403, 404, 422))
async def compose_film(study: UID, request: Request, archive: ArchiveDep, user: CurrentUser) -> FilmRequested:
    return await run_in_threadpool(_compose, archive, user, request, study)
