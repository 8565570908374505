"""Fixtures for the blob store integration tests: a real S3 peer (OpenStack Swift + s3api).

The peer is started once per session with the shared helper ``/work/shared/peers/s3.sh``
(first start pip-installs Swift into ``$DATA/venv``; later starts take a few seconds).
A peer this session starts gets empty devices first (see ``_reset_data``); a peer that
is already running is reused as is. If it cannot be started the S3 tests fail with the peer's logs; set ``YUNYING_SKIP_S3=1``
to skip them instead (without trying to start anything).

Env knobs: ``YUNYING_S3_PEER_SCRIPT`` (helper path), ``YUNYING_S3_PEER_DIR`` (data dir,
default ``/tmp/yunying-test-s3``), ``S3_PORT`` (default 9000, passed to the helper),
``YUNYING_KEEP_S3=1`` (leave a peer this session started running afterwards).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

PEER_SCRIPT = Path(os.environ.get("YUNYING_S3_PEER_SCRIPT", "/work/shared/peers/s3.sh"))
PEER_DIR = Path(os.environ.get("YUNYING_S3_PEER_DIR", "/tmp/yunying-test-s3"))
ACCESS_KEY = "test:tester"
SECRET_KEY = "testing"
REGION = "us-east-1"
START_TIMEOUT_S = 600  # the first start pip-installs swift
READY_TIMEOUT_S = 60


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "s3: needs the real S3 peer (Swift s3api); skip with YUNYING_SKIP_S3=1")


@dataclass(frozen=True)
class S3Peer:
    """A running S3 peer: where it answers, how to log in, and where its data live."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    data_dir: Path
    script: Path

    def client(self) -> S3Client:
        """A raw boto3 client, independent of the store under test."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": 3},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def run(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``s3.sh <command> <data_dir>``."""
        return subprocess.run(
            ["bash", str(self.script), command, str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _peer_logs(data_dir: Path, lines: int = 40) -> str:
    parts = []
    for log in sorted(data_dir.glob("*.log")):
        try:
            tail = log.read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            tail = [f"<unreadable: {exc}>"]
        parts.append(f"--- {log} (last {lines} lines) ---\n" + "\n".join(tail))
    return "\n".join(parts) or f"(no *.log files in {data_dir})"


def _fail(message: str, proc: subprocess.CompletedProcess[str] | None, data_dir: Path) -> None:
    out = ""
    if proc is not None:
        out = f"\n--- s3.sh exit {proc.returncode} ---\n{proc.stdout}\n{proc.stderr}"
    pytest.fail(f"{message}{out}\n{_peer_logs(data_dir)}", pytrace=False)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _reset_data(data_dir: Path) -> None:
    """Empty the Swift devices of a stopped peer (keeps venv, config and rings).

    The auditor is rate-limited (20 files/s) and visits every object *and tombstone*;
    tombstones live for a week, so without this ``s3.sh audit`` slows down a little
    with every test run that deletes objects.
    """
    for device in data_dir.glob("srv/node/d*"):
        for child in device.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


@pytest.fixture(scope="session")
def s3_peer() -> Iterator[S3Peer]:
    """Start (or reuse) the Swift S3 peer; fail loudly if it does not come up."""
    if os.environ.get("YUNYING_SKIP_S3") == "1":
        pytest.skip("YUNYING_SKIP_S3=1")
    port = int(os.environ.get("S3_PORT", "9000"))
    peer = S3Peer(
        endpoint=f"http://127.0.0.1:{port}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
        data_dir=PEER_DIR,
        script=PEER_SCRIPT,
    )
    if not PEER_SCRIPT.is_file():
        _fail(f"S3 peer helper {PEER_SCRIPT} not found", None, PEER_DIR)
    was_running = peer.run("status", timeout=30).returncode == 0
    if not was_running:
        if _port_open(port):
            _fail(
                f"port {port} is already taken by something other than the peer in {PEER_DIR} "
                "(another s3.sh data dir?); stop it or set S3_PORT",
                None,
                PEER_DIR,
            )
        _reset_data(PEER_DIR)
    try:
        started = peer.run("start", timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _fail(f"s3.sh start did not finish in {START_TIMEOUT_S}s", None, PEER_DIR)
        raise  # unreachable; pytest.fail raises
    if started.returncode != 0:
        _fail("S3 peer failed to start", started, PEER_DIR)

    # Wait until the S3 API answers authenticated requests, and make sure it is *our*
    # peer (its pid files under PEER_DIR are alive), not some other store on the port.
    client = peer.client()
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error: Exception | None = None
    while True:
        try:
            client.list_buckets()
            status = peer.run("status", timeout=30)
            if status.returncode == 0:
                break
            last_error = RuntimeError(f"s3.sh status: {status.stdout.strip()}")
        except (BotoCoreError, ClientError) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            _fail(f"S3 peer at {peer.endpoint} not ready: {last_error!r}", started, PEER_DIR)
        time.sleep(0.5)

    yield peer

    if not was_running and os.environ.get("YUNYING_KEEP_S3") != "1":
        peer.run("stop", timeout=60)


@pytest.fixture
def s3_bucket(s3_peer: S3Peer) -> Iterator[str]:
    """A fresh, unique bucket name; the bucket and its objects are removed afterwards."""
    name = f"yy-test-{uuid.uuid4().hex[:20]}"
    yield name
    client = s3_peer.client()
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            objects: list[ObjectIdentifierTypeDef] = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if objects:  # one multi-object delete per page of up to 1000 keys
                client.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=name)
    except ClientError:
        pass  # never created, or already gone: nothing to clean
