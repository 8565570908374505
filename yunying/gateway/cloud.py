"""The gateway's view of the cloud: standard STOW-RS and QIDO-RS over HTTP(S), plus heartbeats.

Only PS3.18 is spoken on the data path, so any DICOMweb archive works as the cloud (Yunying,
Orthanc's DICOMweb plugin, ...). Heartbeats go to the Yunying archive's gateway endpoint.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from yunying.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

# PS3.4 Annex B / PS3.18 failure reasons
RETRYABLE_REASONS = range(0xA700, 0xA800)  # out of resources: try again later
DUPLICATE_REASON = 0x0111  # the cloud already holds this SOP Instance UID
QIDO_PAGE = 1000


class CloudUnavailable(Exception):
    """The request did not complete (network, timeout, 5xx, throttling, auth): retry later."""


class CloudRejectedRequest(Exception):
    """The cloud refused the request as a whole (4xx other than auth/throttling)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


@dataclass
class StowOutcome:
    """Per instance: confirmed by the cloud, refused for good, or to be retried."""

    http_status: int
    stored: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    retry: dict[str, str] = field(default_factory=dict)


def _values(ds: dict[str, Any], tag: str) -> list[Any]:
    element = ds.get(tag) or {}
    return list(element.get("Value") or [])


def parse_stow_response(http_status: int, body: dict[str, Any], sent: Sequence[str]) -> StowOutcome:
    """Read Referenced SOP Sequence (0008,1199) and Failed SOP Sequence (0008,1198)."""
    outcome = StowOutcome(http_status)
    for item in _values(body, "00081199"):
        uid = next(iter(_values(item, "00081155")), None)
        if uid:
            outcome.stored.add(str(uid))
    for item in _values(body, "00081198"):
        uid = next(iter(_values(item, "00081155")), None)
        reason = int(next(iter(_values(item, "00081197")), 0xC000))
        if not uid:
            continue
        if reason == DUPLICATE_REASON:
            outcome.stored.add(str(uid))
        elif reason in RETRYABLE_REASONS:
            outcome.retry[str(uid)] = f"cloud out of resources (0x{reason:04X})"
        else:
            outcome.refused[str(uid)] = f"refused by the cloud (failure reason 0x{reason:04X})"
    for uid in sent:  # neither confirmed nor refused: not known to be stored, send again
        if uid not in outcome.stored and uid not in outcome.refused and uid not in outcome.retry:
            outcome.retry[uid] = "not confirmed in the STOW-RS response"
    return outcome


class CloudClient:
    """One HTTP connection pool to the cloud, shared by the upload streams (thread-safe)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.base = settings.cloud_url.rstrip("/")
        headers = {"User-Agent": f"yunying-gateway/{settings.name}"}
        auth: httpx.Auth | None = None
        if settings.cloud_token:
            headers["Authorization"] = f"Bearer {settings.cloud_token}"
        elif settings.cloud_username:
            auth = httpx.BasicAuth(settings.cloud_username, settings.cloud_password)
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=settings.cloud_ca_file or None)
        self.http = httpx.Client(headers=headers, auth=auth, verify=verify,
                                 timeout=httpx.Timeout(settings.request_timeout_s, connect=10.0),
                                 limits=httpx.Limits(max_connections=settings.upload_streams + 2))

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise CloudUnavailable(f"{type(exc).__name__} talking to the cloud: {exc}") from exc
        if response.status_code in (401, 403):
            raise CloudUnavailable(f"cloud refused our credentials (HTTP {response.status_code}); check cloud_token")
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise CloudUnavailable(f"cloud answered HTTP {response.status_code}")
        return response

    def store(self, parts: Sequence[tuple[str, bytes]]) -> StowOutcome:
        """STOW-RS ``parts`` (SOP Instance UID, Part 10 bytes) in one multipart request."""
        boundary = "yunying-" + secrets.token_hex(16)

        def body() -> Iterator[bytes]:
            for _uid, data in parts:
                yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                yield data
                yield b"\r\n"
            yield f"--{boundary}--\r\n".encode()

        length = sum(len(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n") + len(d) + 2 for _u, d in parts)
        length += len(f"--{boundary}--\r\n")
        response = self._call(
            "POST", f"{self.base}/studies", content=body(),
            headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                     "Accept": "application/dicom+json", "Content-Length": str(length)})
        sent = [uid for uid, _d in parts]
        if response.status_code not in (200, 202, 409):
            raise CloudRejectedRequest(response.status_code, response.text[:300])
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = {}
        if isinstance(payload, list):  # some servers answer a one-element array
            payload = payload[0] if payload else {}
        return parse_stow_response(response.status_code, payload, sent)

    def study_instances(self, study_uid: str) -> set[str]:
        """SOP Instance UIDs the cloud holds for a study (QIDO-RS, paged)."""
        found: set[str] = set()
        offset = 0
        while True:
            response = self._call("GET", f"{self.base}/studies/{study_uid}/instances",
                                  params={"limit": QIDO_PAGE, "offset": offset, "includefield": "00080018"},
                                  headers={"Accept": "application/dicom+json"})
            if response.status_code in (204, 404):
                return found
            if response.status_code != 200:
                raise CloudRejectedRequest(response.status_code, response.text[:300])
            rows = response.json() if response.content else []
            before = len(found)
            for row in rows:
                uid = next(iter(_values(row, "00080018")), None)
                if uid:
                    found.add(str(uid))
            if not rows or len(found) == before:  # the end, or a server that ignores offset
                return found
            offset += len(rows)

    def heartbeat(self, url: str, body: dict[str, Any]) -> None:
        response = self._call("POST", url, json=body)
        if response.status_code >= 300:
            raise CloudRejectedRequest(response.status_code, response.text[:300])
