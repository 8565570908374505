"""Store-and-forward end to end: dcmtk/pynetdicom → gateway (real process) → cloud (real archive).

Acceptance points of the gateway issue covered here: offline queueing with emergency-first
catch-up (2), SIGKILL of the gateway during receive and upload (3), a connection cut mid-upload
resumed without re-sending what the cloud confirmed (4), and a bearer token on the wire.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pynetdicom import AE, StoragePresentationContexts

from tests.support.gateway import GatewayProcess
from tests.support.gateway_data import CuttingProxy, Study, make_study, pixels
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(600)


def cloud_config(cloud: ServerProcess, url: str | None = None) -> dict[str, object]:
    return {"cloud_url": url or cloud.dicomweb, "cloud_username": cloud.auth[0], "cloud_password": cloud.auth[1]}


def storescu(gateway: GatewayProcess, files: list[Path]) -> None:
    done = subprocess.run(["storescu", "-aec", gateway.ae_title, "127.0.0.1", str(gateway.dicom_port),
                           *map(str, files)], capture_output=True, text=True, timeout=300,
                          env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]


def cloud_arrivals(cloud: ServerProcess) -> dict[str, int]:
    """SOP Instance UID → arrival order (the cloud index's row id)."""
    db = sqlite3.connect(cloud.database_url.removeprefix("sqlite:///"))
    try:
        return dict(db.execute("SELECT sop_uid, id FROM instance").fetchall())
    finally:
        db.close()


def assert_in_cloud_pixel_exact(cloud: ServerProcess, study: Study) -> None:
    with httpx.Client(auth=cloud.auth, timeout=60) as http:
        for path, uid in zip(study.files, study.sop_uids, strict=True):
            response = http.get(f"{cloud.url}/wado", params={"requestType": "WADO", "studyUID": study.study_uid,
                                                            "seriesUID": "", "objectUID": uid,
                                                            "contentType": "application/dicom"})
            if response.status_code != 200:  # WADO-URI wants the series too: look it up
                series = http.get(f"{cloud.dicomweb}/studies/{study.study_uid}/instances",
                                  params={"SOPInstanceUID": uid}).json()[0]["0020000E"]["Value"][0]
                response = http.get(f"{cloud.url}/wado", params={
                    "requestType": "WADO", "studyUID": study.study_uid, "seriesUID": series, "objectUID": uid,
                    "contentType": "application/dicom", "transferSyntax": "*"})
            assert response.status_code == 200, (uid, response.status_code)
            assert (pixels(response.content) == pixels(path.read_bytes())).all(), f"pixels differ for {path.name}"


def test_offline_queue_then_catch_up_emergency_first_with_a_bearer_token(
        tmp_path: Path, cloud_factory: Callable[[], ServerProcess], gateways: Callable[..., GatewayProcess]) -> None:
    routine = make_study(tmp_path / "routine", 24, accession="MZ0001")
    emergency = make_study(tmp_path / "emergency", 8, accession="JZ0002")
    cloud = cloud_factory()  # ports chosen, not started: the cloud is down
    gateway = gateways(cloud_url=cloud.dicomweb, lane_rules=["emergency:AccessionNumber=JZ*"],
                       upload_streams=4, batch_max_instances=4).start()
    storescu(gateway, routine.files)
    storescu(gateway, emergency.files)
    time.sleep(1.5)  # the gateway keeps trying a cloud that is not there
    status = gateway.status()
    assert status["lanes"]["routine"]["depth"] == 24
    assert status["lanes"]["emergency"]["depth"] == 8
    assert any("cloud" in e["message"].lower() or "connect" in e["message"].lower() for e in status["last_errors"])

    cloud.start()
    made = cloud.cli("user", "create", "gateway-test", "--roles", "gateway")  # a machine client of the hospital
    assert made.returncode == 0, made.stderr
    token = cloud.cli("token", "create", "--user", "gateway-test", "--name", "gateway-test").stdout.strip().splitlines()[-1]
    gateway.stop()
    gateway.config = {**gateway.config, "cloud_token": token}
    gateway.start()
    status = gateway.wait_drained(120)
    assert status["failed"] == 0

    arrivals = cloud_arrivals(cloud)
    assert set(routine.sop_uids + emergency.sop_uids) <= set(arrivals)
    assert max(arrivals[u] for u in emergency.sop_uids) < min(arrivals[u] for u in routine.sop_uids), \
        "an emergency instance reached the cloud after a routine one queued before it"
    assert_in_cloud_pixel_exact(cloud, emergency)
    assert status["compression"]["sent_bytes"] < status["compression"]["original_bytes"] * 0.6
    gateways_seen = httpx.get(f"{cloud.url}/api/gateways", headers=cloud.admin_headers).json()
    assert "gateway" in str(gateways_seen)


class AckingSender:
    """A modality that sends until every file is acknowledged, reconnecting whenever the gateway dies."""

    def __init__(self, gateway: GatewayProcess, files: list[Path]) -> None:
        self.gateway = gateway
        self.pending = list(files)
        self.acked: dict[str, Path] = {}
        self.done = threading.Event()
        self.ae = AE(ae_title="MODALITY")
        self.ae.requested_contexts = [c for c in StoragePresentationContexts if "CT" in str(c.abstract_syntax.name)][:1]
        self.ae.acse_timeout = 5
        self.ae.dimse_timeout = 10
        self.ae.network_timeout = 5

    def run(self) -> None:
        import pydicom

        while self.pending:
            assoc = self.ae.associate("127.0.0.1", self.gateway.dicom_port, ae_title=self.gateway.ae_title)
            if not assoc.is_established:
                time.sleep(0.1)
                continue
            try:
                while self.pending:
                    path = self.pending[0]
                    ds = pydicom.dcmread(path)
                    status = assoc.send_c_store(ds)
                    if status is None or "Status" not in status:
                        break  # connection died: this one is not acknowledged
                    if status.Status == 0:
                        self.acked[str(ds.SOPInstanceUID)] = path
                        self.pending.pop(0)
                    else:
                        time.sleep(0.2)
            finally:
                if assoc.is_established:
                    assoc.release()
        self.done.set()


def test_sigkill_during_receive_and_upload_loses_nothing(
        tmp_path: Path, cloud_factory: Callable[[], ServerProcess], gateways: Callable[..., GatewayProcess]) -> None:
    studies = [make_study(tmp_path / f"s{n}", 120, accession=f"K{n}", series=2) for n in range(3)]  # 360 instances
    files = [f for s in studies for f in s.files]
    cloud = cloud_factory().start()
    gateway = gateways(**cloud_config(cloud), upload_streams=2, batch_max_instances=8).start()
    sender = AckingSender(gateway, files)
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    rng = random.Random(20261122)
    kills = 0
    while kills < 10:
        time.sleep(rng.uniform(0.3, 1.5))
        gateway.kill()
        kills += 1
        gateway.start()
    thread.join(timeout=300)
    assert sender.done.is_set(), f"sender stuck with {len(sender.pending)} files left"
    assert kills >= 10
    gateway.wait_drained(300)
    arrivals = cloud_arrivals(cloud)
    for study in studies:
        assert set(study.sop_uids) <= set(arrivals), "an acknowledged instance never reached the cloud"
    assert len(arrivals) == len(files)  # exactly once (no strays)
    for study in studies:
        assert_in_cloud_pixel_exact(cloud, study)
    counts = httpx.get(f"{cloud.dicomweb}/studies", auth=cloud.auth).json()
    assert sorted(int(s["00201208"]["Value"][0]) for s in counts) == [120, 120, 120]


def test_cut_connection_resumes_without_resending_confirmed_instances(
        tmp_path: Path, cloud_factory: Callable[[], ServerProcess], gateways: Callable[..., GatewayProcess]) -> None:
    study = make_study(tmp_path / "big", 120, accession="BIG1")
    total = sum(p.stat().st_size for p in study.files)
    cloud = cloud_factory().start()
    proxy = CuttingProxy(("127.0.0.1", cloud.http_port))
    try:
        gateway = gateways(**cloud_config(cloud, f"http://127.0.0.1:{proxy.port}/dicom-web"), upload_streams=1,
                           batch_max_instances=10, compression="none", heartbeat_interval_s=0).start()
        proxy.cut_after(total // 2)  # mid-way through the study, inside some batch
        storescu(gateway, study.files)
        gateway.wait_drained(180)
        assert proxy.cuts == 1
    finally:
        proxy.close()
    assert set(study.sop_uids) <= set(cloud_arrivals(cloud))
    db = sqlite3.connect(gateway.data_dir / "queue.sqlite3")
    sends = dict(db.execute("SELECT sop_uid, sends FROM items").fetchall())
    db.close()
    resent = [uid for uid, n in sends.items() if n > 1]
    assert len(resent) <= 10, f"{len(resent)} instances sent more than once; only the cut batch may be"
    # On the wire: everything once, plus at most the one interrupted batch (and HTTP/multipart overhead).
    batch_bytes = max(p.stat().st_size for p in study.files) * 10
    assert proxy.bytes_up < total + batch_bytes + 200_000


def test_disk_budget_full_refuses_with_out_of_resources_never_drops(
        tmp_path: Path, cloud_factory: Callable[[], ServerProcess], gateways: Callable[..., GatewayProcess]) -> None:
    study = make_study(tmp_path / "ct", 6, accession="FULL1")
    size = max(p.stat().st_size for p in study.files)
    cloud = cloud_factory()  # down: nothing can leave the spool
    gateway = gateways(**cloud_config(cloud), disk_budget_bytes=max(1024**2, size * 3)).start()
    done = subprocess.run(["storescu", "-v", "-aec", gateway.ae_title, "127.0.0.1", str(gateway.dicom_port),
                           *map(str, study.files)], capture_output=True, text=True, timeout=120,
                          env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    log = done.stdout + done.stderr
    accepted = log.count("Received Store Response (Success)")
    refused = log.count("Refused: OutOfResources")  # storescu stops at the first refusal
    assert accepted >= 1 and refused == 1 and accepted < 6, log[-3000:]
    status = gateway.status()
    assert status["lanes"]["routine"]["depth"] == accepted
    assert any("budget" in w for w in status["warnings"]), status["warnings"]
    # The sender keeps what was refused and sends it again once there is room: here, after the cloud is back.
    cloud.start()
    gateway.wait_drained(60)
    storescu(gateway, study.files)
    gateway.wait_drained(60)
    assert set(study.sop_uids) <= set(cloud_arrivals(cloud))
