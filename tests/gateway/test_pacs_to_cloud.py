"""The gateway between a real hospital PACS (dcmtk's dcmqrscp) and real clouds (Yunying, Orthanc).

Acceptance points of the gateway issue covered here: pull everything by C-FIND/C-MOVE into the
cloud pixel-identical (1), reconciliation re-sends instances deleted from the cloud behind its back,
from the spool and, once the spool has let go of them, from the PACS again (5), and the same
gateway uploading to Orthanc's DICOMweb plugin by standard STOW-RS (6).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest

from tests.gateway.conftest import RunningPacs
from tests.support import data
from tests.support.gateway import GatewayProcess
from tests.support.gateway_data import make_study, pixels
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.timeout(900)
ORTHANC_SH = Path(os.environ.get("YUNYING_SHARED_PEERS", data.SHARED.parent / "peers")) / "orthanc.sh"


def pacs_holdings(pacs: RunningPacs) -> dict[str, Path]:
    """SOP Instance UID → the file the PACS stores (what a retrieve must reproduce).

    Files without a Study Instance UID are left out: Query/Retrieve cannot reach them (the PACS
    lists a study with an empty key), and the archive refuses them anyway.
    """
    held: dict[str, Path] = {}
    for path in (pacs.data_dir / "db").rglob("*"):
        if path.is_file() and path.name != "index.dat":
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID", "StudyInstanceUID"])
            except Exception:
                continue
            uid = ds.get("SOPInstanceUID")
            if uid and ds.get("StudyInstanceUID"):
                held[str(uid)] = path
    return held


def cloud_sops(cloud: ServerProcess) -> set[str]:
    db = sqlite3.connect(cloud.database_url.removeprefix("sqlite:///"))
    try:
        return {r[0] for r in db.execute("SELECT sop_uid FROM instance")}
    finally:
        db.close()


def delete_behind_its_back(cloud: ServerProcess, sop_uids: list[str]) -> None:
    """An operator error or a faulty script at the cloud: index rows gone, nobody told."""
    db = sqlite3.connect(cloud.database_url.removeprefix("sqlite:///"))
    try:
        db.executemany("DELETE FROM instance WHERE sop_uid = ?", [(u,) for u in sop_uids])
        db.commit()
    finally:
        db.close()


def gateway_items(gateway: GatewayProcess) -> dict[str, tuple[str, str | None]]:
    db = sqlite3.connect(gateway.data_dir / "queue.sqlite3")
    try:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT sop_uid, state, last_error FROM items")}
    finally:
        db.close()


def job(gateway: GatewayProcess, *args: str) -> dict[str, object]:
    done = gateway.cli(*args)
    assert done.returncode == 0, done.stdout + done.stderr + gateway.log()[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def same_pixels(a: bytes, b: bytes) -> bool:
    da, db_ = pydicom.dcmread(BytesIO(a)), pydicom.dcmread(BytesIO(b))
    if "PixelData" not in da:
        return "PixelData" not in db_
    try:
        return bool(np.array_equal(da.pixel_array, db_.pixel_array))
    except Exception:  # undecodable (e.g. a malformed Number of Frames): then it must travel untouched
        return bool(da.PixelData == db_.PixelData)


def test_pull_everything_from_the_pacs_pixel_identical(
        tmp_path: Path, pacs_factory: Callable[..., RunningPacs], cloud_factory: Callable[[], ServerProcess],
        gateways: Callable[..., GatewayProcess]) -> None:
    cloud = cloud_factory().start()
    port = free_port()
    pacs = pacs_factory(data.SHARED, {"CLOUD_GW": port})
    gateway = gateways(cloud_url=cloud.dicomweb, cloud_username=cloud.auth[0], cloud_password=cloud.auth[1],
                       pacs=f"{pacs.peer.ae_title}@127.0.0.1:{pacs.peer.port}", upload_streams=2)
    gateway.dicom_port = port
    gateway.start()
    held = pacs_holdings(pacs)
    assert len(held) > 300  # the shared data set, as the PACS stores it

    report = job(gateway, "pull", "--all")
    assert report["failed"] == 0, report
    assert report["instances"] == len(held), report
    status = gateway.wait_drained(600)

    in_cloud = cloud_sops(cloud)
    items = gateway_items(gateway)
    missing = set(held) - in_cloud
    # Whatever is not in the cloud reached the gateway and was refused by the cloud itself, with a reason.
    for uid in missing:
        assert uid in items, "an instance the PACS holds never reached the gateway"
        state, reason = items[uid]
        assert state == "failed" and reason and "refused by the cloud" in reason, (state, reason)
    assert len(missing) <= len(data.REFUSED), f"{len(missing)} refused: more than the archive's known refusals"
    assert status["failed"] == len(missing)
    # Pixel-identical to what the PACS holds (the gateway compressed losslessly on the way).
    with httpx.Client(auth=cloud.auth, timeout=60) as http:
        for uid in sorted(in_cloud & set(held)):
            meta = http.get(f"{cloud.dicomweb}/instances", params={"SOPInstanceUID": uid}).json()[0]
            study, series = meta["0020000D"]["Value"][0], meta["0020000E"]["Value"][0]
            response = http.get(f"{cloud.dicomweb}/studies/{study}/series/{series}/instances/{uid}",
                                headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
            assert response.status_code == 200, uid
            body = response.content
            start = body.index(b"\r\n\r\n") + 4
            end = body.rindex(b"\r\n--")
            assert same_pixels(body[start:end], held[uid].read_bytes()), f"pixels differ: {held[uid].name}"


def test_reconciliation_resends_what_the_cloud_lost(
        tmp_path: Path, pacs_factory: Callable[..., RunningPacs], default_src: Path,
        cloud_factory: Callable[[], ServerProcess], gateways: Callable[..., GatewayProcess]) -> None:
    cloud = cloud_factory().start()
    port = free_port()
    pacs = pacs_factory(default_src, {"CLOUD_GW": port})
    gateway = gateways(cloud_url=cloud.dicomweb, cloud_username=cloud.auth[0], cloud_password=cloud.auth[1],
                       pacs=f"{pacs.peer.ae_title}@127.0.0.1:{pacs.peer.port}")
    gateway.dicom_port = port
    gateway.start()
    job(gateway, "pull", "--all")
    gateway.wait_drained(120)
    held = pacs_holdings(pacs)
    assert set(held) <= cloud_sops(cloud)
    dates = sorted({str(pydicom.dcmread(p, stop_before_pixels=True).StudyDate) for p in held.values()})
    first, last = (f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in (dates[0], dates[-1]))
    days = str((np.datetime64(last) - np.datetime64(first)).astype(int) + 1)

    # 1. Lost in the cloud, still in the gateway's spool: re-sent from there.
    lost = sorted(held)[:3]
    delete_behind_its_back(cloud, lost)
    report = job(gateway, "reconcile", "--until", last, "--days", days)
    assert sum(d["missing"] for d in report["days"]) == 3, report  # type: ignore[union-attr]
    assert sum(d["resent_from_spool"] for d in report["days"]) == 3  # type: ignore[union-attr]
    gateway.wait_drained(60)
    assert set(held) <= cloud_sops(cloud)

    # 2. Lost again after the spool let go of its copies: pulled from the PACS again.
    gateway.stop()
    gateway.config = {**gateway.config, "keep_sent_s": 0}
    gateway.start()  # housekeeping at start evicts every uploaded file
    for _ in range(100):
        if gateway.status()["disk"]["used_bytes"] == 0:
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert gateway.status()["disk"]["used_bytes"] == 0
    lost = sorted(held)[-2:]
    delete_behind_its_back(cloud, lost)
    report = job(gateway, "reconcile", "--until", last, "--days", days)
    assert sum(d["pulled_again"] for d in report["days"]) == 2, report  # type: ignore[union-attr]
    gateway.wait_drained(60)
    assert set(held) <= cloud_sops(cloud)
    # and a check with nothing missing finds nothing
    report = job(gateway, "reconcile", "--until", last, "--days", days)
    assert sum(d["missing"] for d in report["days"]) == 0  # type: ignore[union-attr]
    assert sum(d["pacs_instances"] for d in report["days"]) == len(held)  # type: ignore[union-attr]


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[str]:
    if not ORTHANC_SH.exists() or subprocess.run(["which", "Orthanc"], capture_output=True).returncode:
        pytest.skip("Orthanc is not installed (scripts/system-deps.sh)")
    folder = tmp_path / "orthanc"
    env = {**os.environ, "ORTHANC_HTTP_PORT": str(free_port()), "ORTHANC_DICOM_PORT": str(free_port())}
    subprocess.run(["bash", str(ORTHANC_SH), "start", str(folder)], env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"http://127.0.0.1:{env['ORTHANC_HTTP_PORT']}/dicom-web"
    finally:
        subprocess.run(["bash", str(ORTHANC_SH), "stop", str(folder)], env=env, check=False, capture_output=True)


def test_the_same_gateway_uploads_to_orthanc_by_standard_stow(
        tmp_path: Path, orthanc: str, gateways: Callable[..., GatewayProcess]) -> None:
    study = make_study(tmp_path / "ct", 30, accession="ORTH1", series=2)
    gateway = gateways(cloud_url=orthanc, heartbeat_interval_s=0, batch_max_instances=8).start()
    done = subprocess.run(["storescu", "-aec", gateway.ae_title, "127.0.0.1", str(gateway.dicom_port),
                           *map(str, study.files)], capture_output=True, text=True, timeout=300,
                          env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    status = gateway.wait_drained(120)
    assert status["failed"] == 0
    assert status["compression"]["sent_bytes"] < status["compression"]["original_bytes"]
    with httpx.Client(timeout=60) as http:
        rows = http.get(f"{orthanc}/studies/{study.study_uid}/instances").json()
        assert {r["00080018"]["Value"][0] for r in rows} == set(study.sop_uids)
        for path, uid in list(zip(study.files, study.sop_uids, strict=True))[:5]:
            series = next(r["0020000E"]["Value"][0] for r in rows if r["00080018"]["Value"][0] == uid)
            response = http.get(f"{orthanc}/studies/{study.study_uid}/series/{series}/instances/{uid}",
                                headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
            assert response.status_code == 200
            body = response.content
            part = body[body.index(b"\r\n\r\n") + 4:body.rindex(b"\r\n--")]
            assert (pixels(part) == pixels(path.read_bytes())).all()


def test_backfill_walks_its_days_only_inside_the_window_with_visible_progress(
        tmp_path: Path, pacs_factory: Callable[..., RunningPacs], default_src: Path,
        cloud_factory: Callable[[], ServerProcess], gateways: Callable[..., GatewayProcess]) -> None:
    from datetime import datetime, timedelta

    cloud = cloud_factory().start()
    port, status_port = free_port(), free_port()
    pacs = pacs_factory(default_src, {"CLOUD_GW": port})
    later = datetime.now() + timedelta(hours=2)
    closed = f"{later:%H:%M}-{later + timedelta(hours=1):%H:%M}"  # a night window that is not now
    gateway = gateways(cloud_url=cloud.dicomweb, cloud_username=cloud.auth[0], cloud_password=cloud.auth[1],
                       pacs=f"{pacs.peer.ae_title}@127.0.0.1:{pacs.peer.port}", backfill_window=closed,
                       status_port=status_port)
    gateway.dicom_port = port
    gateway.start()
    job(gateway, "backfill", "--from", "2003-05-01", "--to", "2003-05-06")
    subprocess.run(["sleep", "6"], check=True)  # the scheduler looks every 5 s
    state = json.loads(gateway.status()["progress"]["backfill"])
    assert state["next_day"] == "2003-05-06" and state["days_done"] == 0, "backfill ran outside its window"
    assert cloud_sops(cloud) == set()

    gateway.stop()
    gateway.config = {**gateway.config, "backfill_window": ""}
    gateway.start()
    for _ in range(100):
        state = json.loads(gateway.status()["progress"]["backfill"])
        if not state["next_day"]:
            break
        subprocess.run(["sleep", "0.2"], check=True)
    assert state["next_day"] == "" and state["days_done"] == 6 and state["studies"] == 1, state
    gateway.wait_drained(60)
    items = gateway_items(gateway)
    expected = {uid for uid, p in pacs_holdings(pacs).items()
                if str(pydicom.dcmread(p, stop_before_pixels=True).StudyDate) == "20030505"}
    assert set(items) == expected and expected <= cloud_sops(cloud)
    db = sqlite3.connect(gateway.data_dir / "queue.sqlite3")
    assert {r[0] for r in db.execute("SELECT DISTINCT lane FROM items")} == {2}  # the backfill lane
    db.close()
    # the local status page shows the same figures
    page = httpx.get(f"http://127.0.0.1:{status_port}/", timeout=10)
    assert page.status_code == 200 and "backfill" in page.text
    figures = httpx.get(f"http://127.0.0.1:{status_port}/status.json", timeout=10).json()
    assert figures["lanes"]["backfill"]["depth"] == 0 and figures["gateway_id"] == "gateway"
