"""Encryption in transit: the gateway uploads only over a TLS connection it can verify."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.gateway import GatewayProcess
from tests.support.gateway_data import make_study
from tests.support.server import ServerProcess
from tests.support.tls import make_pki


def test_upload_over_tls_verified_against_the_configured_ca(
        tmp_path: Path, cloud_factory: Callable[[], ServerProcess], gateways: Callable[..., GatewayProcess]) -> None:
    ca, cert, key = make_pki(tmp_path / "pki")
    cloud = cloud_factory()
    cloud.env.update({"YUNYING_TLS_CERT_FILE": str(cert), "YUNYING_TLS_KEY_FILE": str(key)})
    cloud.start()
    assert cloud.url.startswith("https://")
    trust = ssl.create_default_context(cafile=str(ca))
    study = make_study(tmp_path / "ct", 5, accession="TLS1")
    base = {"cloud_url": cloud.dicomweb, "cloud_username": cloud.auth[0], "cloud_password": cloud.auth[1]}

    # Without the hospital's CA the certificate cannot be verified: nothing is sent, nothing is lost.
    gateway = gateways(**base).start()
    done = subprocess.run(["storescu", "-aec", gateway.ae_title, "127.0.0.1", str(gateway.dicom_port),
                           *map(str, study.files)], capture_output=True, text=True, timeout=120,
                          env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    time.sleep(2)
    status = gateway.status()
    assert status["lanes"]["routine"]["depth"] == 5
    assert any("CERTIFICATE_VERIFY_FAILED" in e["message"] for e in status["last_errors"]), status["last_errors"]
    assert httpx.get(f"{cloud.dicomweb}/studies", auth=cloud.auth, verify=trust).json() == []

    # With it, the queue drains over HTTPS.
    gateway.stop()
    gateway.config = {**gateway.config, "cloud_ca_file": str(ca)}
    gateway.start()
    gateway.wait_drained(60)
    rows = httpx.get(f"{cloud.dicomweb}/studies/{study.study_uid}/instances", auth=cloud.auth, verify=trust).json()
    assert {r["00080018"]["Value"][0] for r in rows} == set(study.sop_uids)
