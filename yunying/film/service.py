"""Film use cases: request a film (queued), compose it (the job handler), read it (state, PNG, PDF).

A final (or amended) report enqueues a ``film`` job in the report's own transaction
(:class:`FilmOnFinal`, an ``ON_FINAL`` listener); new images for an exam with a final report enqueue
one too, ``film_settle_seconds`` after the last of them (:class:`FilmOnNewImages`, an ingest hook).
The job (:class:`FilmComposer`) writes the new set's blobs under ``films/<study uid>/<version>/`` and
then swaps the ``film_sheet`` rows in one transaction; the old set's blobs are deleted after the
commit. A crash before the commit leaves the previous set as it was (its new blobs are swept by the
next successful composition). The version is the composing job's id, so a newer request always wins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from yunying.dicom.parse import ParsedInstance
from yunying.errors import NotFound
from yunying.film.layout import KEY_OBJECT_SELECTION
from yunying.film.select import FilmImage, select_images
from yunying.film.sheets import SheetPainter, find_font, header_of, pdf_bytes, png_bytes
from yunying.index.access import Scope, visible_study
from yunying.index.db import write_session
from yunying.index.models import FilmSheet, Institution, Report, Study, utcnow
from yunying.jobs import queue
from yunying.jobs.queue import JobInfo
from yunying.storage.base import BlobStore, get_verified

log = logging.getLogger(__name__)

FILM = "film"  # the job kind
FINAL_STATUSES = ("final", "amended")


@dataclass(frozen=True)
class FilmConfig:
    max_sheets: int = 6
    dpi: int = 150
    settle_seconds: float = 30.0
    font: str = ""
    max_attempts: int = 5

    @classmethod
    def from_settings(cls, settings: Any) -> FilmConfig:
        return cls(settings.film_max_sheets, settings.film_dpi, settings.film_settle_seconds, settings.film_font,
                   settings.job_max_attempts)


def _key(study_fk: int) -> str:
    return f"study:{study_fk}"


def request_film(session: Session, study_fk: int, study_uid: str, config: FilmConfig, delay: float = 0.0) -> int:
    """Queue the composition of a study's film in the caller's transaction (merged with one already queued)."""
    return queue.enqueue(session, FILM, {"study": study_uid}, delay=delay, dedupe_key=_key(study_fk),
                         max_attempts=config.max_attempts)


@dataclass(frozen=True)
class FilmOnFinal:
    """``yunying.reports.events`` listener: a final / amended report of a stored exam queues its film."""

    config: FilmConfig

    def __call__(self, session: Session, report: Report) -> None:
        if report.study_fk is None:
            return
        study_uid = session.scalar(select(Study.study_uid).where(Study.id == report.study_fk))
        if study_uid is not None:
            request_film(session, report.study_fk, study_uid, self.config)


@dataclass(frozen=True)
class FilmOnNewImages:
    """``Ingest.after_store`` hook: an image (or key object selection) for an exam whose report is final
    queues a new film, ``settle_seconds`` after the last such image."""

    sessions: sessionmaker[Session]
    config: FilmConfig

    def __call__(self, parsed: ParsedInstance, ds: Dataset, institution_id: int | None) -> None:
        if not parsed.has_pixels and parsed.sop_class_uid != KEY_OBJECT_SELECTION:
            return
        final = and_(Report.study_fk == Study.id, Report.status.in_(FINAL_STATUSES))
        with self.sessions() as session:
            study_fk = session.scalar(select(Study.id).where(Study.study_uid == parsed.study_uid)
                                      .where(select(Report.id).where(final).exists()))
        if study_fk is None:
            return
        with write_session(self.sessions) as session:
            request_film(session, study_fk, parsed.study_uid, self.config, delay=self.config.settle_seconds)
            session.commit()


@dataclass
class FilmComposer:
    """The ``film`` job handler: compose the study's sheets and swap them in."""

    sessions: sessionmaker[Session]
    blobs: BlobStore
    config: FilmConfig = field(default_factory=FilmConfig)

    def __call__(self, job: JobInfo) -> None:
        self.compose(str(job.payload["study"]), job.id)

    def _read(self, image: FilmImage) -> Dataset:
        return dcmread(BytesIO(get_verified(self.blobs, image.blob_key, image.checksum)))

    def compose(self, study_uid: str, version: int) -> int:
        """Compose and store version ``version`` of the film; return its number of sheets."""
        with self.sessions() as session:
            study = session.scalar(select(Study).where(Study.study_uid == study_uid))
            if study is None:
                return 0  # the study was deleted since
            selection = select_images(session, self.blobs, study.id, self.config.max_sheets)
            institution = session.scalar(select(Institution.name).where(Institution.id == study.institution_fk)) or ""
        rows: list[FilmSheet] = []
        if selection.images:
            font = find_font(self.config.font)
            header = header_of(self._read(selection.images[0]), institution, selection.modality, font)
            sheets = SheetPainter(self.config.dpi, font).paint(selection.images, selection.layout, header, self._read)
            prefix = f"films/{study_uid}/{version}"
            pdf = pdf_bytes([s.picture for s in sheets])
            self.blobs.put(f"{prefix}/film.pdf", pdf)
            now = utcnow()
            for sheet in sheets:
                png = png_bytes(sheet.picture)
                self.blobs.put(f"{prefix}/{sheet.n}.png", png)
                first = sheet.cells[0].image
                rows.append(FilmSheet(
                    study_fk=study.id, version=version, n=sheet.n, n_sheets=len(sheets), blob_key=f"{prefix}/{sheet.n}.png",
                    size=len(png), pdf_key=f"{prefix}/film.pdf", pdf_size=len(pdf), width=sheet.picture.width,
                    height=sheet.picture.height, layout=sheet.layout.name,
                    window={"center": first.window[0], "width": first.window[1]} if first.window else None,
                    images=[_cell_json(c.image, c.row, c.col, c.box, c.spacing) for c in sheet.cells],
                    header=header.as_dict(), created_at=now))
        self._swap(study.id, study_uid, version, rows)
        return len(rows)

    def _swap(self, study_fk: int, study_uid: str, version: int, rows: list[FilmSheet]) -> None:
        new_keys = {r.blob_key for r in rows} | {r.pdf_key for r in rows}
        with write_session(self.sessions) as session:
            session.execute(select(Study.id).where(Study.id == study_fk).with_for_update())  # one swap at a time
            current = session.scalar(select(func.max(FilmSheet.version)).where(FilmSheet.study_fk == study_fk))
            if current is not None and current > version:  # a newer request composed already: it wins
                session.rollback()
                self._delete(new_keys)
                return
            old = session.execute(select(FilmSheet.blob_key, FilmSheet.pdf_key).where(FilmSheet.study_fk == study_fk)).all()
            session.execute(delete(FilmSheet).where(FilmSheet.study_fk == study_fk))
            session.add_all(rows)
            session.commit()
        self._delete({k for row in old for k in row} - new_keys)
        self._sweep(study_uid, version, new_keys)
        log.info("film of a study: version %d, %d sheets", version, len(rows))

    def _delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                self.blobs.delete(key)
            except Exception as exc:  # an orphan is swept next time
                log.warning("film: could not delete an old sheet: %s", type(exc).__name__)

    def _sweep(self, study_uid: str, version: int, keep: set[str]) -> None:
        """Delete leftovers of older, unfinished compositions of the study (a crash before their commit)."""
        stale = []
        for info in self.blobs.iter_blobs(f"films/{study_uid}/"):
            part = info.key.split("/")[2] if info.key.count("/") >= 3 else ""
            if part.isdigit() and int(part) < version and info.key not in keep:
                stale.append(info.key)
        self._delete(stale)


