"""QIDO-RS (PS3.18 §10.6): search for studies, series and instances."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.auth.access import scope_of
from yunying.auth.audit import record
from yunying.dicomweb.common import DICOM_JSON, base_url, retrieve_url, warning
from yunying.index.queries import MATCHING_KEYS

router = APIRouter(tags=["QIDO-RS"])
MAX_LIMIT = 1000
_CONTROL = {"limit", "offset", "fuzzymatching", "includefield"}


def _keyword(name: str) -> str:
    if len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name):
        keyword = keyword_for_tag(int(name, 16))
        if keyword:
            return keyword
    if tag_for_keyword(name) is not None:
        return name
    raise ProblemError(400, "Invalid query parameter", f"{name!r} is neither a DICOM keyword nor a tag")


def parse_search(request: Request, fixed: dict[str, str]) -> tuple[dict[str, str], bool, int, int, list[str]]:
    """Query string → (filters, fuzzy, limit, offset, warnings)."""
    filters: dict[str, list[str]] = {}
    warnings: list[str] = []
    fuzzy = False
    limit, offset = MAX_LIMIT, 0
    for name, value in request.query_params.multi_items():
        if any(ord(c) < 0x20 and c not in "\t" for c in value):  # NUL and other controls: never valid DICOM text
            raise ProblemError(400, "Invalid query parameter", f"{name} contains control characters")
        if name == "limit" or name == "offset":
            try:
                number = int(value)
            except ValueError as exc:
                raise ProblemError(400, "Invalid query parameter", f"{name} must be a non-negative integer") from exc
            if number < 0:
                raise ProblemError(400, "Invalid query parameter", f"{name} must be a non-negative integer")
            if name == "limit":
                if number > MAX_LIMIT:
                    warnings.append(f"limit {number} reduced to {MAX_LIMIT}")
                limit = min(number, MAX_LIMIT) or MAX_LIMIT
            else:
                offset = number
        elif name == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise ProblemError(400, "Invalid query parameter", "fuzzymatching must be true or false")
            fuzzy = value.lower() == "true"
        elif name == "includefield":
            for item in value.split(","):
                if item and item != "all":
                    _keyword(item)
        else:
            keyword = _keyword(name)
            if keyword not in MATCHING_KEYS:
                warnings.append(f"matching on {keyword} is not supported; parameter ignored")
                continue
            filters.setdefault(keyword, []).append(value)
    joined: dict[str, str] = {}
    for keyword, values in filters.items():
        vr = dictionary_VR(keyword)
        joined[keyword] = "\\".join(v.replace(",", "\\") if vr in ("UI", "CS") else v for v in values)
    joined.update(fixed)
    return joined, fuzzy, limit, offset, warnings


def _search(request: Request, archive: Any, user: Any, level: str, fixed: dict[str, str]) -> JSONResponse:
    filters, fuzzy, limit, offset, warnings = parse_search(request, fixed)
    result = archive.query.find(scope_of(user), level, filters, fuzzy=fuzzy, limit=limit + 1, offset=offset)
    rows = result.rows[:limit]
    if len(result.rows) > limit:
        warnings.append("there are additional results that can be requested")
    base = base_url(request, archive)
    for row, uids in zip(rows, result.uids, strict=False):
        row["00081190"] = {"vr": "UR", "Value": [retrieve_url(base, *uids)]}
    # A search inside one study is an access to that study: it is the subject; otherwise the query is.
    subject = fixed.get("StudyInstanceUID") or f"QIDO {level}"
    record(archive.sessions, actor=user.username, action="query", subject=subject,
           source=client_address(request), detail=f"{len(rows)} result(s); keys {sorted(k for k, v in filters.items() if v)}")
    headers = {"Warning": ", ".join(warning(w) for w in warnings)} if warnings else None
    return JSONResponse([dict(sorted(r.items())) for r in rows], media_type=DICOM_JSON, headers=headers)


@router.get("/studies", operation_id="qido_studies", summary="Search for studies")
def search_studies(request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return _search(request, archive, user, "STUDY", {})


@router.get("/series", operation_id="qido_series", summary="Search for series (all studies)")
def search_all_series(request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return _search(request, archive, user, "SERIES", {})


@router.get("/studies/{study}/series", operation_id="qido_study_series", summary="Search for series of a study")
def search_series(study: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return _search(request, archive, user, "SERIES", {"StudyInstanceUID": study})


@router.get("/instances", operation_id="qido_instances", summary="Search for instances (all studies)")
def search_all_instances(request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return _search(request, archive, user, "IMAGE", {})


@router.get("/studies/{study}/instances", operation_id="qido_study_instances", summary="Search for instances of a study")
def search_study_instances(study: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return _search(request, archive, user, "IMAGE", {"StudyInstanceUID": study})


@router.get("/studies/{study}/series/{series}/instances", operation_id="qido_series_instances",
            summary="Search for instances of a series")
def search_series_instances(study: str, series: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return _search(request, archive, user, "IMAGE", {"StudyInstanceUID": study, "SeriesInstanceUID": series})
