"""Gateway heartbeats (GW-13) on both databases: the domain with an injected clock, the HTTP API on a real server."""

from __future__ import annotations

import copy
import dataclasses
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from tests.support.server import ServerProcess
from yunying.api.routes.gateways import GatewayHeartbeat
from yunying.archive import gateways
from yunying.compose import Archive
from yunying.errors import NotFound
from yunying.index.models import AuditEvent

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


def beat(gateway_id: str = "hosp-a.gw1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "gateway_id": gateway_id, "version": "0.3.1", "institution": "HOSP-A",
        "sent_at": "2026-11-28T10:00:00+08:00",
        "lanes": {"emergency": {"depth": 2, "oldest_age_s": 4.5}, "routine": {"depth": 30, "oldest_age_s": 95.0},
                  "backfill": {"depth": 1000, "oldest_age_s": 3600}},
        "throughput": {"instances_per_s": 12.5, "mb_per_s": 6.25, "window_s": 60},
        "disk": {"used_bytes": 5_000_000_000, "budget_bytes": 200_000_000_000, "free_bytes": 150_000_000_000},
        "compression": {"original_bytes": 9_000_000, "sent_bytes": 4_000_000},
        "uploaded_today": 1234, "failed": 3,
        "last_errors": [{"at": "2026-11-28T09:58:00+08:00", "message": "upload timed out after 30 s"},
                        {"at": "2026-11-28T01:30:00Z", "message": "PACS association rejected"}],
        "warnings": ["disk budget 80 % used"],
    }
    body.update(changes)
    return body


def domain_beat(gateway_id: str = "hosp-a.gw1", **changes: Any) -> gateways.Heartbeat:
    return GatewayHeartbeat.model_validate(beat(gateway_id, **changes)).to_domain()


# --- domain, with the archive's clock injected ---------------------------------------------------------------------


def test_stale_flag_follows_the_archive_clock(archive: Archive) -> None:
    gateways.record_heartbeat(archive.sessions, domain_beat(), remote_addr="10.1.2.3", now=T0)

    fresh = gateways.get_gateway(archive.sessions, "hosp-a.gw1", now=T0 + timedelta(seconds=179))
    assert (fresh.stale, fresh.age_s) == (False, 179.0)
    assert gateways.get_gateway(archive.sessions, "hosp-a.gw1", now=T0 + timedelta(seconds=180)).stale is False
    late = gateways.get_gateway(archive.sessions, "hosp-a.gw1", now=T0 + timedelta(seconds=181))
    assert (late.stale, late.age_s) == (True, 181.0)
    assert gateways.get_gateway(archive.sessions, "hosp-a.gw1", stale_after_s=600, now=T0 + timedelta(seconds=181)).stale \
        is False
    listed = gateways.list_gateways(archive.sessions, limit=10, stale_after_s=60, now=T0 + timedelta(seconds=61))
    assert [(g.gateway_id, g.stale) for g in listed.items] == [("hosp-a.gw1", True)]
    # a gateway clock running behind the archive (or ahead) never gives a negative age
    assert gateways.get_gateway(archive.sessions, "hosp-a.gw1", now=T0 - timedelta(seconds=5)).age_s == 0.0

    gateways.record_heartbeat(archive.sessions, domain_beat(), remote_addr="10.1.2.3", now=T0 + timedelta(seconds=300))
    again = gateways.get_gateway(archive.sessions, "hosp-a.gw1", now=T0 + timedelta(seconds=310))
    assert (again.stale, again.age_s) == (False, 10.0)


def test_summary_columns_and_times_are_stored_in_utc(archive: Archive) -> None:
    gateways.record_heartbeat(archive.sessions, domain_beat(), remote_addr="10.1.2.3", now=T0)
    got = gateways.get_gateway(archive.sessions, "hosp-a.gw1", now=T0)
    assert got.queue_depth == 1032
    assert got.oldest_age_s == 3600.0
    assert (got.disk_used_bytes, got.disk_budget_bytes) == (5_000_000_000, 200_000_000_000)
    assert got.last_error == "upload timed out after 30 s"  # 01:58Z is later than 01:30Z whatever the offsets say
    assert got.reported_at == datetime(2026, 11, 28, 10, 0, tzinfo=BEIJING)
    assert got.reported_at.tzinfo is not None and got.received_at == T0
    assert (got.institution, got.version, got.remote_addr) == ("HOSP-A", "0.3.1", "10.1.2.3")
    assert got.figures["sent_at"] == "2026-11-28T10:00:00+08:00"
    assert got.figures["lanes"]["backfill"] == {"depth": 1000, "oldest_age_s": 3600.0}

    gateways.record_heartbeat(archive.sessions, domain_beat(lanes={}, last_errors=[], institution=None),
                              remote_addr="10.1.2.4", now=T0)
    quiet = gateways.get_gateway(archive.sessions, "hosp-a.gw1", now=T0)
    assert (quiet.queue_depth, quiet.oldest_age_s, quiet.last_error, quiet.institution) == (0, 0.0, None, None)
    assert gateways.list_gateways(archive.sessions, limit=10, now=T0).total == 1


