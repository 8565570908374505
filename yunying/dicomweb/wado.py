"""WADO-RS (PS3.18 §10.4): instances, metadata, frames and bulk data."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydicom.uid import ExplicitVRLittleEndian

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.archive.retrieve import StoredInstance
from yunying.auth.access import Principal, scope_of
from yunying.auth.audit import record
from yunying.compose import Archive
from yunying.deid import BurnedInAnnotation, Deidentifier, for_principal
from yunying.deid.profile import refuse_burned_in
from yunying.deid.resolve import originals
from yunying.deid.table import action_for
from yunying.dicom.frames import get_frames
from yunying.dicom.uids import TRANSFER_SYNTAXES
from yunying.dicomweb import multipart
from yunying.dicomweb.common import DICOM_JSON, base_url, negotiate
from yunying.errors import CannotDecode, NotAcceptable, YunyingError

router = APIRouter(tags=["WADO-RS"])
log = logging.getLogger(__name__)
DICOM = "application/dicom"
OCTET = "application/octet-stream"
_READ_AHEAD = 4
FRAME_TYPES = sorted({OCTET, *(ts.media_type for ts in TRANSFER_SYNTAXES.values())})


def route_name(request: Request) -> str:
    """The route's handler name: per-image coalescing keys on the kind of request, not on the image."""
    return str(getattr(request.scope.get("route"), "name", request.url.path))


def _audit(request: Request, archive: Archive, user: CurrentUser, what: str, count: int, how: str,
           per_image: bool = False) -> None:
    if per_image and not archive.audit_bursts.first_of_burst(user.username, what, route_name(request)):
        return  # the first request of this burst of image reads is recorded (yunying.auth.audit_bursts)
    burst = f"; repeats within {archive.settings.audit_burst_seconds:g} s not recorded" if per_image else ""
    record(archive.sessions, actor=user.username, action="retrieve", subject=what, source=client_address(request),
           detail=f"{count} instance(s) via {how}{burst}")


WITHHELD = ProblemError(403, "Withheld", "images with burned-in annotation are not shown in anonymous shares")


def visible_instances(archive: Archive, user: Principal, study: str, series: str | None = None,
                      instance: str | None = None) -> tuple[list[StoredInstance], Deidentifier | None]:
    """The instances named in the request and the de-identifier of an anonymous share visitor (else None).

    Such a visitor names studies by the replaced UIDs they were shown; they are mapped back in scope.
    """
    scope = scope_of(user)
    deid = for_principal(user, archive.settings, archive.blobs)
    if deid is not None:
        found = originals(archive.sessions, scope, deid, study, series, instance)
        study, series, instance = found.study, found.series, found.instance
    return archive.retrieve.list(scope, study, series, instance), deid


def _read_acceptable(archive: Archive, inst: StoredInstance, syntaxes: list[str],
                     deid: Deidentifier | None = None) -> tuple[bytes, str]:
    """The instance in the first of the acceptable ``syntaxes`` (preference order) that can be produced."""
    error: YunyingError | None = None
    for wanted in syntaxes:
        try:
            data, ts = archive.retrieve.read_as(inst, wanted)
        except (NotAcceptable, CannotDecode) as exc:
            error = exc
            continue
        return (deid.file(data) if deid is not None else data), ts
    assert error is not None
    raise error


def _first_acceptable(archive: Archive, instances: list[StoredInstance], syntaxes: list[str],
                      deid: Deidentifier | None) -> tuple[int, bytes, str]:
    for index, inst in enumerate(instances):
        try:
            return (index, *_read_acceptable(archive, inst, syntaxes, deid))
        except BurnedInAnnotation:
            continue
    raise WITHHELD


