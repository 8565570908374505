"""Damage to the blob store is detected, never served, and repaired: ``yunying fsck [--repair]``.

Blobs are content-addressed: a STOW-RS instance is stored byte for byte (no compression), so
its blob lives at ``blobs/dicom/<sha[0:2]>/<sha[2:4]>/<sha>`` where ``sha`` is the SHA-256 of
the file that was sent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import httpx
import pydicom

from tests.faults.conftest import (
    PROBLEM_JSON,
    STOW_TYPE,
    dicom_blob_path,
    multipart_body,
    real_ct_files,
    run_fsck,
    split_multipart,
)
from tests.support.archive import default_institution
from tests.support.server import ServerProcess
from yunying.archive.fsck import fsck
from yunying.archive.ingest import Outcome
from yunying.compose import Archive
from yunying.index.access import Scope
from yunying.storage.base import BlobInfo, checksum, content_key
from yunying.storage.filesystem import FilesystemBlobStore

DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _stow(server: ServerProcess, files: list[Path]) -> list[bytes]:
    datas = [p.read_bytes() for p in files]
    r = httpx.post(server.dicomweb + "/studies", auth=server.auth, timeout=60,
                   content=multipart_body([("application/dicom", d) for d in datas]), headers={"Content-Type": STOW_TYPE})
    assert r.status_code == 200, r.text
    return datas


def _instance_url(server: ServerProcess, data: bytes) -> str:
    ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True)
    return (f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")


def _key(data: bytes) -> str:
    return content_key(hashlib.sha256(data).hexdigest())


def _flip(path: Path, at: int, n: int = 16) -> bytes:
    """Invert ``n`` bytes at offset ``at`` (bit rot); return the damaged content."""
    data = bytearray(path.read_bytes())
    data[at:at + n] = bytes(b ^ 0xFF for b in data[at:at + n])
    path.write_bytes(bytes(data))
    return bytes(data)


def _assert_integrity_problem(r: httpx.Response, damaged: bytes) -> None:
    assert r.status_code == 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    body = r.json()
    assert body["status"] == 500 and "integrity" in body["title"].lower(), body
    assert damaged[250_000:250_064] not in r.content


def test_fsck_detects_and_repairs_damage(server: ServerProcess, tmp_path: Path) -> None:
    datas = _stow(server, real_ct_files(4))
    keys = [_key(d) for d in datas]
    paths = [dicom_blob_path(server, hashlib.sha256(d).hexdigest()) for d in datas]
    assert all(p.read_bytes() == d for p, d in zip(paths, datas, strict=True))
    code, findings, out = run_fsck(server)
    assert code == 0 and not findings, out
    backup = tmp_path / "blob-backup"
    shutil.copytree(server.data_dir / "blobs", backup)

    # 1. bit rot in one blob: detected, never served, repaired from the backup
    damaged = _flip(paths[0], len(datas[0]) // 2)
    url = _instance_url(server, datas[0])
    with httpx.Client(auth=server.auth, timeout=60) as client:
        _assert_integrity_problem(client.get(url, headers={"Accept": DICOM_ANY}), damaged)
        frames = client.get(url + "/frames/1", headers={"Accept": "multipart/related; type=application/octet-stream"})
        _assert_integrity_problem(frames, damaged)
        study = client.get(url.split("/series/")[0], headers={"Accept": DICOM_ANY})
        if study.status_code == 200:  # the damaged instance may be left out of a streamed study, never sent
            assert all(body != damaged for _h, body in split_multipart(study))
        else:
            _assert_integrity_problem(study, damaged)
    code, findings, out = run_fsck(server)
    assert code == 1, out
    assert [(f.kind, f.state, f.key) for f in findings] == [("corrupt", "FOUND", keys[0])], out
    assert "SHA-256" in findings[0].detail

    code, findings, out = run_fsck(server, "--repair", "--copy-from", str(backup))
    assert code == 0, out
    assert [(f.kind, f.state, f.key) for f in findings] == [("corrupt", "repaired", keys[0])], out
    assert "restored from a verified copy" in findings[0].detail
    assert paths[0].read_bytes() == datas[0]
    code, findings, out = run_fsck(server)
    assert code == 0 and not findings, out
    r = httpx.get(url, auth=server.auth, headers={"Accept": DICOM_ANY}, timeout=60)
    assert r.status_code == 200 and [b for _h, b in split_multipart(r)] == [datas[0]]

    # 2. a deleted blob: "missing", restored from the backup
    paths[1].unlink()
    code, findings, out = run_fsck(server)
    assert code == 1, out
    assert [(f.kind, f.state, f.key) for f in findings] == [("missing", "FOUND", keys[1])], out
    assert httpx.get(_instance_url(server, datas[1]), auth=server.auth, timeout=60).status_code >= 400
    code, findings, out = run_fsck(server, "--repair", "--copy-from", str(backup))
    assert code == 0 and [(f.kind, f.state) for f in findings] == [("missing", "repaired")], out
    assert paths[1].read_bytes() == datas[1]

    # 3. a damaged backup is never copied in: the finding stays, fsck still fails
    _flip(paths[2], 1000)
    _flip(backup / keys[2], 2000)
    code, findings, out = run_fsck(server, "--repair", "--copy-from", str(backup))
    assert code == 1, out
    assert [(f.kind, f.state, f.key) for f in findings] == [("corrupt", "FOUND", keys[2])], out
    assert "the copy is damaged too" in findings[0].detail
    paths[2].write_bytes(datas[2])  # the operator finds a good copy elsewhere

    # 4. an unreferenced blob: reported as orphan (not damage), kept within the grace period, then removed
    orphan_data = b"DICM-looking leftover of a store that never committed" * 100
    orphan = dicom_blob_path(server, hashlib.sha256(orphan_data).hexdigest())
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(orphan_data)
    code, findings, out = run_fsck(server)
    assert code == 0, out
    assert [(f.kind, f.state, f.key) for f in findings] == [("orphan", "FOUND", _key(orphan_data))], out
    assert "never acknowledged" in findings[0].detail and "safe to delete" in findings[0].detail
    code, findings, out = run_fsck(server, "--repair")  # default grace: an hour
    assert code == 0 and [(f.kind, f.state) for f in findings] == [("orphan", "FOUND")], out
    assert orphan.exists()
    code, findings, out = run_fsck(server, "--repair", "--grace", "0")
    assert code == 0 and [(f.kind, f.state) for f in findings] == [("orphan", "repaired")], out
    assert not orphan.exists()

    # 5. a temporary file of an interrupted write: one "partial" finding (not an orphan too), removed by repair
    partial = paths[3].parent / ".k3x9q0vz.partial"
    partial.write_bytes(datas[3][:4096])
    code, findings, out = run_fsck(server)
    assert code == 0, out
    assert [(f.kind, f.state, f.key) for f in findings] == [("partial", "FOUND", str(partial.resolve()))], out
    code, findings, out = run_fsck(server, "--repair", "--grace", "0")
    assert code == 0 and [(f.kind, f.state) for f in findings] == [("partial", "repaired")], out
    assert not partial.exists()

    code, findings, out = run_fsck(server)
    assert code == 0 and not findings, out
    assert "checked 4 instance(s), 4 blob(s)" in out
    with httpx.Client(auth=server.auth, timeout=60) as client:
        for data in datas:
            r = client.get(_instance_url(server, data), headers={"Accept": DICOM_ANY})
            assert r.status_code == 200 and [b for _h, b in split_multipart(r)] == [data]


class _StoreDuringScan(FilesystemBlobStore):
    """A blob store whose listing lets a store commit first: a C-STORE arriving while fsck runs."""

    def __init__(self, root: Path, store: object) -> None:
        super().__init__(root)
        self._store = store

    def iter_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        self._store()  # type: ignore[operator]
        yield from super().iter_blobs(prefix)


def test_repair_never_deletes_a_blob_a_concurrent_store_reuses(archive: Archive) -> None:
    """A crash left an old orphan; the modality resends that instance while ``fsck --repair`` runs.

    The resend is acknowledged and refers to the existing content-addressed blob; repair
    must not delete it as an orphan (that would lose an acknowledged instance).
    """
    data = real_ct_files(1)[0].read_bytes()
    key = content_key(checksum(data))
    archive.blobs.put(key, data)  # blob written, then the crash: index commit never happened
    path = archive.blobs.local_path(key)
    assert path is not None
    two_hours_ago = time.time() - 7200
    os.utime(path, (two_hours_ago, two_hours_ago))
    outcomes = []

    def resend() -> None:
        outcomes.append(archive.ingest.store_instance(data, origin="test:resend", institution_id=default_institution(archive)))

    scanning = _StoreDuringScan(archive.settings.blob_dir, resend)
    report = fsck(archive.sessions, scanning, repair=True)  # default grace period: an hour
    assert [r.outcome for r in outcomes] == [Outcome.STORED]  # acknowledged
    assert path.exists(), f"repair deleted the blob of an acknowledged instance: {report.findings}"
    assert [f for f in report.findings if f.kind == "orphan"] == []
    inst = archive.retrieve.list(Scope.all(), outcomes[0].study_uid, outcomes[0].series_uid, outcomes[0].sop_instance_uid)[0]
    assert archive.retrieve.read(inst) == data
    assert fsck(archive.sessions, archive.blobs).findings == []


def test_missing_blob_is_an_integrity_failure_not_404(server: ServerProcess) -> None:
    (data,) = _stow(server, real_ct_files(1))
    dicom_blob_path(server, hashlib.sha256(data).hexdigest()).unlink()
    r = httpx.get(_instance_url(server, data), auth=server.auth, headers={"Accept": DICOM_ANY}, timeout=60)
    assert r.status_code == 500 and r.headers["content-type"].startswith(PROBLEM_JSON), (r.status_code, r.text)
    assert "blobs" not in r.text and "dicom/" not in r.text
