"""Retrieval use case: find stored instances, read them verified, transcode, build metadata."""

from __future__ import annotations

import builtins
import gzip
import json
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataset import FileDataset
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from yunying.dicom.json import metadata_json
from yunying.dicom.transcode import transcode
from yunying.errors import NotFound
from yunying.index.access import Scope
from yunying.index.models import Instance, Series, Study
from yunying.index.queries import instances_for
from yunying.storage.base import BlobStore, get_verified

BASE_PLACEHOLDER = "{{YUNYING_BASE}}"


@dataclass(frozen=True)
class StoredInstance:
    """An instance as the index knows it (no ORM objects leave this module)."""

    id: int
    sop_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    blob_key: str
    checksum: str
    size: int
    number_of_frames: int | None
    renderable: bool

    @classmethod
    def of(cls, instance: Instance, series: Series, study: Study) -> StoredInstance:
        return cls(instance.id, instance.sop_uid, instance.sop_class_uid, study.study_uid, series.series_uid,
                   instance.transfer_syntax_uid, instance.blob_key, instance.checksum, instance.blob_size,
                   instance.number_of_frames, instance.renderable)


class RetrieveService:
    def __init__(self, sessions: sessionmaker[Session], blobs: BlobStore) -> None:
        self.sessions = sessions
        self.blobs = blobs

    def list(self, scope: Scope, study_uid: str, series_uid: str | None = None,
             sop_uid: str | None = None) -> list[StoredInstance]:
        """Instances of the study / series / instance ``scope`` may read; :class:`NotFound` when there are none
        (also for a study of another institution: its existence is not revealed)."""
        with self.sessions() as session:
            rows = instances_for(session, study_uid, scope, series_uid, sop_uid)
        if not rows:
            what = "instance" if sop_uid else "series" if series_uid else "study"
            raise NotFound(f"no such {what}")
        return [StoredInstance.of(*row) for row in rows]

    def read(self, inst: StoredInstance) -> bytes:
        """The stored bytes, checked against the recorded checksum."""
        return get_verified(self.blobs, inst.blob_key, inst.checksum)

    def read_as(self, inst: StoredInstance, transfer_syntax: str | None) -> tuple[bytes, str]:
        """The instance in ``transfer_syntax`` (``None`` or ``*``: as stored)."""
        data = self.read(inst)
        if transfer_syntax in (None, "*", inst.transfer_syntax_uid):
            return data, inst.transfer_syntax_uid
        return transcode(data, inst.transfer_syntax_uid, transfer_syntax), transfer_syntax

    def dataset(self, inst: StoredInstance) -> FileDataset:
        return dcmread(BytesIO(self.read(inst)))

    def mark_unrenderable(self, inst: StoredInstance) -> None:
        with self.sessions() as session:
            session.execute(update(Instance).where(Instance.id == inst.id).values(renderable=False))
            session.commit()

    def metadata(
        self, scope: Scope, study_uid: str, series_uid: str | None, sop_uid: str | None, base_url: str
    ) -> builtins.list[dict[str, Any]]:
        """DICOM JSON metadata of every instance in scope, from a per-series cache in the blob store.

        The cache object is keyed by the series' instance count and last change, so it is
        rebuilt after any change and shared by every API node.
        """
        instances = self.list(scope, study_uid, series_uid, sop_uid)
        by_series: dict[str, builtins.list[StoredInstance]] = {}
        for inst in instances:
            by_series.setdefault(inst.series_uid, []).append(inst)
        result: builtins.list[dict[str, Any]] = []
        for series, members in by_series.items():
            wanted = {m.sop_uid for m in members}
            for sop, item in self._series_metadata(study_uid, series):
                if sop in wanted:
                    result.append(item)
        text = json.dumps(result).replace(BASE_PLACEHOLDER, base_url)
        loaded: builtins.list[dict[str, Any]] = json.loads(text)
        return loaded

    def _series_metadata(self, study_uid: str, series_uid: str) -> builtins.list[tuple[str, dict[str, Any]]]:
        everything = self.list(Scope.all(), study_uid, series_uid)  # access was checked by the caller
        with self.sessions() as session:
            series = session.query(Series).filter(Series.series_uid == series_uid).one()
            version = f"{series.n_instances}-{int(series.updated_at.timestamp() * 1e6)}"
        key = f"cache/metadata/{series_uid}/{version}.json.gz"
        try:
            cached: builtins.list[builtins.list[Any]] = json.loads(gzip.decompress(self.blobs.get(key)))
            return [(sop, item) for sop, item in cached]
        except (NotFound, ValueError, OSError):
            pass
        items: builtins.list[tuple[str, dict[str, Any]]] = []
        for inst in everything:
            ds = self.dataset(inst)
            bulk = f"{BASE_PLACEHOLDER}/studies/{study_uid}/series/{series_uid}/instances/{inst.sop_uid}/bulkdata"
            item = metadata_json(ds, bulk)
            item["00020010"] = {"vr": "UI", "Value": [inst.transfer_syntax_uid]}
            items.append((inst.sop_uid, dict(sorted(item.items()))))
        self.blobs.put(key, gzip.compress(json.dumps(items).encode(), compresslevel=3))
        return items
