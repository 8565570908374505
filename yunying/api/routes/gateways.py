"""Edge gateway heartbeats (GW-13): gateways report, operators see every hospital's gateway at a glance.

``POST /api/gateways/{gateway_id}/heartbeat`` stores the latest figures of a gateway (204);
``GET /api/gateways`` and ``GET /api/gateways/{gateway_id}`` show them with a ``stale`` flag.
Every route needs an authenticated caller. Heartbeats are not audited: they carry no patient data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import PROBLEM, JsonApiRoute, ProblemError
from yunying.archive import gateways
from yunying.archive.gateways import GATEWAY_ID_MAX, GATEWAY_ID_PATTERN

_SAFE_INT_MAX = 2**53 - 1  # exact in JavaScript (the operator console) and fits the BIGINT columns
_INT32_MAX = 2**31 - 1


router = APIRouter(prefix="/api/gateways", tags=["gateways"], route_class=JsonApiRoute)


def _text_timestamp(value: object) -> object:
    """Timestamps must be ISO 8601 text; pydantic would otherwise take bare numbers as Unix times."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with a time zone")
    return value


GatewayId = Annotated[str, Field(min_length=1, max_length=GATEWAY_ID_MAX, pattern=GATEWAY_ID_PATTERN)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_text_timestamp), Field(strict=False)]
Count = Annotated[int, Field(ge=0, le=_SAFE_INT_MAX)]
Seconds = Annotated[float, Field(ge=0)]
LaneName = Literal["emergency", "routine", "backfill"]  # yunying.archive.gateways.LANES


class _Strict(BaseModel):
    """No coercion ("5" is not 5), no unknown fields, no NaN/Infinity (which json.loads would accept)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class LaneFigures(_Strict):
    depth: Annotated[int, Field(ge=0, le=_INT32_MAX, description="instances waiting")]
    oldest_age_s: Annotated[Seconds, Field(description="how long the oldest waiting instance has waited")]


class Throughput(_Strict):
    instances_per_s: Seconds
    mb_per_s: Seconds
    window_s: Annotated[Seconds, Field(description="the window the rates were measured over")]


class DiskFigures(_Strict):
    used_bytes: Count
    budget_bytes: Count
    free_bytes: Count


class CompressionFigures(_Strict):
    original_bytes: Count
    sent_bytes: Count


class GatewayErrorNote(_Strict):
    at: Timestamp
    message: Annotated[str, Field(max_length=500)]


class GatewayHeartbeat(_Strict):
    """What a gateway reports about itself every minute or so."""

    gateway_id: GatewayId
    version: Annotated[str, Field(min_length=1, max_length=64)]
    institution: Annotated[str | None, Field(max_length=64)] = None
    sent_at: Annotated[Timestamp, Field(description="the gateway's clock when it sent this heartbeat")]
    lanes: dict[LaneName, LaneFigures]
    throughput: Throughput
    disk: DiskFigures
    compression: CompressionFigures
    uploaded_today: Count
    failed: Count
    last_errors: Annotated[list[GatewayErrorNote], Field(max_length=20)]
    warnings: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=20)]

    def to_domain(self) -> gateways.Heartbeat:
        return gateways.Heartbeat(
            gateway_id=self.gateway_id, version=self.version, institution=self.institution, sent_at=self.sent_at,
            lanes={name: gateways.Lane(lane.depth, lane.oldest_age_s) for name, lane in self.lanes.items()},
            disk_used_bytes=self.disk.used_bytes, disk_budget_bytes=self.disk.budget_bytes,
            last_errors=[gateways.ErrorNote(note.at, note.message) for note in self.last_errors],
            figures=self.model_dump(mode="json"),
        )


class GatewayPublic(BaseModel):
    """The latest heartbeat of one gateway as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    gateway_id: str
    institution: str | None
    version: str
    reported_at: datetime = Field(description="sent_at of the latest heartbeat (the gateway's clock)")
    received_at: datetime = Field(description="when the archive received it (the archive's clock)")
    remote_addr: str
    queue_depth: int = Field(description="instances waiting over all lanes")
    oldest_age_s: float = Field(description="age of the oldest waiting instance over all lanes")
    disk_used_bytes: int
    disk_budget_bytes: int
    last_error: str | None = Field(description="the most recent of last_errors")
    age_s: float = Field(description="seconds since received_at")
    stale: bool = Field(description="no heartbeat within stale_after_s")
    figures: dict[str, Any] = Field(description="the latest heartbeat as sent (schema GatewayHeartbeat)")


class GatewayPage(BaseModel):
    items: list[GatewayPublic]
    total: int
    limit: int
    offset: int
    stale_after_s: float


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Error responses for the OpenAPI document: problem+json only (``model=`` would also claim application/json)."""
    descriptions = {400: "Body is not JSON", 401: "Unauthorized", 404: "Not Found", 422: "Invalid request"}
    return {code: {"description": descriptions[code], "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}}} for code in codes}


GatewayIdPath = Annotated[str, Path(min_length=1, max_length=GATEWAY_ID_MAX, pattern=GATEWAY_ID_PATTERN)]
StaleAfter = Annotated[float, Query(ge=1, le=7 * 86400, description="seconds without a heartbeat before a gateway is stale")]


@router.post("/{gateway_id}/heartbeat", operation_id="gateway_heartbeat", status_code=204,
             summary="Report a gateway's status (replaces its previous heartbeat)", responses=_problems(400, 401, 422))
def heartbeat(gateway_id: GatewayIdPath, body: GatewayHeartbeat, request: Request, archive: ArchiveDep,
              _user: CurrentUser) -> Response:
    if body.gateway_id != gateway_id:
        raise ProblemError(422, "Invalid request", f"body gateway_id {body.gateway_id!r} differs from the path's {gateway_id!r}")
    # Not audited: a heartbeat carries no patient data (counts, sizes, versions, gateway error text).
    gateways.record_heartbeat(archive.sessions, body.to_domain(), remote_addr=client_address(request))
    return Response(status_code=204)


@router.get("", operation_id="gateways_list", response_model=GatewayPage,
            summary="Latest status of every gateway, by gateway id", responses=_problems(401, 422))
def list_gateways(archive: ArchiveDep, _user: CurrentUser,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
                  stale_after_s: StaleAfter = gateways.DEFAULT_STALE_AFTER_S) -> GatewayPage:
    page = gateways.list_gateways(archive.sessions, limit=limit, offset=offset, stale_after_s=stale_after_s)
    items = [GatewayPublic.model_validate(item) for item in page.items]
    return GatewayPage(items=items, total=page.total, limit=limit, offset=offset, stale_after_s=stale_after_s)


@router.get("/{gateway_id}", operation_id="gateway_get", response_model=GatewayPublic,
            summary="Latest status of one gateway", responses=_problems(401, 404, 422))
def get_gateway(gateway_id: GatewayIdPath, archive: ArchiveDep, _user: CurrentUser,
                stale_after_s: StaleAfter = gateways.DEFAULT_STALE_AFTER_S) -> GatewayPublic:
    return GatewayPublic.model_validate(gateways.get_gateway(archive.sessions, gateway_id, stale_after_s=stale_after_s))
