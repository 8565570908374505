"""Viewer annotations (VW-5): ``/api/studies/{study}/annotations`` — the caller's own, per study.

``GET`` reads the caller's document (empty, version 0, when none), ``PUT`` replaces it, ``DELETE``
removes it, ``GET …/annotations/sr`` exports it as a DICOM Comprehensive SR (``application/dicom``).

Permissions: all four need ``study:read`` (``yunying.api.policy``). Writing needs no more: a
document belongs to its author alone, is never shown to anyone else and never changes the study's
instances (the SR is built on demand, not stored), so it is the reader's own note on what they may
read — like a bookmark — not a change to the study (``study:store``) or a report (``report:write``).
The study must be visible to the caller (``yunying.index.access``); otherwise 404, as for DICOMweb.

Concurrency: every document has a ``version``; a ``PUT`` or ``DELETE`` names the version it was
based on (``If-Match: "<version>"`` or the body's ``version``; 0 for a first save) and answers 409
when the stored one differs. Responses carry ``ETag: "<version>"``. Every read, write, delete and
export is audited (actions ``annotations-read``, ``-write``, ``-delete``, ``-export``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from io import BytesIO
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydicom import dcmwrite
from starlette.concurrency import run_in_threadpool

from yunying.annotations import sr as annotation_sr
from yunying.annotations import store
from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import PROBLEM, JsonApiRoute, ProblemError
from yunying.auth import audit
from yunying.auth.access import Principal, scope_of
from yunying.compose import Archive

router = APIRouter(prefix="/api/studies", tags=["annotations"], route_class=JsonApiRoute)

_UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
Uid = Annotated[str, Field(min_length=1, max_length=64, pattern=_UID_PATTERN)]
StudyUidPath = Annotated[str, Path(min_length=1, max_length=64, pattern=_UID_PATTERN)]
Frame = Annotated[int, Field(ge=1, le=1_000_000, description="frame number (1-based) of a multi-frame instance")]


def _finite(point: list[float]) -> list[float]:
    if not all(math.isfinite(v) for v in point):
        raise ValueError("coordinates must be finite numbers")
    return point


Point = Annotated[list[float], Field(min_length=2, max_length=3), AfterValidator(_finite)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Measurement(_Strict):
    """One value the viewer computed (length, area, angle, mean …)."""

    name: Annotated[str, Field(min_length=1, max_length=32, description="length, area, angle, mean, stddev, min, max …")]
    value: float
    unit: Annotated[str, Field(max_length=16, description="mm, mm2, deg, HU, px …")] = ""


class AnnotationItem(_Strict):
    """One annotation of the viewer: a tool's drawing on one image, with its text and values."""

    uid: Annotated[str, Field(min_length=1, max_length=64, description="the viewer's id of the annotation")]
    tool: Annotated[str, Field(min_length=1, max_length=64, description="the viewer tool that drew it (Length, ArrowAnnotate …)")]
    sop_instance_uid: Uid | None = Field(None, description="the image it is drawn on")
    frame: Frame | None = None
    points: Annotated[list[Point], Field(max_length=5000, description="image coordinates (column, row)")] = []
    world_points: Annotated[list[Point], Field(max_length=5000, description="patient coordinates (mm)")] = []
    text: Annotated[str | None, Field(max_length=1024)] = None
    measurements: Annotated[list[Measurement], Field(max_length=32)] = []
    state: dict[str, Any] | None = Field(None, description="the viewer's own representation, stored as sent (to redraw it)")


class KeyImageItem(_Strict):
    sop_instance_uid: Uid
    frame: Frame | None = None


class AnnotationsIn(_Strict):
    """The caller's whole document for the study (replaces the stored one)."""

    version: Annotated[int, Field(ge=0, description="the version this change is based on (0: first save)")] = 0
    annotations: Annotated[list[AnnotationItem], Field(max_length=2000)] = []
    key_images: Annotated[list[KeyImageItem], Field(max_length=2000)] = []


class AnnotationsOut(BaseModel):
    study_uid: str
    version: int = Field(description="0: nothing saved yet")
    annotations: list[dict[str, Any]]
    key_images: list[KeyImageItem]
    created_at: datetime | None = Field(description="UTC")
    updated_at: datetime | None = Field(description="UTC")


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {400: "Body is not JSON", 401: "Unauthorized", 403: "Forbidden", 404: "No such study (or not visible)",
                    409: "The annotations changed meanwhile (version conflict)", 422: "Invalid request"}
    schema = Problem.model_json_schema()
    return {code: {"description": descriptions[code], "content": {PROBLEM: {"schema": schema}}} for code in codes}


def _owner(user: Principal) -> store.Owner:
    if user.user_id is None:  # a DICOM peer or a machine without a user: nobody to own a document
        raise ProblemError(403, "Forbidden", "annotations belong to a user")
    return store.Owner(user.user_id, user.institution_id)


def _audit(archive: Archive, user: Principal, request: Request, action: str, study_uid: str, outcome: str = "success",
           detail: str = "") -> None:
    audit.record(archive.sessions, actor=user.username, action=action, subject=study_uid, source=client_address(request),
                 outcome=outcome, detail=detail, role=user.role,
                 institution=audit.institution_code(archive.sessions, user.institution_id))


