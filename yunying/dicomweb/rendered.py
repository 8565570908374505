"""Rendered resources and thumbnails (PS3.18 §9.5, §10.4.1.1.3): JPEG or PNG for display."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.archive.retrieve import StoredInstance
from yunying.auth.access import Principal
from yunying.auth.audit import record
from yunying.compose import Archive
from yunying.dicom.render import render_frame, thumbnail
from yunying.dicomweb.common import negotiate
from yunying.dicomweb.wado import refuse_withheld, route_name, visible_instances
from yunying.errors import CannotDecode

router = APIRouter(tags=["WADO-RS rendered"])
IMAGE_TYPES = ["image/jpeg", "image/png"]


def parse_window(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    try:
        parts = [float(p) for p in value.split(",")[:2]]
    except ValueError as exc:
        raise ProblemError(400, "Invalid window", "window is center,width[,function]") from exc
    if len(parts) != 2 or parts[1] <= 0:
        raise ProblemError(400, "Invalid window", "window is center,width[,function] with width > 0")
    return parts[0], parts[1]


def parse_viewport(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        w, h = (int(p) for p in value.split(",")[:2])
    except ValueError as exc:
        raise ProblemError(400, "Invalid viewport", "viewport is width,height") from exc
    if not (0 < w <= 8192 and 0 < h <= 8192):
        raise ProblemError(400, "Invalid viewport", "viewport sides must be 1..8192")
    return w, h


def _render(archive: Archive, inst: StoredInstance, frame: int, request: Request, *, thumb: bool,
            anonymous: bool = False) -> Response:
    media = negotiate(request.headers.get("accept", ""), IMAGE_TYPES, "image/jpeg")[0].media_type
    params = request.query_params
    quality = int(params.get("quality", "90")) if params.get("quality", "90").isdigit() else 90
    ds = archive.retrieve.dataset(inst)
    if anonymous:  # pixels only, no overlays are drawn; burned-in text is the one way identity could show
        refuse_withheld(ds)
    try:
        if thumb:
            viewport = parse_viewport(params.get("viewport"))
            data = thumbnail(ds, media_type=media, size=max(viewport) if viewport else 128)
        else:
            data = render_frame(ds, frame, media_type=media, window=parse_window(params.get("window")),
                                viewport=parse_viewport(params.get("viewport")), quality=max(1, min(quality, 100)))
    except CannotDecode:
        if inst.renderable:
            archive.retrieve.mark_unrenderable(inst)
        raise
    return Response(data, media_type=media)


def _representative(archive: Archive, user: Principal, study: str, series: str | None) -> tuple[StoredInstance, bool]:
    every, deid = visible_instances(archive, user, study, series)
    instances = [i for i in every if i.renderable] or every
    return instances[len(instances) // 2], deid is not None


def _one(archive: Archive, user: Principal, study: str, series: str, instance: str) -> tuple[StoredInstance, bool]:
    found, deid = visible_instances(archive, user, study, series, instance)
    return found[0], deid is not None


def _audited(request: Request, archive: Archive, user: CurrentUser, study: str, what: str) -> None:
    if not archive.audit_bursts.first_of_burst(user.username, study, route_name(request)):
        return  # per-image reads: the first of a burst is recorded (yunying.auth.audit_bursts)
    record(archive.sessions, actor=user.username, action="view", subject=study, source=client_address(request),
           detail=f"{what}; repeats within {archive.settings.audit_burst_seconds:g} s not recorded")


@router.get("/studies/{study}/series/{series}/instances/{instance}/rendered", operation_id="wado_instance_rendered",
            summary="Rendered instance (first frame)", response_class=Response)
def instance_rendered(study: str, series: str, instance: str, request: Request, archive: ArchiveDep,
                      user: CurrentUser) -> Response:
    inst, anonymous = _one(archive, user, study, series, instance)
    _audited(request, archive, user, inst.study_uid, "rendered instance")
    return _render(archive, inst, 1, request, thumb=False, anonymous=anonymous)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered",
            operation_id="wado_frame_rendered", summary="Rendered frame", response_class=Response)
def frame_rendered(study: str, series: str, instance: str, frame: int, request: Request, archive: ArchiveDep,
                   user: CurrentUser) -> Response:
    inst, anonymous = _one(archive, user, study, series, instance)
    _audited(request, archive, user, inst.study_uid, "rendered frame")
    return _render(archive, inst, frame, request, thumb=False, anonymous=anonymous)


@router.get("/studies/{study}/thumbnail", operation_id="wado_study_thumbnail", summary="Study thumbnail",
            response_class=Response)
def study_thumbnail(study: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    inst, anonymous = _representative(archive, user, study, None)
    _audited(request, archive, user, inst.study_uid, "thumbnail")
    return _render(archive, inst, 1, request, thumb=True, anonymous=anonymous)


@router.get("/studies/{study}/series/{series}/thumbnail", operation_id="wado_series_thumbnail",
            summary="Series thumbnail", response_class=Response)
def series_thumbnail(study: str, series: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    inst, anonymous = _representative(archive, user, study, series)
    _audited(request, archive, user, inst.study_uid, "thumbnail")
    return _render(archive, inst, 1, request, thumb=True, anonymous=anonymous)


@router.get("/studies/{study}/series/{series}/instances/{instance}/thumbnail", operation_id="wado_instance_thumbnail",
            summary="Instance thumbnail", response_class=Response)
def instance_thumbnail(study: str, series: str, instance: str, request: Request, archive: ArchiveDep,
                       user: CurrentUser) -> Response:
    inst, anonymous = _one(archive, user, study, series, instance)
    _audited(request, archive, user, inst.study_uid, "thumbnail")
    return _render(archive, inst, 1, request, thumb=True, anonymous=anonymous)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/thumbnail",
            operation_id="wado_frame_thumbnail", summary="Frame thumbnail", response_class=Response)
def frame_thumbnail(study: str, series: str, instance: str, frame: int, request: Request, archive: ArchiveDep,
                    user: CurrentUser) -> Response:
    inst, anonymous = _one(archive, user, study, series, instance)
    _audited(request, archive, user, inst.study_uid, "thumbnail")
    return _render(archive, inst, frame, request, thumb=True, anonymous=anonymous)
