"""STOW-RS (PS3.18 §10.5): store instances sent as multipart/related; type="application/dicom".

Every part goes through the one durable ingest path. The response data set lists stored
instances in Referenced SOP Sequence (0008,1199) and refused ones in Failed SOP Sequence
(0008,1198) with a Failure Reason (0008,1197). HTTP 200 when all were stored, 202 when some
failed or carry a warning, 409 when none could be stored; 415 for a body that is not
multipart/related of application/dicom, 413 when it exceeds the size limit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartState
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.archive.ingest import Failure, Outcome, StoreResult
from yunying.auth.audit import record
from yunying.compose import Archive
from yunying.dicomweb import multipart
from yunying.dicomweb.common import DICOM_JSON, base_url, retrieve_url

router = APIRouter(tags=["STOW-RS"])

# PS3.18 Table 10.5.3-2 / PS3.4 Annex B failure reasons
FAILURE_REASON: dict[Failure, int] = {
    Failure.INVALID: 0xC000,
    Failure.TOO_LARGE: 0xA700,
    Failure.STUDY_MISMATCH: 0xA900,
    Failure.DUPLICATE: 0x0111,
    Failure.STORAGE: 0xA700,
    Failure.NOT_OWNER: 0x0124,  # refused: not authorised
}
WARNING_DUPLICATE = 0xB000  # coerced/ignored: the archive kept the first copy


def _el(vr: str, value: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": [value]}


def _part_failure(reason: str) -> StoreResult:
    return StoreResult(Outcome.REJECTED, failure=Failure.INVALID, reason=reason)


async def _read_parts(request: Request, archive: Archive, expected_study: str | None, origin: str,
                      institution_id: int | None) -> list[StoreResult]:
    media, params = multipart.parse_media_params(request.headers.get("content-type", ""))
    part_type = params.get("type", "application/dicom").lower()
    if media != "multipart/related" or part_type != "application/dicom" or not params.get("boundary"):
        raise ProblemError(415, "Unsupported Media Type",
                           'STOW-RS accepts multipart/related; type="application/dicom" with a boundary')
    settings = archive.settings
    too_large = ProblemError(413, "Content Too Large", f"the request exceeds {settings.max_request_bytes} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_request_bytes:
        raise too_large  # before any part is stored
    parser = multipart.RelatedParser(params["boundary"], settings.max_instance_bytes)
    results: list[StoreResult] = []
    received = 0
    malformed = ""
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > settings.max_request_bytes:
                if not results:
                    raise too_large
                # a body without Content-Length crossed the limit after some parts were stored: say so
                results.append(StoreResult(Outcome.REJECTED, failure=Failure.TOO_LARGE, reason=f"the request exceeds "
                                           f"{settings.max_request_bytes} bytes; the rest of the request was not stored"))
                return results
            parser.feed(chunk)
            while parser.ready:
                results.append(await run_in_threadpool(_store_part, archive, parser.ready.pop(0), expected_study, origin,
                                                         institution_id))
        parser.finish()
    except MultipartParseError as exc:
        malformed = f"malformed multipart body: {exc}"
    else:
        while parser.ready:
            results.append(await run_in_threadpool(_store_part, archive, parser.ready.pop(0), expected_study, origin,
                                                         institution_id))
        # python-multipart accepts a body that stops inside a part and drops that part silently
        if parser._parser.state != MultipartState.END and (results or received):
            malformed = "the multipart body ended before its closing delimiter; the last part is incomplete"
    if malformed and not results:
        raise ProblemError(400, "Bad Request", malformed)
    if malformed:  # the parts before the damage were stored: say so, and that the rest was not
        results.append(_part_failure(malformed + "; the rest of the request was not stored"))
    if not results:
        raise ProblemError(400, "Bad Request", "the multipart body contains no parts")
    return results


def _store_part(archive: Archive, part: multipart.Part, expected_study: str | None, origin: str,
                institution_id: int | None) -> StoreResult:
    if part.headers.get("x-too-large"):
        return StoreResult(Outcome.REJECTED, failure=Failure.TOO_LARGE,
                           reason=f"part exceeds the instance size limit of {archive.settings.max_instance_bytes} bytes")
    media, _ = multipart.parse_media_params(part.content_type or "application/dicom")
    if media != "application/dicom":
        return _part_failure(f"part media type {media!r} is not application/dicom")
    return archive.ingest.store_instance(bytes(part.body), origin=origin, expected_study_uid=expected_study,
                                         institution_id=institution_id)


def _response(request: Request, archive: Archive, results: list[StoreResult], study: str | None) -> JSONResponse:
    base = base_url(request, archive)
    referenced, failed, warnings = [], [], False
    for res in results:
        item: dict[str, Any] = {}
        if res.sop_class_uid:
            item["00081150"] = _el("UI", res.sop_class_uid)
        if res.sop_instance_uid:
            item["00081155"] = _el("UI", res.sop_instance_uid)
        if res.ok:
            item["00081190"] = _el("UR", retrieve_url(base, res.study_uid, res.series_uid, res.sop_instance_uid))
            if res.outcome is Outcome.DUPLICATE:
                item["00081196"] = _el("US", WARNING_DUPLICATE)
                warnings = True
            referenced.append(item)
        else:
            assert res.failure is not None
            item["00081197"] = _el("US", FAILURE_REASON[res.failure])
            # the reason as text, in a private attribute (creator "YUNYING")
            item["00090010"] = {"vr": "LO", "Value": ["YUNYING"]}
            item["00091001"] = {"vr": "LT", "Value": [res.reason]}
            failed.append(item)
    body: dict[str, Any] = {}
    if study:
        body["00081190"] = _el("UR", retrieve_url(base, study))
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    code = 200 if not failed and not warnings else 202 if referenced else 409
    return JSONResponse(body, status_code=code, media_type=DICOM_JSON)


async def _stow(request: Request, archive: Archive, user: CurrentUser, study: str | None) -> JSONResponse:
    origin = f"stow:{user.username}@{client_address(request)}"
    results = await _read_parts(request, archive, study, origin, user.institution_id)
    studies = sorted({r.study_uid for r in results if r.ok})
    stored = sum(1 for r in results if r.ok)
    await run_in_threadpool(record, archive.sessions, actor=user.username, action="store",
                            subject=",".join(studies)[:200] or "-", source=client_address(request),
                            outcome="success" if stored == len(results) else "partial",
                            detail=f"{stored}/{len(results)} instance(s) via STOW-RS")
    return _response(request, archive, results, study)


@router.post("/studies", operation_id="stow_studies", summary="Store instances",
             responses={200: {"content": {DICOM_JSON: {}}}, 202: {"description": "some instances failed"},
                        409: {"description": "no instance stored"}, 415: {"description": "wrong media type"}})
async def store_instances(request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return await _stow(request, archive, user, None)


@router.post("/studies/{study}", operation_id="stow_study", summary="Store instances into a study",
             responses={200: {"content": {DICOM_JSON: {}}}, 202: {"description": "some instances failed"},
                        409: {"description": "no instance stored"}, 415: {"description": "wrong media type"}})
async def store_study_instances(study: str, request: Request, archive: ArchiveDep, user: CurrentUser) -> JSONResponse:
    return await _stow(request, archive, user, study)
