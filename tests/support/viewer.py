"""The web viewer in a real browser: one ``yunying serve`` with data, Debian's Chromium with WebGL2 through
SwiftShader, driven by Playwright; a signed-in page per test; screenshots kept under ``test-artifacts/``."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.server import ServerProcess

CHROMIUM = "/usr/bin/chromium"
# WebGL2 without a GPU (SwiftShader); the rest keeps Chromium off this closed network.
FLAGS = ["--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-quic", "--ignore-gpu-blocklist"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "viewer"
PASSWORD = "Viewer-pass-word-42"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "dicom"
CT_DIR = SHARED / "ct_abdomen_pancreas_tcia"


@dataclass
class ViewerSite:
    server: ServerProcess
    browser: Browser

    def user(self, username: str, roles: str = "radiologist") -> str:
        made = self.server.cli("user", "create", username, "--roles", roles, "--institution", "default",
                               "--password", PASSWORD)
        assert made.returncode == 0 or "exists" in made.stderr + made.stdout, made.stderr
        return username

    @contextmanager
    def page(self, username: str = "rad-viewer", width: int = 1600, height: int = 900,
             **context_options: Any) -> Iterator[Page]:
        """A fresh browser profile signed in as ``username`` through the sign-in form."""
        context: BrowserContext = self.browser.new_context(viewport={"width": width, "height": height},
                                                           base_url=self.server.url, **context_options)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            sign_in(page, username)
            page.errors = errors  # type: ignore[attr-defined]
            yield page
        finally:
            context.close()

    def load(self, *paths: Path) -> None:
        for path in paths:
            loaded = self.server.cli("load", str(path))
            assert loaded.returncode == 0, loaded.stderr[-2000:]


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/ui/login?next=/viewer")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/viewer*")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def open_study(page: Page, study_uid: str, extra: str = "") -> None:
    page.goto(f"/viewer?study={study_uid}{extra}")
    page.wait_for_function("() => document.body.dataset.viewerReady === 'true' || !!document.querySelector('.yy-error')",
                           timeout=60_000)


def wait_rendered(page: Page, viewport_id: str = "vp-0", timeout: float = 60_000) -> None:
    """Until the viewport shows an image (its current image is loaded and drawn)."""
    page.wait_for_function(
        """(id) => { const v = window.yunyingViewer?.ctx.engine.getViewport(id);
                     return !!(v && v.getCurrentImageId && v.getCurrentImageId() && v.csImage); }""",
        arg=viewport_id, timeout=timeout)
    page.wait_for_timeout(300)


def canvas_stats(page: Page, viewport_id: str = "vp-0") -> dict[str, float]:
    """Mean, spread and a checksum of the viewport's canvas pixels (what the radiologist sees)."""
    result: dict[str, float] = page.evaluate(
        """(id) => { const v = window.yunyingViewer.ctx.engine.getViewport(id); const c = v.getCanvas();
             const copy = document.createElement('canvas'); copy.width = c.width; copy.height = c.height;
             const g = copy.getContext('2d'); g.drawImage(c, 0, 0);
             const d = g.getImageData(0, 0, c.width, c.height).data; let sum = 0, sq = 0, hash = 0, n = 0;
             for (let i = 0; i < d.length; i += 4) { const l = d[i] + d[i+1] + d[i+2]; sum += l; sq += l * l; n++;
               hash = (hash * 31 + l) % 1000000007; }
             const mean = sum / n;
             return { mean, sd: Math.sqrt(sq / n - mean * mean), hash, width: c.width, height: c.height }; }""",
        viewport_id)
    return result


def study_uid_of(folder: Path) -> str:
    import pydicom

    first = next(p for p in sorted(folder.iterdir()) if p.is_file() and p.name != "DICOMDIR")
    return str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID)


@contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run scripts/system-deps.sh (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="yy-chromium-")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)


def viewer_built() -> None:
    index = Path(__file__).resolve().parents[2] / "viewer" / "dist" / "index.html"
    if not index.exists() or not index.with_name("mobile-viewer.html").exists():
        subprocess.run(["bash", "scripts/build-viewer.sh"], cwd=index.parents[2], check=True)


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)[:4000]


# --- synthetic images of known geometry and values (2D tools and overlays tests) ---------------------------

SYNTHETIC_SPACING = 0.7
SYNTHETIC_INTERCEPT = -1024
#: (row0, row1, col0, col1, stored value) half-open blocks on a background; asymmetric on purpose, so that
#: rotations and flips change the picture
SYNTHETIC_BACKGROUND = 1064  # HU 40
SYNTHETIC_BLOCKS = [(100, 200, 300, 400, 1424),  # HU 400, upper right
                    (350, 400, 80, 180, 24)]  # HU -1000 (air), lower left


@dataclass
class SyntheticStudies:
    ct: str  # 5 axial slices, Pixel Spacing 0.7\0.7
    no_spacing: str  # 1 slice without any pixel spacing
    imager_only: str  # projection image with Imager Pixel Spacing only