def _instances_response(request: Request, archive: Archive, instances: list[StoredInstance],
                        deid: Deidentifier | None = None) -> StreamingResponse:
    choices = negotiate(request.headers.get("accept", ""), [DICOM], DICOM)
    syntaxes = list(dict.fromkeys(c.transfer_syntax or ExplicitVRLittleEndian for c in choices))
    first, first_data, first_ts = _first_acceptable(archive, instances, syntaxes, deid)  # errors before any byte
    instances = instances[first:]
    boundary = multipart.new_boundary()

    def part(data: bytes, ts: str) -> bytes:
        return b"".join(multipart.encode_part(boundary, f"{DICOM}; transfer-syntax={ts}", data))

    def body() -> Iterator[bytes]:
        # One chunk per instance; the next instances are read and verified (SHA-256 releases the GIL)
        # in a small pool while the current one is on the wire.
        yield part(first_data, first_ts)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="wado-read") as pool:
            pending = deque(pool.submit(_read_acceptable, archive, inst, syntaxes, deid)
                            for inst in instances[1:_READ_AHEAD + 1])
            upcoming = iter(instances[_READ_AHEAD + 1:])
            while pending:
                future = pending.popleft()
                nxt = next(upcoming, None)
                if nxt is not None:
                    pending.append(pool.submit(_read_acceptable, archive, nxt, syntaxes, deid))
                try:
                    data, ts = future.result()
                except YunyingError as exc:  # incl. burned-in annotation in an anonymous share
                    log.warning("instance skipped in a WADO-RS response: %s", exc)
                    continue
                yield part(data, ts)
        yield multipart.close(boundary)

    single = syntaxes[0] if len(syntaxes) == 1 and syntaxes[0] != "*" else None
    content_type = multipart.related_content_type(DICOM, boundary, single)
    return StreamingResponse(body(), media_type=content_type)


@router.get("/studies/{study}", operation_id="wado_study", summary="Retrieve a study",
            response_class=StreamingResponse)
