"""Patient identifiers never appear in logs: a sentinel name goes in through STOW, QIDO and C-FIND."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import httpx
from pydicom import dcmread

from tests.support import data
from tests.support.server import ServerProcess

SENTINEL_NAME = "Sentinelname^Zebediah"
SENTINEL_ID = "PHI-SENTINEL-7731"


def test_sentinel_patient_never_logged(server: ServerProcess, tmp_path: Path) -> None:
    ds = dcmread(data.ct_series()[0])
    ds.PatientName = SENTINEL_NAME
    ds.PatientID = SENTINEL_ID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + buf.getvalue() + b"\r\n--b--\r\n"
    stow = httpx.post(server.dicomweb + "/studies", content=body, auth=server.auth,
                      headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'})
    assert stow.status_code == 200
    found = httpx.get(server.dicomweb + "/studies", params={"PatientName": "Sentinel*", "PatientID": SENTINEL_ID},
                      auth=server.auth)
    assert found.status_code == 200 and len(found.json()) == 1
    env = {**os.environ, "TCP_NODELAY": "1"}
    findscu = subprocess.run(["findscu", "-S", "-aec", server.ae_title, "-k", "QueryRetrieveLevel=STUDY",
                              "-k", "PatientName=Sentinel*", "-k", f"PatientID={SENTINEL_ID}", "-k", "StudyInstanceUID",
                              "127.0.0.1", str(server.dicom_port)], capture_output=True, text=True, env=env, timeout=60)
    assert findscu.returncode == 0
    assert SENTINEL_ID in findscu.stdout + findscu.stderr  # the query did match: the peer saw it …
    server.stop()
    log = server.log()
    assert "Yunying archive is up" in log  # … and the server did log things, just not these
    for secret in ("Sentinelname", "Zebediah", SENTINEL_ID):
        assert secret not in log
