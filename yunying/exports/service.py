"""Download use cases: make a study's download, look it up, hand out a part, purge expired ones.

Built synchronously in the request for now: every instance is read (checksum-verified), optionally
de-identified, staged on local disk under ``data_dir/tmp``, then packed part by part into the blob
store under ``exports/<id>/part-<n>.zip``. Memory holds one instance at a time; local disk needs
the study plus one part. A very large study therefore makes a long request (minutes for tens of
GB): queueing it as a job is the next step (docs/cloudfilm.md §6).
"""

from __future__ import annotations

import hashlib
import mmap
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.archive.retrieve import RetrieveService
from yunying.deid import BurnedInAnnotation, Deidentifier
from yunying.errors import CorruptBlob, NotFound, YunyingError
from yunying.exports.package import Staged, build_parts, new_password, pixel_data_equal
from yunying.index.access import Scope
from yunying.index.db import write_session
from yunying.index.models import Download, Study
from yunying.storage.base import BlobStore

PREFIX = "exports"


class Expired(YunyingError):
    """The download has expired: its parts are deleted."""


class Owner(Protocol):
    """What identifies who may fetch a download (``yunying.auth.access.Principal`` fits)."""

    @property
    def user_id(self) -> int | None: ...

    @property
    def via(self) -> str: ...

    @property
    def extra(self) -> Mapping[str, str]: ...


def owner_key(principal: Owner) -> str:
    """The share, the patient, or the user: the parts are theirs (a share's visitors share its downloads)."""
    if principal.extra.get("share"):
        return f"share:{principal.extra['share']}"
    if principal.extra.get("identity"):
        return f"patient:{principal.extra['identity']}"
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    return f"via:{principal.via}"


@dataclass(frozen=True)
class PartView:
    n: int
    size: int
    key: str


@dataclass(frozen=True)
class DownloadView:
    id: str
    state: str
    anonymous: bool
    parts: list[PartView]
    total_size: int
    instances: int
    withheld: int
    created_at: datetime
    valid_until: datetime
    study_uid: str

    @classmethod
    def of(cls, row: Download, study_uid: str) -> DownloadView:
        parts = [PartView(int(p["n"]), int(p["size"]), str(p["key"])) for p in cast(list[dict[str, Any]], row.parts)]
        return cls(row.id, row.state, row.anonymous, parts, row.total_size, row.instances, row.withheld,
                   _aware(row.created_at), _aware(row.valid_until), study_uid)


@dataclass(frozen=True)
class Created:
    view: DownloadView
    password: str  # shown once; stored nowhere


class DownloadService:
    def __init__(self, sessions: sessionmaker[Session], blobs: BlobStore, retrieve: RetrieveService, *,
                 part_bytes: int, valid_hours: int, workdir: Path) -> None:
        self.sessions, self.blobs, self.retrieve = sessions, blobs, retrieve
        self.part_bytes, self.valid_hours, self.workdir = part_bytes, valid_hours, workdir

    def create(self, scope: Scope, study_uid: str, owner: str, actor: str, deid: Deidentifier | None,
               now: datetime | None = None) -> Created:
        """Package the study ``scope`` may read (:class:`NotFound` otherwise); the password comes back once."""
        now = now or datetime.now(UTC)
        self.purge(now)  # expired downloads go whenever a new one is made (and by `yunying downloads purge`)
        instances = self.retrieve.list(scope, study_uid)
        download_id = secrets.token_urlsafe(18)
        password = new_password()
        with write_session(self.sessions) as session:
            study_fk = session.scalars(select(Study.id).where(Study.study_uid == study_uid)).one()
            session.add(Download(id=download_id, study_fk=study_fk, owner=owner, actor=actor[:200],
                                 anonymous=deid is not None, state="pending", parts=[], created_at=now,
                                 valid_until=now + timedelta(hours=self.valid_hours)))
            session.commit()
        self.workdir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"download-{download_id}-", dir=self.workdir))
        try:
            staged, withheld = self._stage(instances, deid, folder / "staged")
            parts = self._store_parts(download_id, staged, password, folder)
        except BaseException:
            self._finish(download_id, "failed", [], 0, 0)
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self._finish(download_id, "ready", parts, len(staged), withheld)
        return Created(self.get(download_id, owner, now), password)

    def _stage(self, instances: list[Any], deid: Deidentifier | None, folder: Path) -> tuple[list[Staged], int]:
        folder.mkdir(parents=True)
        staged: list[Staged] = []
        withheld = 0
        for index, inst in enumerate(instances):
            data = self.retrieve.read(inst)  # the stored bytes, checksum-verified
            if deid is not None:
                try:
                    produced = deid.file(data)
                except BurnedInAnnotation:
                    withheld += 1
                    continue
                if not pixel_data_equal(data, produced):
                    raise CorruptBlob(f"de-identification changed the pixel data of instance {inst.id}")
                data = produced
            path = folder / f"{index:08d}.dcm"
            path.write_bytes(data)
            staged.append(Staged(path, len(data)))
        return staged, withheld

    def _store_parts(self, download_id: str, staged: list[Staged], password: str, folder: Path) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for part in build_parts(staged, self.part_bytes, password, folder):
            key = f"{PREFIX}/{download_id}/part-{part.n}.zip"
            with part.path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                self.blobs.put(key, cast(bytes, mapped))  # mapped, not read: a part may be hundreds of MB
                digest = hashlib.sha256(mapped).hexdigest()
            part.path.unlink()
            parts.append({"n": part.n, "size": part.size, "key": key, "sha256": digest, "instances": part.instances})
        return parts

    def _finish(self, download_id: str, state: str, parts: list[dict[str, Any]], instances: int, withheld: int) -> None:
        with write_session(self.sessions) as session:
            row = session.get(Download, download_id)
            if row is not None:
                row.state, row.parts, row.instances, row.withheld = state, parts, instances, withheld
                row.total_size = sum(int(p["size"]) for p in parts)
                session.commit()

    def get(self, download_id: str, owner: str, now: datetime | None = None) -> DownloadView:
        """The download if ``owner`` made it (:class:`NotFound` otherwise, :class:`Expired` after its time)."""
        now = now or datetime.now(UTC)
        with self.sessions() as session:
            found = session.execute(select(Download, Study.study_uid).join(Study, Download.study_fk == Study.id)
                                    .where(Download.id == download_id)).first()
        if found is None or found[0].owner != owner:
            raise NotFound("no such download")
        row, study_uid = found
        if row.deleted_at is not None or _aware(row.valid_until) <= now:
            raise Expired("the download has expired: make a new one")
        return DownloadView.of(row, study_uid)

    def part(self, download_id: str, owner: str, n: int) -> tuple[DownloadView, PartView, Path | None]:
        """Part ``n`` of the download and, when the blob store has one, a local file to stream it from."""
        view = self.get(download_id, owner)
        for part in view.parts:
            if part.n == n:
                return view, part, self.blobs.local_path(part.key)
        raise NotFound("no such part")

    def purge(self, now: datetime | None = None) -> int:
        """Delete the parts of every expired download; return how many downloads were purged."""
        now = now or datetime.now(UTC)
        with write_session(self.sessions) as session:
            rows = session.scalars(select(Download).where(Download.deleted_at.is_(None), Download.valid_until <= now)
                                   .with_for_update(skip_locked=True)).all()
            for row in rows:
                for part in cast(list[dict[str, Any]], row.parts):
                    self.blobs.delete(str(part["key"]))
                row.deleted_at, row.state = now, "expired"
            session.commit()
        return len(rows)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
