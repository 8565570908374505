"""Consistency check of index and blob store: what is damaged, missing, orphaned — and repair.

Findings are explained, so an operator knows what each means:
- ``corrupt``: a blob's bytes no longer match the recorded SHA-256 (bit rot, tampering);
- ``missing``: an indexed instance has no blob;
- ``orphan``: a blob no index row references — left by a crash between the durable blob
  write and the index commit (never acknowledged), or by an overwrite; safe to delete;
- ``partial``: a temporary file of an interrupted write (filesystem back-end); safe to delete;
- ``counter``: a study/series instance counter that disagrees with the rows.
Repair restores corrupt/missing blobs from a copy (``copy_from``) when the copy verifies,
deletes orphans and partials older than a grace period, and recomputes counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from yunying.errors import NotFound
from yunying.index.models import Instance, Series, Study
from yunying.storage.base import BlobStore, checksum
from yunying.storage.filesystem import FilesystemBlobStore

PARTIAL_SUFFIX = ".partial"  # FilesystemBlobStore's temporary files: ``.<random>.partial``

BATCH = 1000


@dataclass
class Finding:
    kind: str
    key: str
    detail: str
    repaired: bool = False


@dataclass
class FsckReport:
    instances_checked: int = 0
    blobs_seen: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(f.repaired for f in self.findings)

    def unrepaired(self, kind: str | None = None) -> list[Finding]:
        return [f for f in self.findings if not f.repaired and (kind is None or f.kind == kind)]


def _instances(sessions: sessionmaker[Session]) -> Iterator[tuple[int, str, str]]:
    last = 0
    while True:
        with sessions() as session:
            rows = session.execute(
                select(Instance.id, Instance.blob_key, Instance.checksum)
                .where(Instance.id > last).order_by(Instance.id).limit(BATCH)
            ).all()
        if not rows:
            return
        for row in rows:
            yield int(row[0]), str(row[1]), str(row[2])
        last = int(rows[-1][0])


def fsck(sessions: sessionmaker[Session], blobs: BlobStore, *, repair: bool = False, copy_from: BlobStore | None = None,
         grace_seconds: float = 3600.0, verify_content: bool = True) -> FsckReport:
    """Check (and with ``repair`` fix) the archive. See the module docstring for the finding kinds."""
    report = FsckReport()
    referenced: set[str] = set()
    for _id, key, expected in _instances(sessions):
        report.instances_checked += 1
        referenced.add(key)
        try:
            data = blobs.get(key) if verify_content else b""
            if verify_content and checksum(data) != expected:
                report.findings.append(_try_restore(blobs, copy_from, key, expected, "corrupt", repair))
            elif not verify_content and not blobs.exists(key):
                raise NotFound(key)
        except NotFound:
            report.findings.append(_try_restore(blobs, copy_from, key, expected, "missing", repair))
    now = time.time()
    for info in blobs.iter_blobs("dicom/"):
        if _is_partial(info.key):
            continue  # a temporary file of a write, reported below as "partial", never as an orphan blob
        report.blobs_seen += 1
        if info.key in referenced or _referenced_now(sessions, info.key):
            continue  # (the second check: a store that committed after the index scan above)
        finding = Finding("orphan", info.key, "no index row references this blob (interrupted store before its "
                          "commit — never acknowledged — or replaced by an overwrite); safe to delete")
        if repair and info.modified is not None and info.modified < now - grace_seconds:
            blobs.delete(info.key)
            finding.repaired = True
        report.findings.append(finding)
    if isinstance(blobs, FilesystemBlobStore):
        for path in blobs.leftover_partials():
            try:
                old = path.stat().st_mtime < now - grace_seconds
            except FileNotFoundError:
                continue  # a write in progress just finished (renamed) or was cleaned up
            finding = Finding("partial", str(path), "temporary file of an interrupted write; safe to delete")
            if repair and old:
                path.unlink(missing_ok=True)
                finding.repaired = True
            report.findings.append(finding)
    report.findings.extend(_check_counters(sessions, repair))
    return report


def _referenced_now(sessions: sessionmaker[Session], key: str) -> bool:
    with sessions() as session:
        return session.execute(select(Instance.id).where(Instance.blob_key == key).limit(1)).first() is not None


def _is_partial(key: str) -> bool:
    """A temporary file of :class:`FilesystemBlobStore` (``.<random>.partial``), not a content key."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith(".") and name.endswith(PARTIAL_SUFFIX)


def _try_restore(blobs: BlobStore, copy_from: BlobStore | None, key: str, expected: str, kind: str, repair: bool) -> Finding:
    detail = "blob bytes do not match the recorded SHA-256" if kind == "corrupt" else "indexed instance has no blob"
    finding = Finding(kind, key, detail)
    if repair and copy_from is not None:
        try:
            copy = copy_from.get(key)
        except NotFound:
            finding.detail += "; no copy available"
            return finding
        if checksum(copy) == expected:
            blobs.put(key, copy)
            finding.repaired = True
            finding.detail += "; restored from a verified copy"
        else:
            finding.detail += "; the copy is damaged too"
    return finding


def _check_counters(sessions: sessionmaker[Session], repair: bool) -> list[Finding]:
    findings: list[Finding] = []
    with sessions() as session:
        series_counts = dict(session.execute(select(Instance.series_fk, func.count()).group_by(Instance.series_fk)).all())
        for series_id, uid, n in session.execute(select(Series.id, Series.series_uid, Series.n_instances)).all():
            actual = int(series_counts.get(series_id, 0))
            if actual != n:
                finding = Finding("counter", uid, f"series counter says {n} instances, index holds {actual}")
                if repair:
                    session.execute(update(Series).where(Series.id == series_id).values(n_instances=actual))
                    finding.repaired = True
                findings.append(finding)
        study_counts = dict(session.execute(select(Instance.study_fk, func.count()).group_by(Instance.study_fk)).all())
        for study_id, uid, n in session.execute(select(Study.id, Study.study_uid, Study.n_instances)).all():
            actual = int(study_counts.get(study_id, 0))
            if actual != n:
                finding = Finding("counter", uid, f"study counter says {n} instances, index holds {actual}")
                if repair:
                    session.execute(update(Study).where(Study.id == study_id).values(n_instances=actual))
                    finding.repaired = True
                findings.append(finding)
        session.commit()
    return findings
