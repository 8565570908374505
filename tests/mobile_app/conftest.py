"""The cloud film's phone pages in a phone-sized headless Chromium against one real ``yunying serve``.

One archive for the package: two hospitals with three exams of one patient (the same phone number, in
Patient's Telephone Numbers, and ID-card number, in Other Patient IDs, on file at both — what ingest reads)
and one exam of another patient. The newest exam's final report comes as HL7 ORU^R01 over MLLP (mllp_send),
the others through the reports API; each makes the exam's link and queues its film, which the server's own
job worker composes (waited for through the films API). A patient session is made like a phone makes it
(staff send the link by SMS, the code is read from the outbox ``notification`` table, verified); the first
test does the same through the verification page itself, from the QR code of the printed cover sheet.
SQLite only, as for the viewer tests (docs/decisions/0009): the pages do not depend on the database.
"""

from __future__ import annotations

import io
import json
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

from tests.integration.test_sensitive_fields import id_card
from tests.reports.messages import oru, send
from tests.security.conftest import direct, stow
from tests.support.server import ServerProcess, free_port
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
OTHER_PHONE = "13987654321"  # another patient, at the first hospital
OTHER_ID_CARD = id_card("44030619850317102")
NAME = "Zhang^Wei=张^伟"
PHONE_SIZE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 640}


@dataclass
class Exam:
    study_uid: str
    hospital: str
    modality: str
    date: str
    description: str
    patient_id: str = ""
    accession: str = ""
    sop_uids: list[str] = field(default_factory=list)  # in instance-number order


@dataclass
class PhoneSite:
    server: ServerProcess
    browser: Browser
    exams: list[Exam] = field(default_factory=list)  # the patient's, newest first
    other: Exam | None = None  # another patient's exam at the first hospital
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
        sent = self.api("POST", f"/api/studies/{exam.study_uid}/cloudfilm/send", self.staff_of(exam), json={})
        assert sent.status_code == 202, sent.text
        for body in self.notifications():
            found = re.search(r"/m/open/([A-Za-z0-9_-]+)", body)
            if found:
                return found.group(1)
        raise AssertionError("no exam link in the outbox")

    def staff_of(self, exam: Exam) -> dict[str, str]:
        return self.staff[next(code for code, name in self.hospitals.items() if name == exam.hospital)]

    def cover_url(self, exam: Exam) -> str:
        """The URL in the QR code of the exam's printed cover sheet (read back from the PDF with zxing-cpp)."""
        import pypdf
        import zxingcpp

        cover = self.api("GET", f"/api/studies/{exam.study_uid}/cloudfilm/cover.pdf", self.staff_of(exam))
        assert cover.status_code == 200 and cover.headers["content-type"] == "application/pdf", cover.text[:200]
        [image] = pypdf.PdfReader(io.BytesIO(cover.content)).pages[0].images
        [qr] = zxingcpp.read_barcodes(image.image)
        return str(qr.text)

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


def _make_exam(folder: Path, *, patient_id: str, modality: str, date: str, description: str, phone: str = PHONE,
               card: str = ID_CARD, name: str = NAME) -> tuple[Exam, list[Path]]:
    """Three real CT slices as a new exam of this patient (instance numbers 1-3)."""
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in CT_DIR.iterdir() if p.is_file() and p.name != "DICOMDIR")[40:43]
    study, series = generate_uid(), generate_uid()
    exam = Exam(str(study), "", modality, date, description, patient_id, f"ACC-{patient_id}-{date}")
    files = []
    for number, source in enumerate(sources, start=1):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID, ds.PatientName = patient_id, name
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientTelephoneNumbers = phone
        ds.OtherPatientIDsSequence = [pydicom.Dataset()]
        ds.OtherPatientIDsSequence[0].PatientID = card
        ds.OtherPatientIDsSequence[0].TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence[0].IssuerOfPatientID = "CN-ID"
        ds.Modality, ds.StudyDate, ds.SeriesDate = modality, date, date
        ds.StudyDescription = ds.SeriesDescription = description
        ds.AccessionNumber = exam.accession
        ds.InstanceNumber = number
        path = folder / f"{number:03d}.dcm"
        ds.save_as(path)
        files.append(path)
        exam.sop_uids.append(str(ds.SOPInstanceUID))
    return exam, files


