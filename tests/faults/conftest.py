"""Helpers shared by the fault-injection tests (crash, damage, bad input)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from tests.support.data import ct_series
from tests.support.server import ServerProcess
from yunying.index.models import Instance

PROBLEM_JSON = "application/problem+json"
DICOM_JSON = "application/dicom+json"
BOUNDARY = "yunying-fault-test-boundary"
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def dcmtk_env() -> dict[str, str]:
    """Environment for dcmtk tools (TCP_NODELAY=1: otherwise every small PDU waits for Nagle)."""
    return dict(os.environ, TCP_NODELAY="1")


def real_ct_files(n: int) -> list[Path]:
    files = ct_series()
    if len(files) < n:
        pytest.skip(f"needs {n} CT slices in the shared data, found {len(files)}")
    return files[:n]


def multipart_body(parts: list[tuple[str, bytes]], boundary: str = BOUNDARY, close: bool = True) -> bytes:
    out = bytearray()
    for content_type, body in parts:
        out += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + body + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def split_multipart(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/related response into (headers, body) parts — independent of the server's parser."""
    match = re.search(r'boundary="?([^";]+)"?', response.headers["content-type"])
    assert match, response.headers["content-type"]
    delimiter = b"--" + match.group(1).encode()
    parts = []
    for chunk in response.content.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").strip().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        assert body.endswith(b"\r\n")
        parts.append((headers, body[:-2]))
    return parts


def blob_files(server: ServerProcess) -> list[Path]:
    """Every file under the blob tree (instances, caches, temporary files)."""
    root = server.data_dir / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def dicom_blob_path(server: ServerProcess, digest: str) -> Path:
    return server.data_dir / "blobs" / "dicom" / digest[:2] / digest[2:4] / digest


def instance_rows(db_url: str) -> tuple[int, int]:
    """(rows in the instance table, distinct SOP Instance UIDs among them)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(Instance)).scalar_one()
            distinct = conn.execute(select(func.count(func.distinct(Instance.sop_uid)))).scalar_one()
    finally:
        engine.dispose()
    return int(rows), int(distinct)


def indexed_blob_keys(db_url: str) -> dict[str, str]:
    """SOP Instance UID → blob key of every indexed instance."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {str(sop): str(key) for sop, key in conn.execute(select(Instance.sop_uid, Instance.blob_key))}
    finally:
        engine.dispose()


@dataclass(frozen=True)
class FsckLine:
    kind: str
    state: str  # "FOUND" or "repaired"
    key: str
    detail: str


_FSCK_LINE = re.compile(r"^(\w+)\s+(FOUND|repaired)\s+(\S+)\s+—\s+(.*)$")


def run_fsck(server: ServerProcess, *args: str) -> tuple[int, list[FsckLine], str]:
    """Run ``yunying fsck`` on the server's data; return (exit code, findings, full output)."""
    done = server.cli("fsck", *args)
    findings = []
    for line in done.stdout.splitlines():
        m = _FSCK_LINE.match(line)
        if m:
            findings.append(FsckLine(*m.groups()))
    assert "checked " in done.stdout, f"fsck did not finish:\n{done.stdout}\n{done.stderr}"
    return done.returncode, findings, done.stdout + done.stderr