def _out(doc: store.Document) -> AnnotationsOut:
    return AnnotationsOut(study_uid=doc.study_uid, version=doc.version, annotations=doc.annotations,
                          key_images=[KeyImageItem(sop_instance_uid=k.sop_instance_uid, frame=k.frame) for k in doc.key_images],
                          created_at=doc.created_at, updated_at=doc.updated_at)


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def _expected(if_match: str | None, fallback: int) -> int:
    if if_match is None:
        return fallback
    found = _IF_MATCH.match(if_match)
    if found is None:
        raise ProblemError(422, "Invalid request", 'If-Match must be the document\'s ETag, "<version>"')
    return int(found.group(1))


IfMatch = Annotated[str | None, Header(description='the ETag ("<version>") the change is based on; overrides the body version')]


@router.get("/{study}/annotations", operation_id="annotations_get", response_model=AnnotationsOut,
            summary="The caller's annotations and key images of a study", responses=_problems(401, 403, 404, 422))
def get_annotations(study: StudyUidPath, request: Request, response: Response, archive: ArchiveDep,
                    user: CurrentUser) -> AnnotationsOut:
    doc = store.get(archive.sessions, scope_of(user), _owner(user), study)
    _audit(archive, user, request, "annotations-read", study, detail=f"version {doc.version}")
    response.headers.update(_etag(doc.version))
    return _out(doc)


@router.put("/{study}/annotations", operation_id="annotations_put", response_model=AnnotationsOut,
            summary="Replace the caller's annotations and key images of a study",
            responses=_problems(400, 401, 403, 404, 409, 422))
def put_annotations(study: StudyUidPath, body: AnnotationsIn, request: Request, response: Response, archive: ArchiveDep,
                    user: CurrentUser, if_match: IfMatch = None) -> AnnotationsOut:
    expected = _expected(if_match, body.version)
    annotations = [a.model_dump(mode="json") for a in body.annotations]
    keys = [store.KeyImage(k.sop_instance_uid, k.frame) for k in body.key_images]
    try:
        doc = store.put(archive.sessions, scope_of(user), _owner(user), study, annotations, keys, expected)
    except store.VersionConflict as exc:
        _audit(archive, user, request, "annotations-write", study, "conflict", f"based on {expected}, at {exc.current}")
        raise ProblemError(409, "Conflict", str(exc), headers=_etag(exc.current), current_version=exc.current) from exc
    except store.UnknownReference as exc:
        raise ProblemError(422, "Invalid request", str(exc)) from exc
    _audit(archive, user, request, "annotations-write", study,
           detail=f"version {doc.version}: {len(doc.annotations)} annotation(s), {len(doc.key_images)} key image(s)")
    response.headers.update(_etag(doc.version))
    return _out(doc)


@router.delete("/{study}/annotations", operation_id="annotations_delete", status_code=204,
               summary="Delete the caller's annotations and key images of a study", responses=_problems(401, 403, 404, 409, 422))
def delete_annotations(study: StudyUidPath, request: Request, archive: ArchiveDep, user: CurrentUser,
                       if_match: IfMatch = None) -> Response:
    scope, owner = scope_of(user), _owner(user)
    if if_match is not None:
        current = store.get(archive.sessions, scope, owner, study).version
        if current != _expected(if_match, 0):
            raise ProblemError(409, "Conflict", f"the annotations are at version {current}", headers=_etag(current),
                               current_version=current)
    existed = store.delete(archive.sessions, scope, owner, study)
    _audit(archive, user, request, "annotations-delete", study, detail="deleted" if existed else "there were none")
    return Response(status_code=204)


def _sr_bytes(archive: Archive, user: Principal, study_uid: str) -> tuple[bytes, int]:
    scope = scope_of(user)
    doc = store.get(archive.sessions, scope, _owner(user), study_uid)
    instances = archive.retrieve.list(scope, study_uid)
    refs = {i.sop_uid: annotation_sr.Reference(i.sop_uid, i.sop_class_uid, i.series_uid) for i in instances}
    used = store.referenced_instances(doc.annotations, doc.key_images)
    # patient and study attributes come from one real instance: a referenced one if any
    first = next((i for i in instances if i.sop_uid in used), instances[0])
    report = annotation_sr.build_sr(doc, refs, archive.retrieve.dataset(first),
                                    store.institution_name(archive.sessions, user.institution_id))
    buffer = BytesIO()
    dcmwrite(buffer, report, enforce_file_format=True)
    return buffer.getvalue(), doc.version


@router.get("/{study}/annotations/sr", operation_id="annotations_sr", response_class=Response,
            summary="The caller's annotations as a DICOM Comprehensive SR (built on demand, not stored)",
            responses={200: {"content": {"application/dicom": {}}, "description": "a DICOM SR instance (Part 10 file)"},
                       **_problems(401, 403, 404, 422)})
async def export_sr(study: StudyUidPath, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    data, version = await run_in_threadpool(_sr_bytes, archive, user, study)
    await run_in_threadpool(_audit, archive, user, request, "annotations-export", study,
                            "success", f"DICOM SR of version {version}")
    return Response(data, media_type="application/dicom",
                    headers={"Content-Disposition": f'attachment; filename="annotations-{study}.dcm"'})