FACILITIES = {"RIS_A": "hosp-a", "RIS_B": "hosp-b"}  # HL7 sending facility → institution code


def _seed(site: PhoneSite, tmp: Path, hl7_port: int) -> None:
    # code, hospital, patient ID, modality, date, description, report by HL7?; the patient's exams newest first
    plan = [("hosp-a", "云影第一医院", "PA-1", "CT", "20261120", "CT CHEST", True),
            ("hosp-a", "云影第一医院", "PA-1", "MR", "20261002", "MR HEAD", False),
            ("hosp-b", "云影中心医院", "PB-9", "CT", "20250611", "CT ABDOMEN", False)]
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

    def store(code: str, exam: Exam, files: list[Path], by_hl7: bool) -> None:
        exam.hospital = site.hospitals[code]
        stored = stow(site.server, technician[code], files)
        assert stored.status_code == 200, stored.text
        findings = f"{exam.description}: no abnormality."
        if by_hl7:  # the RIS sends the final report over MLLP; the accession (OBR-18) names the exam
            facility = next(f for f, c in FACILITIES.items() if c == code)
            message = oru(f"MOB-{exam.accession}", exam.accession, "F", facility=facility, findings=findings,
                          impression="Normal study.")
            assert send(hl7_port, [message], tmp) == [("AA", f"MOB-{exam.accession}")]
            return
        report = site.api("POST", "/api/reports", site.staff[code], json={
            "study_uid": exam.study_uid, "status": "final", "findings": findings, "impression": "Normal study.",
            "verifier": "Dr Wang"})
        assert report.status_code == 201, report.text

    for code, _name, patient_id, modality, date, description, by_hl7 in plan:
        exam, files = _make_exam(tmp / f"{code}-{date}", patient_id=patient_id, modality=modality, date=date,
                                 description=description)
        store(code, exam, files, by_hl7)
        site.exams.append(exam)
    other, files = _make_exam(tmp / "other", patient_id="PA-2", modality="CT", date="20261115",
                              description="CT KNEE", phone=OTHER_PHONE, card=OTHER_ID_CARD, name="Li^Na=李^娜")
    store("hosp-a", other, files, False)
    site.other = other

    deadline = time.monotonic() + 300  # film sheets are made by the server's job worker
    for exam in site.exams:
        while True:
            films = site.api("GET", f"/api/studies/{exam.study_uid}/films", site.staff_of(exam))
            assert films.status_code == 200, films.text
            if films.json()["state"] == "ready":
                break
            assert time.monotonic() < deadline, f"film of {exam.description} not ready: {films.text}"
            time.sleep(0.5)


@pytest.fixture(scope="package")
def phone_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneSite]:
    dist = mobile_built()
    root = tmp_path_factory.mktemp("mobile-app")
    hl7_port = free_port()
    server = ServerProcess(root / "data", f"sqlite:///{root / 'data' / 'index.sqlite3'}", open_dicom=False,
                           env={"YUNYING_LOGIN_RATE_PER_MINUTE": "10000", "YUNYING_PUBLIC_RATE_PER_MINUTE": "100000",
                                "YUNYING_VIEWER_DIST": str(dist), "YUNYING_HL7_PORT": str(hl7_port),
                                "YUNYING_HL7_FACILITIES": json.dumps(FACILITIES),
                                **{f"YUNYING_{name.upper()}": value for name, value in FIELD_KEYS.items()}})
    server.env["YUNYING_PUBLIC_URL"] = server.url
    (root / "data").mkdir()
    server.start()
    try:
        with chromium() as browser:
            site = PhoneSite(server, browser)
            _seed(site, root / "studies", hl7_port)
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