def test_gateways_are_listed_in_byte_order_with_pagination(archive: Archive) -> None:
    ids = ["b", "B", "a-1", "a.1", "A_2", "a_1", "Z9", "0gw"]
    for gateway_id in ids:
        gateways.record_heartbeat(archive.sessions, domain_beat(gateway_id), remote_addr="-", now=T0)
    page = gateways.list_gateways(archive.sessions, limit=100, now=T0)
    assert [g.gateway_id for g in page.items] == sorted(ids)
    assert page.total == len(ids)
    second = gateways.list_gateways(archive.sessions, limit=3, offset=3, now=T0)
    assert [g.gateway_id for g in second.items] == sorted(ids)[3:6]
    assert second.total == len(ids)


def test_domain_refuses_bad_ids_and_reports_unknown_ones(archive: Archive) -> None:
    for bad in ["", "has space", "slash/es", "x" * 65, "网关"]:
        heartbeat = dataclasses.replace(domain_beat(), gateway_id=bad)
        with pytest.raises(ValueError, match="invalid gateway id"):
            gateways.record_heartbeat(archive.sessions, heartbeat, remote_addr="-")
    with pytest.raises(NotFound):
        gateways.get_gateway(archive.sessions, "never-seen")


# --- HTTP, on a real `yunying serve` ------------------------------------------------------------------------------


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _audit_rows(server: ServerProcess) -> int:
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
    finally:
        engine.dispose()


_GATEWAY_TOKENS: dict[str, str] = {}


def _gateway(server: ServerProcess) -> dict[str, str]:
    """A machine client with the gateway role (the only role that may post heartbeats)."""
    if server.url not in _GATEWAY_TOKENS:
        made = server.cli("user", "create", "gw-client", "--roles", "gateway")
        assert made.returncode == 0, made.stderr
        token = server.cli("token", "create", "--user", "gw-client", "--name", "gw-client")
        _GATEWAY_TOKENS[server.url] = token.stdout.strip().splitlines()[-1]
    return {"Authorization": f"Bearer {_GATEWAY_TOKENS[server.url]}"}


def test_heartbeat_is_stored_listed_and_replaced(server: ServerProcess) -> None:
    api = server.url + "/api/gateways"
    audited = _audit_rows(server)
    sent = httpx.post(f"{api}/hosp-a.gw1/heartbeat", json=beat(), headers=_gateway(server))
    assert sent.status_code == 204, sent.text
    assert sent.content == b""
    assert httpx.post(f"{api}/Hosp-B_gw-2/heartbeat", json=beat("Hosp-B_gw-2", institution=None),
                      headers=_gateway(server)).status_code == 204

    one = httpx.get(f"{api}/hosp-a.gw1", headers=server.admin_headers)
    assert one.status_code == 200, one.text
    got = one.json()
    assert got["figures"] == GatewayHeartbeat.model_validate(beat()).model_dump(mode="json")
    assert (got["queue_depth"], got["oldest_age_s"], got["disk_used_bytes"]) == (1032, 3600.0, 5_000_000_000)
    assert got["last_error"] == "upload timed out after 30 s"
    assert got["remote_addr"] == "127.0.0.1"
    assert got["stale"] is False and 0 <= got["age_s"] < 60
    assert datetime.fromisoformat(got["reported_at"]) == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)

    listed = httpx.get(api, headers=server.admin_headers).json()
    assert [g["gateway_id"] for g in listed["items"]] == ["Hosp-B_gw-2", "hosp-a.gw1"]
    assert (listed["total"], listed["limit"], listed["offset"], listed["stale_after_s"]) == (2, 100, 0, 180.0)
    paged = httpx.get(api, params={"limit": 1, "offset": 1}, headers=server.admin_headers).json()
    assert [g["gateway_id"] for g in paged["items"]] == ["hosp-a.gw1"] and paged["total"] == 2

    calmer = beat(lanes={"routine": {"depth": 1, "oldest_age_s": 2}}, last_errors=[], version="0.3.2")
    assert httpx.post(f"{api}/hosp-a.gw1/heartbeat", json=calmer, headers=_gateway(server)).status_code == 204
    replaced = httpx.get(api, headers=server.admin_headers).json()
    assert replaced["total"] == 2
    now = next(g for g in replaced["items"] if g["gateway_id"] == "hosp-a.gw1")
    assert (now["version"], now["queue_depth"], now["oldest_age_s"], now["last_error"]) == ("0.3.2", 1, 2.0, None)
    assert now["figures"]["lanes"] == {"routine": {"depth": 1, "oldest_age_s": 2.0}}

    time.sleep(1.2)  # the smallest threshold is 1 s; the domain test covers the boundaries with an injected clock
    stale = httpx.get(api, params={"stale_after_s": 1}, headers=server.admin_headers).json()
    assert [g["stale"] for g in stale["items"]] == [True, True]
    assert httpx.get(f"{api}/hosp-a.gw1", params={"stale_after_s": 3600}, headers=server.admin_headers).json()["stale"] is False

    assert _audit_rows(server) == audited  # heartbeats carry no patient data and are not audited


