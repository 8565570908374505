"""Reports that arrive as DICOM through the ingest path, against a real ``yunying serve`` (both databases).

Proves: a Comprehensive SR from the shared data sent by STOW-RS becomes a report whose text comes
from the SR content tree and whose status follows VerificationFlag / CompletionFlag (and the
predecessor documents); an Encapsulated PDF made here and sent by dcmtk ``storescu`` (C-STORE)
becomes a report whose PDF downloads byte for byte as it was encapsulated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.reports.pdf import pdf_instance
from tests.security.conftest import stow
from tests.support.data import SHARED
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(300)
DCMTK = {**os.environ, "TCP_NODELAY": "1"}
SR = SHARED / "seg_sr" / "test-SR_dcmtk_nested.dcm"


def _reports(server: ServerProcess, **params: str) -> list[dict[str, object]]:
    response = httpx.get(server.url + "/api/reports", params=params, headers=server.admin_headers, timeout=30)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_sr_by_stow_and_pdf_by_c_store_become_reports(server: ServerProcess, tmp_path: Path) -> None:
    sr = pydicom.dcmread(SR, stop_before_pixels=True)
    assert stow(server, server.admin_headers, [SR]).status_code == 200
    [report] = _reports(server, study=str(sr.StudyInstanceUID))
    current = report["current"]
    assert isinstance(current, dict)
    assert report["linked"] is True and current["source"] == "dicom-sr"
    assert current["source_ref"] == str(sr.SOPInstanceUID)
    assert "A mass of" in str(current["findings"]) and "Diameter: 3 cm" in str(current["findings"])
    # VERIFIED + COMPLETE with predecessor documents: an amendment; the verifier comes from the SR
    assert current["status"] == "amended" and current["verifier"] == "Observer^Verifying"

    if shutil.which("storescu") is None:
        pytest.skip("dcmtk is not installed")
    pdf_file = tmp_path / "report.dcm"
    pdf = pdf_instance(pdf_file, "ACC-PDF-1")
    sent = subprocess.run(["storescu", "-aec", server.ae_title, "127.0.0.1", str(server.dicom_port), str(pdf_file)],
                          capture_output=True, text=True, timeout=60, env=DCMTK, check=False)
    assert sent.returncode == 0, sent.stderr + sent.stdout
    [report] = _reports(server, accession="ACC-PDF-1")
    assert report["has_pdf"] is True and report["status"] == "final"
    got = httpx.get(f"{server.url}/api/reports/{report['id']}/pdf", headers=server.admin_headers, timeout=30)
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    assert got.content == pdf  # byte-identical, without the DICOM padding of an odd length
    # an SR report has no PDF
    no_pdf = httpx.get(f"{server.url}/api/reports/{_reports(server, study=str(sr.StudyInstanceUID))[0]['id']}/pdf",
                       headers=server.admin_headers, timeout=30)
    assert no_pdf.status_code == 404 and no_pdf.headers["content-type"] == "application/problem+json"
