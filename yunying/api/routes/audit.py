"""The audit trail for auditors: search (``GET /api/audit``) and export (``GET /api/audit/export``).

Both need ``audit:read`` (``yunying.api.policy``); each call is itself audited (action ``audit-read``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import PROBLEM, JsonApiRoute, ProblemError
from yunying.auth import audit
from yunying.auth.access import Principal
from yunying.auth.audit_export import FORMATS, MAX_XLSX_ROWS, csv_chunks, write_xlsx
from yunying.compose import Archive

router = APIRouter(prefix="/api/audit", tags=["audit"], route_class=JsonApiRoute)


class AuditEntryPublic(BaseModel):
    """One entry of the audit trail, with its place in the hash chain."""

    seq: int = Field(description="position in the chain (gap-free, from 1)")
    at: datetime = Field(description="when, in UTC")
    actor: str = Field(description="user name, `ae:<AE title>` for a DICOM peer, `cli:<os user>` for the command line")
    actor_institution: str = Field(description="code of the actor's institution (empty if unknown)")
    actor_role: str = Field(description="the actor's roles, comma-separated (empty if unknown)")
    action: str = Field(description="query, retrieve, view, store, login, denied, grant, audit-read, …")
    subject: str = Field(description="study UID(s) or a query description; never patient identifiers")
    source: str = Field(description="client address (and port for DICOM)")
    outcome: str = Field(description="success, partial, failed, refused, …")
    detail: str
    prev_hash: str = Field(description="hash of the previous entry (64 zeros for the first)")
    hash: str = Field(description="H(prev_hash || canonical entry), hex; see docs/api.md, Audit trail")


class AuditPage(BaseModel):
    items: list[AuditEntryPublic] = Field(description="newest first")
    total: int = Field(description="entries matching the filters")
    limit: int
    offset: int


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {401: "Unauthorized", 403: "Forbidden", 413: "Too many entries for one worksheet", 422: "Invalid request"}
    schema = Problem.model_json_schema()
    return {code: {"description": descriptions[code], "content": {PROBLEM: {"schema": schema}}} for code in codes}


Text = Annotated[str | None, Query(min_length=1, max_length=200)]


def audit_filter(
    start: Annotated[AwareDatetime | None, Query(alias="from", description="entries at or after (ISO 8601 with zone)")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="entries before (ISO 8601 with zone)")] = None,
    actor: Text = None, action: Text = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=200, description="a study UID or query description")] = None,
    outcome: Text = None,
    institution: Annotated[str | None, Query(min_length=1, max_length=32, description="the actor's institution code")] = None,
) -> audit.AuditFilter:
    return audit.AuditFilter(start, end, actor, action, subject, outcome, institution)


FilterDep = Annotated[audit.AuditFilter, Depends(audit_filter)]


def _audit_read(archive: Archive, user: Principal, request: Request, outcome: str, detail: str) -> None:
    audit.record(archive.sessions, actor=user.username, action="audit-read", subject="audit-trail",
                 source=client_address(request), outcome=outcome, detail=detail, role=user.role,
                 institution=audit.institution_code(archive.sessions, user.institution_id))


def _entry(entry: audit.Entry) -> AuditEntryPublic:
    return AuditEntryPublic(seq=entry.seq, at=entry.at, actor=entry.actor, actor_institution=entry.actor_institution,
                            actor_role=entry.actor_role, action=entry.action, subject=entry.subject, source=entry.source,
                            outcome=entry.outcome, detail=entry.detail, prev_hash=entry.prev_hash, hash=entry.hash)


@router.get("", operation_id="audit_search", response_model=AuditPage, summary="Search the audit trail (newest first)",
            responses=_problems(401, 403, 422))
def search_audit(request: Request, archive: ArchiveDep, user: CurrentUser, filters: FilterDep,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0) -> AuditPage:
    page = audit.search(archive.sessions, filters, limit=limit, offset=offset)
    _audit_read(archive, user, request, "success",
                f"search {filters.describe()} limit {limit} offset {offset}: {len(page.items)} of {page.total}")
    return AuditPage(items=[_entry(e) for e in page.items], total=page.total, limit=limit, offset=offset)


@router.get("/export", operation_id="audit_export", summary="Export the audit trail as CSV or Excel (oldest first)",
            response_class=StreamingResponse,
            responses={200: {"description": "the matching entries, columns as AuditEntryPublic",
                             "content": {media: {"schema": {"type": "string", "format": "binary"}}
                                         for media in FORMATS.values()}},
                       **_problems(401, 403, 413, 422)})
async def export_audit(request: Request, archive: ArchiveDep, user: CurrentUser, filters: FilterDep,
                       fmt: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv") -> StreamingResponse:
    total = await run_in_threadpool(audit.count, archive.sessions, filters)
    if fmt == "xlsx" and total > MAX_XLSX_ROWS:
        await run_in_threadpool(_audit_read, archive, user, request, "refused", f"export xlsx {filters.describe()}: {total}")
        raise ProblemError(413, "Too many entries for one worksheet",
                           f"{total} entries match; Excel holds {MAX_XLSX_ROWS}: narrow the range or export CSV")
    await run_in_threadpool(_audit_read, archive, user, request, "success", f"export {fmt} {filters.describe()}: {total}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="audit-{stamp}.{fmt}"', "Cache-Control": "no-store"}
    entries = audit.iter_entries(archive.sessions, filters)
    if fmt == "csv":
        return StreamingResponse(csv_chunks(entries), media_type=FORMATS["csv"], headers=headers)
    spooled = await run_in_threadpool(_xlsx_file, entries)
    return StreamingResponse(_file_chunks(spooled), media_type=FORMATS["xlsx"], headers=headers)


def _xlsx_file(entries: Iterator[audit.Entry]) -> IO[bytes]:
    spooled = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - closed by _file_chunks
    write_xlsx(entries, spooled)
    spooled.seek(0)
    return spooled


def _file_chunks(spooled: IO[bytes]) -> Iterator[bytes]:
    with spooled:
        while chunk := spooled.read(256 * 1024):
            yield chunk