def _bad_bodies() -> list[tuple[str, dict[str, Any]]]:
    nested_extra = beat()
    nested_extra["disk"]["inodes"] = 5
    lane_extra = beat()
    lane_extra["lanes"]["routine"]["priority"] = 1
    negative = beat()
    negative["lanes"]["emergency"]["depth"] = -1
    negative_age = beat()
    negative_age["lanes"]["routine"]["oldest_age_s"] = -0.5
    missing = beat()
    del missing["throughput"]
    return [
        ("extra top-level field", beat(patient_name="ZHANG^SAN")),
        ("extra nested field", nested_extra),
        ("extra lane field", lane_extra),
        ("negative depth", negative),
        ("negative age", negative_age),
        ("unknown lane", beat(lanes={"urgent": {"depth": 1, "oldest_age_s": 0}})),
        ("depth as text", beat(lanes={"routine": {"depth": "5", "oldest_age_s": 0}})),
        ("depth as float", beat(lanes={"routine": {"depth": 5.5, "oldest_age_s": 0}})),
        ("missing section", missing),
        ("naive sent_at", beat(sent_at="2026-11-28T10:00:00")),
        ("numeric sent_at", beat(sent_at=1_764_295_200)),
        ("too many errors", beat(last_errors=[{"at": "2026-11-28T01:00:00Z", "message": "x"}] * 21)),
        ("error message too long", beat(last_errors=[{"at": "2026-11-28T01:00:00Z", "message": "x" * 501}])),
        ("mismatched gateway id", beat("hosp-z.gw9")),
        ("bad chars in body id", beat("hosp a/gw1")),
    ]


def test_invalid_heartbeats_are_422_problems(server: ServerProcess) -> None:
    url = server.url + "/api/gateways/hosp-a.gw1/heartbeat"
    for name, body in _bad_bodies():
        problem = _problem(httpx.post(url, json=copy.deepcopy(body), headers=_gateway(server)), 422)
        assert problem["title"] == "Invalid request", name
    extra = _problem(httpx.post(url, json=beat(patient_name="x"), headers=_gateway(server)), 422)
    assert extra["errors"] == [{"loc": ["body", "patient_name"], "msg": "Extra inputs are not permitted"}]
    mismatch = _problem(httpx.post(url, json=beat("hosp-z.gw9"), headers=_gateway(server)), 422)
    assert "hosp-z.gw9" in mismatch["detail"]

    for path_id in ["bad%20id", "x" * 65, "%E7%BD%91%E5%85%B3"]:
        posted = httpx.post(f"{server.url}/api/gateways/{path_id}/heartbeat", json=beat(), headers=_gateway(server))
        assert _problem(posted, 422)["errors"][0]["loc"] == ["path", "gateway_id"]
        _problem(httpx.get(f"{server.url}/api/gateways/{path_id}", headers=server.admin_headers), 422)
    for params in [{"stale_after_s": 0}, {"stale_after_s": 10**7}, {"limit": 0}, {"limit": 1001}, {"offset": -1}]:
        _problem(httpx.get(server.url + "/api/gateways", params=params, headers=server.admin_headers), 422)

    not_json = httpx.post(url, content=b"{not json", headers={"content-type": "application/json", **_gateway(server)})
    _problem(not_json, 400)
    assert httpx.get(server.url + "/api/gateways", headers=server.admin_headers).json()["total"] == 0  # nothing was stored


def test_gateway_routes_require_authentication_and_unknown_is_404(server: ServerProcess) -> None:
    api = server.url + "/api/gateways"
    wrong = ("admin", "not-the-password-0000")
    for auth in [None, wrong]:
        for response in [httpx.post(f"{api}/hosp-a.gw1/heartbeat", json=beat(), auth=auth),
                         httpx.post(f"{api}/hosp-a.gw1/heartbeat", json=beat(extra=1), auth=auth),
                         httpx.get(api, auth=auth), httpx.get(f"{api}/hosp-a.gw1", auth=auth)]:
            _problem(response, 401)
            assert "Basic" in response.headers["www-authenticate"]
    assert httpx.get(api, headers=server.admin_headers).json()["total"] == 0  # the anonymous heartbeat was not stored

    unknown = _problem(httpx.get(f"{api}/never-seen", headers=server.admin_headers), 404)
    assert "never-seen" in unknown["detail"]