def _cell_json(image: FilmImage, row: int, col: int, box: tuple[int, int, int, int], spacing: str) -> dict[str, Any]:
    return {"series_uid": image.series_uid, "sop_uid": image.sop_uid, "frame": image.frame, "key": image.key,
            "row": row, "col": col, "box": list(box), "series_number": image.series_number,
            "instance_number": image.instance_number, "voi": image.voi, "spacing": spacing or None,
            "window": {"center": image.window[0], "width": image.window[1]} if image.window else None}


@dataclass(frozen=True)
class SheetView:
    n: int
    width: int
    height: int
    layout: str
    window: dict[str, Any] | None
    images: list[dict[str, Any]]
    size: int


@dataclass(frozen=True)
class FilmSet:
    study_uid: str
    state: str  # ready | pending | none
    version: int | None = None
    header: dict[str, Any] = field(default_factory=dict)
    sheets: list[SheetView] = field(default_factory=list)
    pdf_size: int = 0
    updating: bool = False  # a newer version is queued or being composed


def _visible_study_id(session: Session, scope: Scope, study_uid: str) -> int:
    found = session.scalar(select(Study.id).where(Study.study_uid == study_uid, visible_study(scope)))
    if found is None:
        raise NotFound("no such study")
    return found


def _rows(session: Session, study_fk: int) -> list[FilmSheet]:
    return list(session.scalars(select(FilmSheet).where(FilmSheet.study_fk == study_fk).order_by(FilmSheet.n)))


