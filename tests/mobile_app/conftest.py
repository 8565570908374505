"""The cloud film's phone pages in a phone-sized headless Chromium against one real ``yunying serve``.

One archive for the package: two hospitals with exams of one patient (same phone and ID-card number on file
at both), final reports through the reports API (which make the exam links and film sheets), films waited
for through the films API. A patient session is made like a phone makes it (code sent, read from the outbox
``notification`` table, verified); the first test does the same through the verification page itself.
SQLite only, as for the viewer tests (docs/decisions/0009): the pages do not depend on the database.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy import text

from tests.security.conftest import direct, stow
from tests.support.server import ServerProcess
from tests.support.viewer import CT_DIR, chromium
from tests.support.web import FIELD_KEYS
from yunying.auth.access import Role
from yunying.auth.credentials import create_token, create_user, institution_id
from yunying.index.models import Institution

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "mobile-app"
PHONE = "13812345678"
ID_CARD = "11010519491231002X"  # a valid GB 11643 number (check character X)
PHONE_SIZE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 640}


@dataclass
class Exam:
    study_uid: str
    hospital: str
    modality: str
    date: str
    description: str


@dataclass
class PhoneSite:
    server: ServerProcess
    browser: Browser
    exams: list[Exam] = field(default_factory=list)
    staff: dict[str, dict[str, str]] = field(default_factory=dict)  # hospital code → radiologist bearer header
    hospitals: dict[str, str] = field(default_factory=dict)  # code → display name

    def api(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.server.url + path, headers=headers, timeout=60, **kwargs)

    def notifications(self) -> list[str]:
        """Bodies of the outbox's messages, newest first (the development notifier delivers to the table)."""
        archive = direct(self.server)
        try:
            with archive.sessions() as session:
                return [str(row[0]) for row in session.execute(text("SELECT body FROM notification ORDER BY id DESC"))]
        finally:
            archive.close()

    def exam_link(self, exam: Exam) -> str:
        """Staff send the exam's link by SMS; the token is read from the outbox."""
        hospital = next(code for code, name in self.hospitals.items() if name == exam.hospital)
        sent = self.api("POST", f"/api/studies/{exam.study_uid}/cloudfilm/send", self.staff[hospital], json={})
        assert sent.status_code == 202, sent.text
        for body in self.notifications():
            found = re.search(r"/m/open/([A-Za-z0-9_-]+)", body)
            if found:
                return found.group(1)
        raise AssertionError("no exam link in the outbox")

    def latest_code(self) -> str:
        for body in self.notifications():
            found = re.search(r"(?<![\w-])(\d{6})(?![\w-])", body)
            if found and "/m/open/" not in body:
                return found.group(1)
        raise AssertionError("no one-time code in the outbox")

    def patient_cookie(self, exam: Exam) -> dict[str, Any]:
        """Verify as the patient through the API (phone number + code) and return the session cookie."""
        token = self.exam_link(exam)
        asked = self.api("POST", f"/api/cloudfilm/open/{token}/code", json={"method": "phone", "value": PHONE})
        assert asked.status_code == 202, asked.text
        verified = self.api("POST", f"/api/cloudfilm/open/{token}/verify",
                            json={"method": "phone", "value": PHONE, "code": self.latest_code()})
        assert verified.status_code == 200, verified.text
        value = verified.cookies.get("yy_patient")
        assert value, verified.headers
        return {"name": "yy_patient", "value": value, "url": self.server.url}

    @contextmanager
    def phone(self, size: dict[str, int] = PHONE_SIZE, patient_of: Exam | None = None) -> Iterator[Page]:
        """A fresh phone-sized touch browser profile; with ``patient_of``, signed in as that exam's patient."""
        context: BrowserContext = self.browser.new_context(viewport=size, has_touch=True, is_mobile=True,
                                                           device_scale_factor=2, base_url=self.server.url,
                                                           locale="zh-CN")
        if patient_of is not None:
            context.add_cookies([self.patient_cookie(patient_of)])  # type: ignore[list-item]
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            context.close()


def mobile_built() -> Path:
    dist = Path(os.environ.get("YUNYING_VIEWER_DIST") or ROOT / "viewer" / "dist")
    if not (dist / "mobile.html").exists():
        subprocess.run(["bash", "scripts/build-viewer.sh"], cwd=ROOT, check=True)
    return dist