def retrieve_study(study: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> StreamingResponse:
    instances, deid = visible_instances(archive, user, study)
    _audit(request, archive, user, instances[0].study_uid, len(instances), "WADO-RS")
    return _instances_response(request, archive, instances, deid)


@router.get("/studies/{study}/series/{series}", operation_id="wado_series", summary="Retrieve a series",
            response_class=StreamingResponse)
def retrieve_series(study: str, series: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> StreamingResponse:
    instances, deid = visible_instances(archive, user, study, series)
    _audit(request, archive, user, instances[0].study_uid, len(instances), "WADO-RS")
    return _instances_response(request, archive, instances, deid)


@router.get("/studies/{study}/series/{series}/instances/{instance}", operation_id="wado_instance",
            summary="Retrieve an instance", response_class=StreamingResponse)
def retrieve_instance(study: str, series: str, instance: str, request: Request, archive: ArchiveDep,
                      user: CurrentUser) -> StreamingResponse:
    instances, deid = visible_instances(archive, user, study, series, instance)
    _audit(request, archive, user, instances[0].study_uid, 1, "WADO-RS")
    return _instances_response(request, archive, instances, deid)


def _metadata(request: Request, archive: Archive, user: CurrentUser, study: str, series: str | None,
              instance: str | None) -> JSONResponse:
    negotiate(request.headers.get("accept", ""), [DICOM_JSON, "application/json"], DICOM_JSON)
    deid = for_principal(user, archive.settings, archive.blobs)
    if deid is not None:
        found = originals(archive.sessions, scope_of(user), deid, study, series, instance)
        study, series, instance = found.study, found.series, found.instance
    items = archive.retrieve.metadata(scope_of(user), study, series, instance, base_url(request, archive))
    if deid is not None:
        items = _deidentified(deid, items)
    _audit(request, archive, user, study, len(items), "WADO-RS metadata")
    return JSONResponse(items, media_type=DICOM_JSON)


def _deidentified(deid: Deidentifier, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept = []
    for item in items:
        try:
            kept.append(deid.metadata(item))
        except BurnedInAnnotation:
            continue  # withheld, as from the instance retrievals
    return kept


@router.get("/studies/{study}/metadata", operation_id="wado_study_metadata", summary="Metadata of a study")
def study_metadata(study: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return _metadata(request, archive, user, study, None, None)


@router.get("/studies/{study}/series/{series}/metadata", operation_id="wado_series_metadata",
            summary="Metadata of a series")
def series_metadata(study: str, series: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return _metadata(request, archive, user, study, series, None)


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata", operation_id="wado_instance_metadata",
            summary="Metadata of an instance")
def instance_metadata(study: str, series: str, instance: str, request: Request, archive: ArchiveDep,
                      user: CurrentUser) -> JSONResponse:
    return _metadata(request, archive, user, study, series, instance)


def refuse_withheld(ds: Any) -> None:
    try:
        refuse_burned_in(ds)
    except BurnedInAnnotation as exc:
        raise WITHHELD from exc


def parse_frame_list(frames: str) -> list[int]:
    try:
        numbers = [int(f) for f in frames.split(",") if f.strip()]
    except ValueError as exc:
        raise ProblemError(400, "Invalid frame list", "frames must be comma-separated positive integers") from exc
    if not numbers or any(n < 1 for n in numbers):
        raise ProblemError(400, "Invalid frame list", "frame numbers start at 1")
    return numbers


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}", operation_id="wado_frames",
            summary="Retrieve frames", response_class=Response)
def retrieve_frames(study: str, series: str, instance: str, frames: str, request: Request, archive: ArchiveDep,
                    user: CurrentUser) -> Response:
    numbers = parse_frame_list(frames)
    found, deid = visible_instances(archive, user, study, series, instance)
    inst = found[0]
    stored_type = TRANSFER_SYNTAXES[inst.transfer_syntax_uid].media_type
    choices = negotiate(request.headers.get("accept", ""), FRAME_TYPES, OCTET)
    ds = archive.retrieve.dataset(inst)
    if deid is not None:
        refuse_withheld(ds)
    for choice in choices:
        if choice.media_type == OCTET and choice.transfer_syntax in (None, ExplicitVRLittleEndian):
            target: str | None = ExplicitVRLittleEndian
        elif choice.transfer_syntax == "*" or (choice.media_type == stored_type and choice.transfer_syntax in (
                None, inst.transfer_syntax_uid)):
            target = None
        else:
            continue
        data, ts = get_frames(ds, numbers, transfer_syntax=target)
        part_type = TRANSFER_SYNTAXES[ts].media_type
        boundary = multipart.new_boundary()
        parts = [(f"{part_type}; transfer-syntax={ts}", frame) for frame in data]
        _audit(request, archive, user, study, 1, "WADO-RS frames", per_image=True)
        return Response(b"".join(multipart.encode_all(boundary, parts)),
                        media_type=multipart.related_content_type(part_type, boundary, ts))
    raise ProblemError(406, "Not Acceptable", f"frames are available as {OCTET} or as stored ({stored_type})")


@router.get("/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}", operation_id="wado_bulkdata",
            summary="Retrieve bulk data of an instance", response_class=Response)
def retrieve_bulkdata(study: str, series: str, instance: str, tag: str, request: Request, archive: ArchiveDep,
                      user: CurrentUser) -> Response:
    try:
        tag_value = int(tag, 16)
    except ValueError as exc:
        raise ProblemError(400, "Invalid bulk data reference", "the tag must be 8 hexadecimal digits") from exc
    found, deid = visible_instances(archive, user, study, series, instance)
    inst = found[0]
    ds = archive.retrieve.dataset(inst)
    if deid is not None:
        refuse_withheld(ds)
        if action_for(tag_value) != "K":  # what de-identification removes or replaces is no bulk data to fetch
            raise ProblemError(404, "Not Found", "the instance has no such attribute")
    if tag_value == 0x7FE00010:
        frames, _ = get_frames(ds, list(range(1, (inst.number_of_frames or 1) + 1)), transfer_syntax=ExplicitVRLittleEndian)
        value = b"".join(frames)
    elif tag_value in ds:
        raw = ds[tag_value].value
        value = raw if isinstance(raw, bytes) else bytes(raw)
    else:
        raise ProblemError(404, "Not Found", "the instance has no such attribute")
    boundary = multipart.new_boundary()
    _audit(request, archive, user, study, 1, "WADO-RS bulkdata", per_image=True)
    return Response(b"".join(multipart.encode_all(boundary, [(OCTET, value)])),
                    media_type=multipart.related_content_type(OCTET, boundary))