def film_set(sessions: sessionmaker[Session], scope: Scope, study_uid: str) -> FilmSet:
    """The study's current film (:class:`NotFound` when ``scope`` may not see the study)."""
    with sessions() as session:
        study_fk = _visible_study_id(session, scope, study_uid)
        rows = _rows(session, study_fk)
        waiting = queue.pending(session, FILM, _key(study_fk))
    if not rows:
        return FilmSet(study_uid, "pending" if waiting else "none")
    sheets = [SheetView(r.n, r.width, r.height, r.layout, r.window, list(r.images), r.size) for r in rows]
    return FilmSet(study_uid, "ready", rows[0].version, dict(rows[0].header), sheets, rows[0].pdf_size, waiting)


def sheet_counts(session: Session, study_ids: Iterable[int]) -> dict[int, int]:
    """The number of sheets of each study's current film (studies without a film are left out)."""
    ids = sorted(set(study_ids))
    if not ids:
        return {}
    query = select(FilmSheet.study_fk, func.count()).where(FilmSheet.study_fk.in_(ids)).group_by(FilmSheet.study_fk)
    return {int(study_fk): int(n) for study_fk, n in session.execute(query)}


def sheet_png(sessions: sessionmaker[Session], blobs: BlobStore, scope: Scope, study_uid: str, n: int) -> bytes:
    with sessions() as session:
        study_fk = _visible_study_id(session, scope, study_uid)
        key = session.scalar(select(FilmSheet.blob_key).where(FilmSheet.study_fk == study_fk, FilmSheet.n == n))
    if key is None:
        raise NotFound(f"the film has no sheet {n}")
    return blobs.get(key)


def film_pdf(sessions: sessionmaker[Session], blobs: BlobStore, scope: Scope, study_uid: str) -> bytes:
    with sessions() as session:
        study_fk = _visible_study_id(session, scope, study_uid)
        key = session.scalar(select(FilmSheet.pdf_key).where(FilmSheet.study_fk == study_fk).limit(1))
    if key is None:
        raise NotFound("the study has no film yet")
    return blobs.get(key)


def request(sessions: sessionmaker[Session], scope: Scope, study_uid: str, config: FilmConfig) -> int:
    """Queue a (re)composition of a visible study's film now; return the job id."""
    with write_session(sessions) as session:
        study_fk = _visible_study_id(session, scope, study_uid)
        job_id = request_film(session, study_fk, study_uid, config)
        session.commit()
    return job_id
