"""Crash safety of C-STORE: SIGKILL the archive mid-stream, restart, and prove nothing acknowledged was lost.

The client is dcmtk's ``storescu -v``; its log says exactly which files got a Success
response. After each kill the server restarts on the same data folder and database, and the
test checks every acknowledged instance over WADO-RS (bytes and UIDs against the source),
that nothing is stored twice, and that ``yunying fsck`` finds no corrupt/missing/counter
problem. Orphans are allowed only when explained: an intact content-addressed blob of the one
instance that was in flight at the kill. Then sending continues; at the end every instance is
stored exactly once.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.faults.conftest import dcmtk_env, indexed_blob_keys, instance_rows, real_ct_files, run_fsck, split_multipart
from tests.support.server import ServerProcess

SOURCE_SLICES = 20
COPIES = 12  # 240 instances
SUCCESS = "I: Received Store Response (Success)"


@dataclass(frozen=True)
class Source:
    path: Path
    sop_uid: str
    series_uid: str
    pixel_sha256: str


@dataclass
class Corpus:
    study_uid: str
    files: list[Source]

    def by_path(self) -> dict[str, Source]:
        return {str(s.path): s for s in self.files}

    def by_sop(self) -> dict[str, Source]:
        return {s.sop_uid: s for s in self.files}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """240 distinct instances: 20 real CT slices, each copied into 12 new series with new UIDs."""
    out = tmp_path_factory.mktemp("kill-corpus")
    study = generate_uid()
    files: list[Source] = []
    originals = [pydicom.dcmread(p) for p in real_ct_files(SOURCE_SLICES)]
    for copy in range(COPIES):
        series = generate_uid()
        for i, ds in enumerate(originals):
            sop = generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
            ds.file_meta.MediaStorageSOPInstanceUID = sop
            ds.SeriesNumber = 100 + copy
            path = out / f"c{copy:02d}-{i:02d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(Source(path, sop, series, hashlib.sha256(ds.PixelData).hexdigest()))
    assert len({f.sop_uid for f in files}) == len(files) >= 200
    return Corpus(study, files)


@dataclass
class SendResult:
    returncode: int
    acked: list[str] = field(default_factory=list)  # file paths with a Success response
    refused: list[str] = field(default_factory=list)  # a non-success response
    in_flight: list[str] = field(default_factory=list)  # sent without any response
    log: str = ""


def parse_storescu(log: str) -> SendResult:
    result = SendResult(returncode=-1, log=log)
    current: str | None = None
    for line in log.splitlines():
        if line.startswith("I: Sending file: "):
            if current is not None:  # previous file got no response
                result.in_flight.append(current)
            current = line.removeprefix("I: Sending file: ").strip()
        elif line.startswith("I: Received Store Response"):
            assert current is not None, log
            (result.acked if line.strip() == SUCCESS else result.refused).append(current)
            current = None
    if current is not None:
        result.in_flight.append(current)
    return result


def storescu(server: ServerProcess, files: list[Source], log_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    cmd = ["storescu", "-v", "-aet", "KILLTEST", "-aec", server.ae_title, "-to", "20", "-ta", "20", "-td", "60",
           "127.0.0.1", str(server.dicom_port), *(str(f.path) for f in files)]
    handle = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=dcmtk_env())
    handle.close()
    return proc, log_path


def send(server: ServerProcess, files: list[Source], log_path: Path, kill_after: int | None,
         rng: random.Random) -> SendResult:
    """Send ``files``; with ``kill_after``, SIGKILL the server once that many Success responses were logged."""
    proc, path = storescu(server, files, log_path)
    if kill_after is not None:
        deadline = time.monotonic() + 120
        while path.read_text(errors="replace").count(SUCCESS) < kill_after:
            assert proc.poll() is None, f"storescu ended before the kill point:\n{path.read_text()}"
            assert time.monotonic() < deadline, "storescu made no progress"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.025))  # land anywhere inside the next store
        server.kill()
    proc.wait(timeout=120)
    result = parse_storescu(path.read_text(errors="replace"))
    result.returncode = proc.returncode
    return result


def retrieve_study(server: ServerProcess, corpus: Corpus) -> dict[str, list[bytes]]:
    """SOP Instance UID → every copy of it the archive returns over WADO-RS (series by series)."""
    found: dict[str, list[bytes]] = {}
    series_uids = sorted({s.series_uid for s in corpus.files})
    with httpx.Client(auth=server.auth, timeout=120) as client:
        for series in series_uids:
            r = client.get(f"{server.dicomweb}/studies/{corpus.study_uid}/series/{series}",
                           headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
            if r.status_code == 404:
                continue
            assert r.status_code == 200, r.text
            for headers, body in split_multipart(r):
                assert headers["content-type"].startswith("application/dicom")
                sop = pydicom.dcmread(BytesIO(body), stop_before_pixels=True).SOPInstanceUID
                found.setdefault(str(sop), []).append(body)
    return found


def check_archive(server: ServerProcess, db_url: str, corpus: Corpus, acked: set[str], in_flight: set[str],
                  label: str) -> None:
    """Every acknowledged instance intact and unique; fsck finds only explained leftovers."""
    by_sop = corpus.by_sop()
    stored = retrieve_study(server, corpus)
    twice = {sop: len(copies) for sop, copies in stored.items() if len(copies) != 1}
    assert not twice, f"{label}: instances returned more than once: {twice}"
    missing = acked - stored.keys()
    assert not missing, f"{label}: {len(missing)} acknowledged instance(s) lost, e.g. {sorted(missing)[:3]}"
    assert stored.keys() <= by_sop.keys(), f"{label}: unknown instances {stored.keys() - by_sop.keys()}"
    for sop, (body,) in stored.items():
        ds = pydicom.dcmread(BytesIO(body))
        source = by_sop[sop]
        assert ds.SOPInstanceUID == sop and ds.SeriesInstanceUID == source.series_uid
        assert ds.StudyInstanceUID == corpus.study_uid
        assert hashlib.sha256(ds.PixelData).hexdigest() == source.pixel_sha256, f"{label}: pixel data of {sop} differs"
    # the index agrees with what WADO-RS served: one row per instance, no strays
    rows, distinct = instance_rows(db_url)
    assert rows == distinct == len(stored), f"{label}: index holds {rows} rows / {distinct} SOPs, WADO-RS served {len(stored)}"
    # stored-but-unacknowledged is allowed only for the instance that was in flight at a kill
    unacked_stored = stored.keys() - acked
    assert unacked_stored <= in_flight, f"{label}: stored without ack and never in flight: {unacked_stored - in_flight}"

    code, findings, output = run_fsck(server)
    bad = [f for f in findings if f.kind in ("corrupt", "missing", "counter")]
    assert code == 0 and not bad, f"{label}: fsck found damage:\n{output}"
    referenced = set(indexed_blob_keys(db_url).values())
    for f in findings:
        assert f.kind in ("orphan", "partial"), f"{label}: unexpected finding {f}"
        if f.kind == "partial":
            assert f.detail.startswith("temporary file of an interrupted write"), f
            assert Path(f.key).name.endswith(".partial") and "/blobs/" in f.key, f
            continue
        # an orphan: a complete content-addressed blob of an instance in flight at a kill, never referenced
        assert "never acknowledged" in f.detail, f
        assert f.key not in referenced, f
        blob = server.data_dir / "blobs" / f.key
        data = blob.read_bytes()
        assert hashlib.sha256(data).hexdigest() == blob.name, f"{label}: orphan {f.key} is torn"
        sop = str(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
        assert sop in in_flight, f"{label}: orphan {f.key} holds {sop}, which was not in flight at a kill"
    print(f"{label}: {len(acked)} acknowledged, {len(stored)} stored, {len(unacked_stored)} stored unacknowledged, "
          f"fsck: {[(f.kind, f.key[-12:]) for f in findings] or 'clean'}")


def test_kill_during_store(server_factory: Callable[..., ServerProcess], db_url: str, corpus: Corpus,
                           tmp_path: Path) -> None:
    seed = int(os.environ.get("YUNYING_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill test seed {seed} (YUNYING_FAULT_SEED to replay)")
    server = server_factory("kill")
    by_path = corpus.by_path()
    acked: set[str] = set()  # SOP Instance UIDs that got a Success response
    in_flight: set[str] = set()  # sent when a kill happened, no response
    kills = [rng.randint(15, 70), rng.randint(10, 60)]  # Success responses before each SIGKILL
    for round_no, kill_after in enumerate([*kills, None], start=1):
        pending = [f for f in corpus.files if f.sop_uid not in acked]
        assert kill_after is None or kill_after < len(pending) - 10
        result = send(server, pending, tmp_path / f"storescu-{round_no}.log", kill_after, rng)
        assert not result.refused, f"round {round_no}: refused files {result.refused[:3]}:\n{result.log[-3000:]}"
        newly = {by_path[p].sop_uid for p in result.acked}
        assert not newly & acked, "a file was sent twice in one run"
        acked |= newly
        label = f"round {round_no} (seed {seed})"
        if kill_after is None:
            assert result.returncode == 0, f"{label}: storescu failed:\n{result.log[-3000:]}"
            assert not result.in_flight
            assert len(acked) == len(corpus.files)
        else:
            assert result.returncode != 0, f"{label}: storescu did not notice the kill"
            assert len(result.acked) >= kill_after
            assert len(acked) < len(corpus.files), f"{label}: the kill came after the last store"
            in_flight |= {by_path[p].sop_uid for p in result.in_flight}
            server.start()  # same data folder, same database, same ports
        check_archive(server, db_url, corpus, acked, in_flight, label)
    rows, distinct = instance_rows(db_url)
    assert rows == distinct == len(corpus.files)
    # the crash leftovers (orphans, partials) are collectable; afterwards fsck has nothing to say
    code, _findings, output = run_fsck(server, "--repair", "--grace", "0")
    assert code == 0, output
    code, findings, output = run_fsck(server)
    assert code == 0 and not findings, output
    assert f"checked {len(corpus.files)} instance(s), {len(corpus.files)} blob(s)" in output
