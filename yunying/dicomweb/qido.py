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
from yunying.deid import BurnedInAnnotation, Deidentifier, for_principal
from yunying.deid.resolve import originals
from yunying.deid.table import action_for
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


_UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def _anonymous_fixed(archive: Any, user: Any, deid: Deidentifier, fixed: dict[str, str]) -> dict[str, str]:
    """The path's UIDs as an anonymous share visitor names them (the replaced ones it was shown) → the originals."""
    if "StudyInstanceUID" not in fixed:
        return fixed
    found = originals(archive.sessions, scope_of(user), deid, fixed["StudyInstanceUID"], fixed.get("SeriesInstanceUID"))
    mapped = {"StudyInstanceUID": found.study}
    if found.series is not None:
        mapped["SeriesInstanceUID"] = found.series
    return mapped


def _anonymous_rows(deid: Deidentifier, base: str, rows: list[dict[str, Any]], uids: list[Any]) -> list[dict[str, Any]]:
    """Each result as an anonymous share shows it (PS3.15 basic profile, UIDs replaced as in its metadata);
    images that must not leave (burned-in annotation) are left out."""
    shown = []
    for row, found in zip(rows, uids, strict=False):
        try:
            item = deid.metadata(row)
        except BurnedInAnnotation:
            continue
        for tag in ("00120062", "00120063", "00120064", "00280303"):  # what metadata adds for a whole instance
            item.pop(tag, None)
        item["00081190"] = {"vr": "UR", "Value": [retrieve_url(base, *(deid.uid(u) for u in found))]}
        shown.append(item)
    return shown


def _search(request: Request, archive: Any, user: Any, level: str, fixed: dict[str, str]) -> JSONResponse:
    deid = for_principal(user, archive.settings, archive.blobs)
    if deid is not None:
        fixed = _anonymous_fixed(archive, user, deid, fixed)
    filters, fuzzy, limit, offset, warnings = parse_search(request, fixed)
    if deid is not None:  # an anonymous share cannot be searched by what it hides (a name would be confirmed)
        hidden = sorted(k for k, v in filters.items() if v and k not in _UID_KEYS
                        and action_for(tag_for_keyword(k) or 0) != "K")
        if hidden:
            raise ProblemError(400, "Invalid query parameter", f"an anonymous share cannot be searched by {', '.join(hidden)}")
    result = archive.query.find(scope_of(user), level, filters, fuzzy=fuzzy, limit=limit + 1, offset=offset)
    rows = result.rows[:limit]
    if len(result.rows) > limit:
        warnings.append("there are additional results that can be requested")
    base = base_url(request, archive)
    if deid is not None:
        rows = _anonymous_rows(deid, base, rows, list(result.uids))
    else:
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