def _synthetic_image(folder: Path, study: str, series: str, number: int, *, modality: str = "CT",
                     spacing: str | None = "pixel", name: str = "Zhang^San=张^三") -> None:
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

    pixels = np.full((512, 512), SYNTHETIC_BACKGROUND, dtype=np.uint16)
    for row0, row1, col0, col1, value in SYNTHETIC_BLOCKS:
        pixels[row0:row1, col0:col1] = value
    sop_class = CTImageStorage if modality == "CT" else DigitalXRayImageStorageForPresentation
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SOPClassUID = sop_class
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = name
    ds.PatientID = "SYN-0001"
    ds.PatientSex = "M"
    ds.PatientAge = "045Y"
    ds.InstitutionName = "Synthetic Hospital"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.StudyDescription = "Synthetic geometry"
    ds.SeriesDescription = f"Synthetic {modality}"
    ds.AccessionNumber = "SYN1"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.RescaleSlope = 1
        ds.RescaleIntercept = SYNTHETIC_INTERCEPT
        ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-179.2, -179.2, -2.5 * number]
        ds.SliceLocation = -2.5 * number
        ds.SliceThickness = 2.5
    if spacing == "pixel":
        ds.PixelSpacing = [SYNTHETIC_SPACING, SYNTHETIC_SPACING]
    elif spacing == "imager":
        ds.ImagerPixelSpacing = [SYNTHETIC_SPACING, SYNTHETIC_SPACING]
    ds.PixelData = pixels.tobytes()
    ds.save_as(folder / f"{series[-12:]}-{number}.dcm", enforce_file_format=True)


def load_synthetic(site: ViewerSite) -> SyntheticStudies:
    """Make and load the synthetic studies once per server (later calls return the same UIDs)."""
    cached: SyntheticStudies | None = getattr(site, "_synthetic", None)
    if cached:
        return cached
    from pydicom.uid import generate_uid

    folder = Path(tempfile.mkdtemp(prefix="yy-synthetic-"))
    made = SyntheticStudies(generate_uid(), generate_uid(), generate_uid())
    series = generate_uid()
    for number in range(1, 6):
        _synthetic_image(folder, made.ct, series, number)
    _synthetic_image(folder, made.no_spacing, generate_uid(), 1, spacing=None)
    _synthetic_image(folder, made.imager_only, generate_uid(), 1, modality="DX", spacing="imager")
    site.load(folder)
    shutil.rmtree(folder, ignore_errors=True)
    site._synthetic = made  # type: ignore[attr-defined]
    return made


def image_to_page(page: Page, column: float, row: float, viewport_id: str = "vp-0") -> tuple[float, float]:
    """Page coordinates of an image pixel position (column, row) in a stack viewport, through Cornerstone."""
    point: list[float] = page.evaluate(
        """([id, column, row]) => { const yy = window.yunyingViewer; const v = yy.ctx.engine.getViewport(id);
             const world = yy.cs.core.utilities.imageToWorldCoords(v.getCurrentImageId(), [column, row]);
             const canvas = v.worldToCanvas(world); const box = v.canvas.getBoundingClientRect();
             return [box.left + canvas[0], box.top + canvas[1]]; }""", [viewport_id, column, row])
    return point[0], point[1]


def annotations(page: Page, tool_name: str | None = None) -> list[dict[str, Any]]:
    """Cornerstone's annotation state (tool name, handles in world coordinates, cached statistics)."""
    found: list[dict[str, Any]] = page.evaluate(
        """(tool) => window.yunyingViewer.cs.tools.annotation.state.getAllAnnotations()
             .filter((a) => !tool || a.metadata.toolName === tool)
             .map((a) => ({ tool: a.metadata.toolName, points: a.data.handles.points,
                            stats: JSON.parse(JSON.stringify(Object.values(a.data.cachedStats || {})[0] || {})) }))""",
        tool_name)
    return found


def derive_ct_study(dest: Path, *, patient_id: str, slices: list[int], shift_mm: float = 0.0,
                    patient_name: str = "", modality: str = "CT", body_part: str = "ABDOMEN", institution: str = "",
                    study_date: str = "20240101", description: str = "", accession: str = "") -> dict[str, Any]:
    """A new study made from shared CT slices (indices into the sorted files): new Study/Series/SOP UIDs, the
    given patient and descriptive attributes, positions moved ``shift_mm`` along z. Returns the study UID,
    the series UID, the written files and, per SOP Instance UID, the z position."""
    import pydicom
    from pydicom.uid import generate_uid

    dest.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in CT_DIR.iterdir() if p.is_file() and p.name != "DICOMDIR")
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    files: list[Path] = []
    z_by_sop: dict[str, float] = {}
    for number, index in enumerate(slices, start=1):
        ds = pydicom.dcmread(sources[index])
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID, ds.PatientName = patient_id, patient_name or patient_id
        ds.Modality, ds.BodyPartExamined, ds.InstitutionName = modality, body_part, institution
        ds.StudyDate = ds.SeriesDate = study_date
        ds.StudyDescription = ds.SeriesDescription = description
        ds.AccessionNumber = accession
        ds.InstanceNumber = number
        position = [float(v) for v in ds.ImagePositionPatient]
        position[2] += shift_mm
        ds.ImagePositionPatient = position
        if "SliceLocation" in ds:
            ds.SliceLocation = position[2]
        z_by_sop[str(ds.SOPInstanceUID)] = position[2]
        path = dest / f"{number:03d}.dcm"
        ds.save_as(path)
        files.append(path)
    return {"study": str(study_uid), "series": str(series_uid), "files": files, "z": z_by_sop}


def current_sop(page: Page, viewport_id: str) -> str:
    """SOP Instance UID of the image a viewport shows (from its wadors image id)."""
    image_id: str = page.evaluate(
        "(id) => window.yunyingViewer.ctx.engine.getViewport(id).getCurrentImageId()", viewport_id)
    return image_id.split("/instances/")[1].split("/")[0]
