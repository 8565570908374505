"""The server starts on both databases, answers health publicly and refuses anonymous DICOMweb."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.server import YUNYING, ServerProcess


def test_health_is_public_and_dicomweb_is_not(server: ServerProcess) -> None:
    health = httpx.get(server.url + "/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    anonymous = httpx.get(server.dicomweb + "/studies")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(server.dicomweb + "/studies", auth=server.auth).status_code == 200


def test_multi_process_serving_shares_ports(server_factory: Callable[..., ServerProcess]) -> None:
    """--workers 2: HTTP workers and a second DICOM process on the same port both serve."""
    server = server_factory("workers", YUNYING_WORKERS="2")
    env = {**os.environ, "TCP_NODELAY": "1"}
    for _ in range(6):  # several associations: the kernel spreads them over both DICOM processes
        echo = subprocess.run(["echoscu", "-aec", server.ae_title, "127.0.0.1", str(server.dicom_port)],
                              capture_output=True, env=env, timeout=30)
        assert echo.returncode == 0, echo.stderr
    for _ in range(6):
        assert httpx.get(server.dicomweb + "/studies", auth=server.auth).status_code == 200


def test_unknown_setting_stops_start_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNYING_")}
    env["YUNYING_HTTP_PROT"] = "9000"
    run = subprocess.run([YUNYING, "migrate", "--data-dir", str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert run.returncode != 0
    assert "YUNYING_HTTP_PROT" in run.stderr
