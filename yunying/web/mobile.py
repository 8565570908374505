"""The patient's phone pages of the cloud film (``/m/…`` and the share entry ``/s/{token}``): one HTML page.

Every path answers the same page, ``mobile.html`` of the viewer build (its scripts and styles are the viewer's
public assets under ``/viewer/assets/``); a small client-side router picks what to show from the path. The pages
are public because they show nothing by themselves: what a phone sees comes from the API, which checks the
exam token and code, the patient session (``yy_patient``) or the share session (``yy_share``), and audits every
read (docs/cloudfilm.md). No path parameter reaches the file system or the database here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from yunying.api.deps import ArchiveDep
from yunying.api.problems import ProblemError
from yunying.web.render import WebRoute

router = APIRouter(tags=["cloud film pages"], route_class=WebRoute)

#: path → operation id; every one is PUBLIC in ``yunying.api.policy`` and rate-limited as "public"
PAGES: dict[str, str] = {
    "/m": "mobile_home_page",
    "/m/open/{token}": "mobile_open_page",
    "/m/exams": "mobile_exams_page",
    "/m/exams/{study}": "mobile_exam_page",
    "/m/shares": "mobile_shares_page",
    "/m/access": "mobile_access_page",
    "/s/{token}": "share_entry_page",
}
PUBLIC_PAGES = frozenset(PAGES)
_SUMMARIES = {
    "mobile_home_page": "Phone pages: the patient's space (goes on to the exam list)",
    "mobile_open_page": "Phone pages: open an exam link from a QR code or SMS (verification by one-time code)",
    "mobile_exams_page": "Phone pages: the patient's exams at every hospital",
    "mobile_exam_page": "Phone pages: one exam (report, film, images)",
    "mobile_shares_page": "Phone pages: the patient's shares (create, list, revoke)",
    "mobile_access_page": "Phone pages: who opened the patient's exams, and blocked hospitals and doctors",
    "share_entry_page": "Phone pages: a share link (password if the share has one)",
}
Token = Annotated[str, Path(max_length=200, description="the token of the link (checked by the API, not here)")]
StudyUid = Annotated[str, Path(max_length=64, description="StudyInstanceUID (checked by the API, not here)")]


@cache
def _load(folder: FsPath) -> bytes | None:
    page = folder / "mobile.html"
    return page.read_bytes() if page.is_file() else None


def _page(archive: ArchiveDep) -> Response:
    body = _load(archive.settings.viewer_dist.resolve())
    if body is None:
        raise ProblemError(503, "Phone pages not built", "the phone pages are not built: run the set-up (make setup)")
    return Response(body, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


_HTML: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}}}}


@router.get("/m", operation_id="mobile_home_page", summary=_SUMMARIES["mobile_home_page"],
            response_class=Response, responses=_HTML)
def mobile_home_page(archive: ArchiveDep) -> Response:
    return _page(archive)


@router.get("/m/open/{token}", operation_id="mobile_open_page", summary=_SUMMARIES["mobile_open_page"],
            response_class=Response, responses=_HTML)
def mobile_open_page(archive: ArchiveDep, token: Token) -> Response:
    return _page(archive)


@router.get("/m/exams", operation_id="mobile_exams_page", summary=_SUMMARIES["mobile_exams_page"],
            response_class=Response, responses=_HTML)
def mobile_exams_page(archive: ArchiveDep) -> Response:
    return _page(archive)


@router.get("/m/exams/{study}", operation_id="mobile_exam_page", summary=_SUMMARIES["mobile_exam_page"],
            response_class=Response, responses=_HTML)
def mobile_exam_page(archive: ArchiveDep, study: StudyUid) -> Response:
    return _page(archive)


@router.get("/m/shares", operation_id="mobile_shares_page", summary=_SUMMARIES["mobile_shares_page"],
            response_class=Response, responses=_HTML)
def mobile_shares_page(archive: ArchiveDep) -> Response:
    return _page(archive)


@router.get("/m/access", operation_id="mobile_access_page", summary=_SUMMARIES["mobile_access_page"],
            response_class=Response, responses=_HTML)
def mobile_access_page(archive: ArchiveDep) -> Response:
    return _page(archive)


@router.get("/s/{token}", operation_id="share_entry_page", summary=_SUMMARIES["share_entry_page"],
            response_class=Response, responses=_HTML)
def share_entry_page(archive: ArchiveDep, token: Token) -> Response:
    return _page(archive)