def _make_exam(folder: Path, *, patient_id: str, modality: str, date: str, description: str) -> tuple[str, list[Path]]:
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in CT_DIR.iterdir() if p.is_file() and p.name != "DICOMDIR")[40:43]
    study, series = generate_uid(), generate_uid()
    files = []
    for number, source in enumerate(sources, start=1):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID, ds.PatientName = patient_id, "Zhang^Wei=张^伟"
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientTelephoneNumbers = PHONE
        ds.OtherPatientIDsSequence = [pydicom.Dataset()]
        ds.OtherPatientIDsSequence[0].PatientID = ID_CARD
        ds.OtherPatientIDsSequence[0].TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence[0].IssuerOfPatientID = "CN-ID"
        ds.Modality, ds.StudyDate, ds.SeriesDate = modality, date, date
        ds.StudyDescription = ds.SeriesDescription = description
        ds.AccessionNumber = f"ACC-{patient_id}-{date}"
        ds.InstanceNumber = number
        path = folder / f"{number:03d}.dcm"
        ds.save_as(path)
        files.append(path)
    return str(study), files


def _seed(site: PhoneSite, tmp: Path) -> None:
    plan = [("hosp-a", "云影第一医院", "PA-1", "CT", "20261120", "CT CHEST"),
            ("hosp-a", "云影第一医院", "PA-1", "MR", "20261002", "MR HEAD"),
            ("hosp-b", "云影中心医院", "PB-9", "CT", "20250611", "CT ABDOMEN")]
    archive = direct(site.server)
    technician: dict[str, dict[str, str]] = {}
    try:
        for code, name in {(p[0], p[1]) for p in plan}:
            with archive.sessions() as session:
                session.add(Institution(code=code, name=name))
                session.commit()
            site.hospitals[code] = name
            inst = institution_id(archive.sessions, code)
            for role, holder in ((Role.RADIOLOGIST, site.staff), (Role.TECHNICIAN, technician)):
                user = f"{role.value}-{code}"
                create_user(archive.sessions, user, "Yy-Pass-word-123", [role], institution=inst)
                holder[code] = {"Authorization": f"Bearer {create_token(archive.sessions, user, user)}"}
    finally:
        archive.close()
    for code, name, patient_id, modality, date, description in plan:
        study, files = _make_exam(tmp / f"{code}-{date}", patient_id=patient_id, modality=modality, date=date,
                                  description=description)
        stored = stow(site.server, technician[code], files)
        assert stored.status_code == 200, stored.text
        report = site.api("POST", "/api/reports", site.staff[code], json={
            "study_uid": study, "status": "final", "findings": f"{description}: no abnormality.",
            "impression": "Normal study.", "verifier": "Dr Wang"})
        assert report.status_code == 201, report.text
        site.exams.append(Exam(study, name, modality, date, description))
    deadline = time.monotonic() + 300  # film sheets are made by the server's workers
    for exam in site.exams:
        code = next(c for c, n in site.hospitals.items() if n == exam.hospital)
        while True:
            films = site.api("GET", f"/api/studies/{exam.study_uid}/films", site.staff[code])
            assert films.status_code == 200, films.text
            if films.json()["state"] == "ready":
                break
            assert time.monotonic() < deadline, f"film of {exam.description} not ready: {films.text}"
            time.sleep(1)


@pytest.fixture(scope="package")
def phone_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneSite]:
    pytest.importorskip("yunying.cloudfilm", reason="the cloud-film backend is not in this tree yet")
    dist = mobile_built()
    root = tmp_path_factory.mktemp("mobile-app")
    server = ServerProcess(root / "data", f"sqlite:///{root / 'data' / 'index.sqlite3'}", open_dicom=False,
                           env={"YUNYING_LOGIN_RATE_PER_MINUTE": "10000", "YUNYING_PUBLIC_RATE_PER_MINUTE": "100000",
                                "YUNYING_VIEWER_DIST": str(dist),
                                **{f"YUNYING_{name.upper()}": value for name, value in FIELD_KEYS.items()}})
    server.env["YUNYING_PUBLIC_URL"] = server.url
    (root / "data").mkdir()
    server.start()
    try:
        with chromium() as browser:
            site = PhoneSite(server, browser)
            _seed(site, root / "studies")
            yield site
    finally:
        server.stop()


def ready(page: Page) -> None:
    """Until the phone page has drawn what its API calls returned."""
    page.wait_for_function("() => document.body.dataset.mobileReady === 'true'", timeout=30_000)


def shot(page: Page, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
