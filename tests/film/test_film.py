"""Film sheets composed from real CT and CR data on a real index (SQLite and PostgreSQL).

Proves: the predicted images in the predicted order (key images of the viewer and of a KOS first,
localizer and non-images left out, a long series evenly subsampled to the sheet budget); every cell's
pixels are the archive's reference rendering with the cell's window (MONOCHROME1 and rescale on CR);
header fields with a Chinese name; the PDF has a 14 x 17 inch page per sheet; a crash in the middle of
a composition leaves the previous film intact; a final report and later images each queue one film.
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageFont
from pypdf import PdfReader
from sqlalchemy import select, update

from tests.film.studies import CR_FILES, PATIENT_ID, ct_study
from tests.support.archive import default_institution
from yunying.annotations import store as annotations
from yunying.auth.credentials import create_user
from yunying.compose import Archive, job_handlers
from yunying.dicom.render import render_frame
from yunying.film.service import FILM, FilmComposer, FilmConfig, film_pdf, film_set, sheet_png
from yunying.film.sheets import _has_glyphs, find_font
from yunying.index.access import Scope
from yunying.index.db import write_session
from yunying.index.models import Institution, Job, utcnow
from yunying.jobs.worker import Worker
from yunying.reports import service as reports
from yunying.reports.service import ReportInput, Source, Status
from yunying.shares import exams as share_exams
from yunying.storage.base import BlobInfo, BlobStore

DPI = 100


def _store(archive: Archive, files: list[Path]) -> int:
    institution = default_institution(archive)
    for path in files:
        assert archive.ingest.store_instance(path.read_bytes(), "test", institution_id=institution).ok, path
    return institution


def _assert_cells_are_reference_renderings(archive: Archive, study_uid: str, sheet: Any, png: bytes,
                                           datasets: dict[str, pydicom.Dataset]) -> None:
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)
    for cell in sheet.images:
        x, y, w, h = cell["box"]
        window = (cell["window"]["center"], cell["window"]["width"]) if cell["window"] else None
        reference = render_frame(datasets[cell["sop_uid"]], cell["frame"], media_type="image/png", window=window,
                                 viewport=(w, h))
        expected = np.asarray(Image.open(io.BytesIO(reference)).convert("L"), dtype=np.int16)
        assert expected.shape == (h, w), cell
        crop = picture[y:y + h, x:x + w]
        assert np.abs(crop - expected).max() <= 2, cell  # same pipeline, same resampling
        assert crop.std() > 5, cell  # an image, not an empty box


def test_ct_film_order_pixels_header_and_pdf(archive: Archive, tmp_path: Path) -> None:
    study = ct_study(tmp_path / "ct", 40, localizer=True, kos_number=30)
    institution = _store(archive, study.files)
    user = create_user(archive.sessions, "rad-film", "Film-Pass-0123!", "radiologist", institution=institution)
    annotations.put(archive.sessions, Scope(user, institution), annotations.Owner(user, institution), study.study_uid,
                    [], [annotations.KeyImage(study.by_number[10])], 0)

    sheets = FilmComposer(archive.sessions, archive.blobs, FilmConfig(max_sheets=1, dpi=DPI)).compose(study.study_uid, 1)
    films = film_set(archive.sessions, Scope(None, institution), study.study_uid)
    assert sheets == 1 and films.state == "ready" and films.version == 1
    [sheet] = films.sheets
    # One sheet of the largest CT layout (5x6 = 30): 2 key images, then 28 of the 40 slices evenly spread.
    assert sheet.layout == "5x6" and (sheet.width, sheet.height) == (14 * DPI, 17 * DPI)
    predicted = [10, 30] + [round(i * 39 / 27) + 1 for i in range(28)]
    assert [c["instance_number"] for c in sheet.images] == predicted
    assert [c["key"] for c in sheet.images] == [True, True] + [False] * 28
    assert [c["sop_uid"] for c in sheet.images[:2]] == [study.by_number[10], study.by_number[30]]
    assert {c["sop_uid"] for c in sheet.images}.isdisjoint({study.localizer, study.kos})
    assert [(c["row"], c["col"]) for c in sheet.images[:7]] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1)]
    assert sheet.window == {"center": 60.0, "width": 400.0} and all(c["voi"] == "window" for c in sheet.images)
    assert all(c["spacing"] == "pixel" for c in sheet.images)

    with archive.sessions() as session:
        hospital = session.scalar(select(Institution.name).where(Institution.id == institution))
    assert films.header == {"institution": hospital, "patient_name": "王小东 Wang XiaoDong", "sex": "M", "age": "66Y",
                            "patient_id": PATIENT_ID, "date": "2026-11-20", "modality": "CT",
                            "description": "CT ABDOMEN", "accession": "FILM-ACC-1"}
    font = find_font()
    assert font is not None and "wqy" in font.name and _has_glyphs(ImageFont.truetype(str(font), 20), "王小东")

    png = sheet_png(archive.sessions, archive.blobs, Scope(None, institution), study.study_uid, 1)
    image = Image.open(io.BytesIO(png))
    assert image.mode == "L" and image.size == (14 * DPI, 17 * DPI)
    header_band = np.asarray(image)[: int(0.85 * DPI)]
    assert (header_band > 128).sum() > 500  # the header's text is printed
    wanted = {c["sop_uid"] for c in sheet.images}
    datasets = {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(p) for p in study.files)
                if str(ds.SOPInstanceUID) in wanted}
    _assert_cells_are_reference_renderings(archive, study.study_uid, sheet, png, datasets)

    pdf = PdfReader(io.BytesIO(film_pdf(archive.sessions, archive.blobs, Scope(None, institution), study.study_uid)))
    assert len(pdf.pages) == 1
    assert (float(pdf.pages[0].mediabox.width), float(pdf.pages[0].mediabox.height)) == (14 * 72, 17 * 72)


class CrashingBlobs:
    """The real filesystem store, failing on the n-th ``put`` (a crash in the middle of a composition)."""

    def __init__(self, inner: BlobStore, fail_at: int) -> None:
        self.inner, self.fail_at, self.puts, self.name = inner, fail_at, 0, inner.name

    def put(self, key: str, data: bytes) -> None:
        self.puts += 1
        if self.puts == self.fail_at:
            raise OSError("disk gone")
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def iter_blobs(self, prefix: str = "") -> Any:
        return self.inner.iter_blobs(prefix)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)


def _keys(archive: Archive, study_uid: str) -> set[str]:
    found: list[BlobInfo] = list(archive.blobs.iter_blobs(f"films/{study_uid}/"))
    return {b.key for b in found}


def test_cr_film_and_a_crash_mid_composition_keeps_the_previous_film(archive: Archive) -> None:
    institution = _store(archive, CR_FILES)
    study_uid = str(pydicom.dcmread(CR_FILES[0], stop_before_pixels=True).StudyInstanceUID)
    scope = Scope(None, institution)
    config = FilmConfig(dpi=DPI)
    assert [e.films for e in share_exams.list_exams(archive.sessions, scope, anonymous=False)] == [0]
    assert FilmComposer(archive.sessions, archive.blobs, config).compose(study_uid, 1) == 2
    films = film_set(archive.sessions, scope, study_uid)
    # Three CR images (one per series): 1x2 sheets, series order; MONOCHROME1 with rescale, imager spacing.
    assert [s.layout for s in films.sheets] == ["1x2", "1x2"]
    assert [c["series_number"] for s in films.sheets for c in s.images] == [1, 2, 3]
    assert all(c["spacing"] == "imager" and c["window"] == {"center": 1600.0, "width": 2800.0}
               for s in films.sheets for c in s.images)
    datasets = {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, CR_FILES)}
    before = {s.n: sheet_png(archive.sessions, archive.blobs, scope, study_uid, s.n) for s in films.sheets}
    for sheet in films.sheets:
        _assert_cells_are_reference_renderings(archive, study_uid, sheet, before[sheet.n], datasets)
    old_keys = _keys(archive, study_uid)

    crashing = CrashingBlobs(archive.blobs, fail_at=2)  # the PDF is written, then the first sheet fails
    with pytest.raises(OSError):
        FilmComposer(archive.sessions, crashing, config).compose(study_uid, 2)  # type: ignore[arg-type]
    after = film_set(archive.sessions, scope, study_uid)
    assert after.version == 1 and [s.n for s in after.sheets] == [1, 2]
    assert {n: sheet_png(archive.sessions, archive.blobs, scope, study_uid, n) for n in before} == before
    assert _keys(archive, study_uid) > old_keys  # the unfinished set's PDF is left over …

    assert FilmComposer(archive.sessions, archive.blobs, config).compose(study_uid, 3) == 2
    assert film_set(archive.sessions, scope, study_uid).version == 3
    assert {k.split("/")[2] for k in _keys(archive, study_uid)} == {"3"}  # … and swept with the old set
    assert len(PdfReader(io.BytesIO(film_pdf(archive.sessions, archive.blobs, scope, study_uid))).pages) == 2
    # An older composition finishing late does not replace a newer film.
    assert FilmComposer(archive.sessions, archive.blobs, config).compose(study_uid, 2) == 2
    assert film_set(archive.sessions, scope, study_uid).version == 3
    assert {k.split("/")[2] for k in _keys(archive, study_uid)} == {"3"}
    # the exam lists of patients and share visitors count the current film's sheets (not every version's)
    assert [e.films for e in share_exams.list_exams(archive.sessions, scope, anonymous=False)] == [2]


def _film_jobs(archive: Archive) -> list[Job]:
    with archive.sessions() as session:
        return list(session.scalars(select(Job).where(Job.kind == FILM).order_by(Job.id)))


def test_final_report_and_later_images_each_queue_one_film(archive: Archive, tmp_path: Path) -> None:
    study = ct_study(tmp_path / "ct", 5, accession="FILM-ACC-Q")
    institution = _store(archive, study.files[2:])  # slices 3..1 (written in reverse): 3 images
    scope = Scope(None, institution)
    assert film_set(archive.sessions, scope, study.study_uid).state == "none" and _film_jobs(archive) == []
    reports.receive(archive.sessions, ReportInput(institution, Status.PRELIMINARY, Source.HL7,
                                                  accession_number="FILM-ACC-Q", source_ref="q1"))
    assert _film_jobs(archive) == []  # only a final report makes a film
    reports.receive(archive.sessions, ReportInput(institution, Status.FINAL, Source.HL7,
                                                  accession_number="FILM-ACC-Q", source_ref="q2"))
    [job] = _film_jobs(archive)
    assert job.state == "queued" and job.payload == {"study": study.study_uid}
    assert film_set(archive.sessions, scope, study.study_uid).state == "pending"
    worker = Worker(archive.sessions, job_handlers(archive), name="test")
    assert worker.run_once() is not None
    films = film_set(archive.sessions, scope, study.study_uid)
    assert films.state == "ready" and films.version == job.id
    assert [c["instance_number"] for s in films.sheets for c in s.images] == [1, 2, 3]

    _store(archive, study.files[:2])  # two more slices for the reported exam: one job, after they settle
    jobs = _film_jobs(archive)
    assert Counter(j.state for j in jobs) == Counter({"done": 1, "queued": 1})
    assert jobs[-1].run_after.replace(tzinfo=None) > (utcnow() + timedelta(seconds=20)).replace(tzinfo=None)
    assert worker.run_once() is None  # still settling
    with write_session(archive.sessions) as session:
        session.execute(update(Job).where(Job.id == jobs[-1].id).values(run_after=utcnow()))
        session.commit()
    assert worker.run_once() is not None
    films = film_set(archive.sessions, scope, study.study_uid)
    assert films.version == jobs[-1].id and films.state == "ready" and not films.updating
    assert [c["instance_number"] for s in films.sheets for c in s.images] == [1, 2, 3, 4, 5]
    assert {k.split("/")[2] for k in _keys(archive, study.study_uid)} == {str(jobs[-1].id)}
