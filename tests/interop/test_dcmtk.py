"""Interoperability with real DICOM tools: dcmtk (echoscu, storescu, findscu, movescu, getscu, storescp)
and pynetdicom as a Storage Commitment SCU, against a real ``yunying serve`` on SQLite and PostgreSQL.

One archive per database backend is loaded once with every storable file of the shared data set
(module-scoped ``db_url`` overriding the function-scoped one of ``tests/conftest.py`` so the 134-slice CT
is sent once per backend); every test then runs against both backends.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.support import data
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")

HOST = "127.0.0.1"
STORESCP_AE = "STORESCP"
COMMIT_AE = "COMMITSCU"
# Every tool calls with its default AE title; the archive runs with an allow-list of exactly these.
ALLOWED_AES = ["ECHOSCU", "STORESCU", "FINDSCU", "MOVESCU", "GETSCU", COMMIT_AE]
# Debian's dcmtk leaves Nagle on unless told otherwise (each small PDU would wait ~40 ms for an ACK).
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
# dcmtk itself cannot read this file (Pixel Data longer than the file); it is a duplicate of
# MR_small_bigendian.dcm, whose copy is stored, so its SOP Instance UID is still expected.
DCMTK_UNREADABLE = {"edge_cases/MR_truncated.dcm"}
CT_STUDY = "1.3.6.1.4.1.14519.5.2.1.21087345762211724523378497892240459677"
CT_SERIES = "1.3.6.1.4.1.14519.5.2.1.302382790855582445722435410442490497846"


def dcmtk(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, env=DCMTK_ENV, timeout=timeout)


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# --------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Original:
    rel: str
    path: Path
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    study_uid: str


@lru_cache(maxsize=1)
def originals() -> dict[str, Original]:
    """SOP Instance UID → the storable file whose copy the archive keeps (the first one sent)."""
    result: dict[str, Original] = {}
    for path in data.storable_files():
        ds = dcmread(path, stop_before_pixels=True)
        uid = str(ds.SOPInstanceUID)
        if uid not in result:
            result[uid] = Original(data.rel(path), path, uid, str(ds.SOPClassUID),
                                   str(ds.file_meta.TransferSyntaxUID), str(ds.StudyInstanceUID))
    return result


def storescu_profile(path: Path) -> Path:
    """A storescu association profile proposing, for every (SOP Class, Transfer Syntax) pair of the
    shared data (refused files included), exactly that transfer syntax: files go out as they are
    (JPEG-LS, JPEG 2000, RLE, deflated, big endian, ...), never decompressed by storescu."""
    pairs: list[tuple[str, str]] = []
    for file in data.all_files():
        try:
            ds = dcmread(file, stop_before_pixels=True)
            pair = (str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID))
        except Exception:  # refused files without File Meta or SOP Class: nothing to propose
            continue
        if pair not in pairs:
            pairs.append(pair)
    syntaxes = sorted({ts for _, ts in pairs})
    lines = ["[[TransferSyntaxes]]"]
    for i, ts in enumerate(syntaxes):
        lines += [f"[TS{i}]", f"TransferSyntax1 = {ts}"]
    lines += ["[[PresentationContexts]]", "[AsStored]"]
    lines += [f"PresentationContext{n} = {cls}\\TS{syntaxes.index(ts)}" for n, (cls, ts) in enumerate(pairs, 1)]
    lines += ["[[Profiles]]", "[AsStored]", "PresentationContexts = AsStored"]
    assert len(pairs) <= 128, "too many presentation contexts for one association"
    path.write_text("\n".join(lines) + "\n")
    return path


def qido(server: ServerProcess, resource: str, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.dicomweb}/{resource}", params={"limit": 1000, **params}, auth=server.auth, timeout=60)
    assert r.status_code in (200, 204), r.text
    return r.json() if r.status_code == 200 else []


def qido_value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None


# ------------------------------------------------------------------------------------ peers (module)


@dataclass
class StoreSCP:
    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, log: Path) -> StoreSCP:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["storescp", "+xa", "-od", str(self.directory), "-aet", STORESCP_AE, "-fe", ".dcm", "+uf",
             str(self.port)],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, env=DCMTK_ENV, start_new_session=True)
        wait_for_port(self.port)
        return self

    def clear(self) -> None:
        for f in self.directory.iterdir():
            f.unlink()

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.dcm"))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class CommitmentSCP:
    """Our own pynetdicom AE receiving the archive's N-EVENT-REPORT (Storage Commitment Push Model)."""

    port: int
    reports: queue.Queue[tuple[int, Dataset]]
    server: Any = None

    def start(self) -> CommitmentSCP:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

        def on_report(event: Any) -> int:
            self.reports.put((int(event.event_type), event.event_information))
            return 0x0000

        ae = AE(ae_title=COMMIT_AE)
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        self.server = ae.start_server((HOST, self.port), block=False,
                                      evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


@pytest.fixture(scope="module")
def storescp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSCP]:
    base = tmp_path_factory.mktemp("storescp")
    scp = StoreSCP(free_port(), base / "received").start(base / "storescp.log")
    yield scp
    scp.stop()


@pytest.fixture(scope="module")
def commitment_scp() -> Iterator[CommitmentSCP]:
    scp = CommitmentSCP(free_port(), queue.Queue()).start()
    yield scp
    scp.stop()


# --------------------------------------------------------------------------- archive per backend


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Module-scoped override of ``tests/conftest.py``'s ``db_url``: one database per backend for this file."""
    with fresh_database(request.param, tmp_path_factory.mktemp(f"db-{request.param}")) as url:
        yield url


@dataclass
class Loaded:
    server: ServerProcess
    work: Path
    profile: Path
    sent: list[Path]
    store: subprocess.CompletedProcess[str]

    def storescu(self, *files: Path | str, verbose: str = "-v") -> subprocess.CompletedProcess[str]:
        return dcmtk("storescu", verbose, "-aec", self.server.ae_title, "-xf", str(self.profile), "AsStored",
                     "+fo", HOST, str(self.server.dicom_port), *map(str, files))

    def findscu(self, model: str, *keys: str) -> list[Dataset]:
        """Run findscu (``-P`` or ``-S``) and return the responses as data sets (``-X`` files)."""
        out = self.work / f"find-{uuid.uuid4().hex[:8]}"
        out.mkdir()
        args = ["findscu", model, "-aec", self.server.ae_title, "-X", "-od", str(out)]
        for key in keys:
            args += ["-k", key]
        result = dcmtk(*args, HOST, str(self.server.dicom_port))
        assert result.returncode == 0, result.stderr + result.stdout
        return [dcmread(f) for f in sorted(out.glob("rsp*.dcm"))]


@pytest.fixture(scope="module")
def loaded(db_url: str, tmp_path_factory: pytest.TempPathFactory, storescp: StoreSCP,
           commitment_scp: CommitmentSCP) -> Iterator[Loaded]:
    """A running archive (allow-list on; storescp and our commitment SCP as remote AEs) into which
    storescu has sent every storable file of the shared data set, each in its own transfer syntax."""
    work = tmp_path_factory.mktemp("archive")
    env = {
        "YUNYING_REMOTE_AES": f'["{STORESCP_AE}@{HOST}:{storescp.port}", "{COMMIT_AE}@{HOST}:{commitment_scp.port}"]',
        "YUNYING_ALLOWED_CALLING_AES": "[" + ", ".join(f'"{ae}"' for ae in ALLOWED_AES) + "]",
    }
    server = ServerProcess(work / "server", db_url, env=env).start()
    try:
        profile = storescu_profile(work / "storescu.cfg")
        files = [p for p in data.storable_files() if data.rel(p) not in DCMTK_UNREADABLE]
        # -nh: keep going after a failure (reported by the test below, not here); -v: one line per response.
        store = dcmtk("storescu", "-v", "-aec", server.ae_title, "-xf", str(profile), "AsStored", "+fo", "-nh",
                      HOST, str(server.dicom_port), *map(str, files), timeout=600)
        yield Loaded(server, work, profile, files, store)
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------- tests


def test_echo_and_calling_ae_allow_list(loaded: Loaded) -> None:
    port = str(loaded.server.dicom_port)
    ok = dcmtk("echoscu", "-aec", "YUNYING", HOST, port)
    assert ok.returncode == 0, ok.stderr

    rejected = dcmtk("echoscu", "-v", "-aet", "INTRUDER", "-aec", "YUNYING", HOST, port)
    assert rejected.returncode != 0
    text = rejected.stdout + rejected.stderr
    assert "Association Rejected" in text, text
    assert "Calling AE Title Not Recognized" in text, text
    # The archive keeps serving allowed callers afterwards.
    assert dcmtk("echoscu", "-aec", "YUNYING", HOST, port).returncode == 0


def test_storescu_stores_every_storable_file_once(loaded: Loaded) -> None:
    store = loaded.store
    text = store.stdout + store.stderr
    assert store.returncode == 0, text[-5000:]
    problems = [line for line in text.splitlines() if line.startswith(("E:", "W:", "F:"))]
    assert not problems, problems
    # One successful C-STORE response per file (duplicates included: keep-first answers success).
    assert text.count("Received Store Response (Success)") == len(loaded.sent), text[-5000:]

    instances = qido(loaded.server, "instances")
    stored = [qido_value(item, "00080018") for item in instances]
    assert len(stored) == len(set(stored)), "an instance is listed twice"
    assert set(stored) == set(originals())
    # Stored as received: every instance keeps the transfer syntax it was sent in.
    syntaxes = {qido_value(item, "00080018"): qido_value(item, "00020010") for item in instances}
    assert syntaxes == {uid: o.transfer_syntax for uid, o in originals().items()}

    # The file dcmtk cannot read is refused by storescu itself (its UID is stored from its duplicate).
    unreadable = loaded.storescu(*(data.SHARED / rel for rel in sorted(DCMTK_UNREADABLE)))
    assert unreadable.returncode != 0
    assert "Sending Store Request" not in unreadable.stdout + unreadable.stderr


def test_refused_files_are_not_stored(loaded: Loaded, tmp_path: Path) -> None:
    before = {qido_value(item, "00080018") for item in qido(loaded.server, "instances")}
    outcomes: dict[str, str] = {}
    for rel in sorted(data.REFUSED):
        result = loaded.storescu(data.SHARED / rel)
        text = result.stdout + result.stderr
        assert result.returncode != 0, f"{rel}: storescu reported success\n{text}"
        if "Sending Store Request" in text:
            assert "Received Store Response (Error" in text, f"{rel}\n{text}"
            outcomes[rel] = "refused by the archive"
        else:
            outcomes[rel] = "not sent by storescu"

    # dcmtk refuses all of these locally (no File Meta, no SOP Class UID, HTJ2K unknown to dcmtk 3.6.7),
    # so also send the archive a data set with a refusal reason of its own: no Study Instance UID.
    ds = dcmread(data.SHARED / "charset" / "chrX1.dcm")
    del ds.StudyInstanceUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    no_study = tmp_path / "no_study.dcm"
    ds.save_as(no_study)
    refused = loaded.storescu(no_study, verbose="-d")
    text = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "DIMSE Status                  : 0xc000" in text, text
    assert "Study Instance UID" in text  # the Error Comment names the reason

    after = {qido_value(item, "00080018") for item in qido(loaded.server, "instances")}
    assert after == before, outcomes
    assert str(ds.SOPInstanceUID) not in after


def test_findscu_all_levels(loaded: Loaded) -> None:
    studies = qido(loaded.server, "studies")
    study_uids = {qido_value(s, "0020000D") for s in studies}

    # STUDY level, universal match: every study once, instance counts as QIDO says.
    found = loaded.findscu("-S", "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "NumberOfStudyRelatedInstances")
    assert len(found) == len(studies)
    assert {str(ds.StudyInstanceUID) for ds in found} == study_uids
    counts = {str(ds.StudyInstanceUID): int(ds.NumberOfStudyRelatedInstances) for ds in found}
    expected_counts: dict[str, int] = {}
    for o in originals().values():
        expected_counts[o.study_uid] = expected_counts.get(o.study_uid, 0) + 1
    assert counts == expected_counts

    # PATIENT level (patient root).
    patients = loaded.findscu("-P", "QueryRetrieveLevel=PATIENT", "PatientID", "PatientName=Pancreas*",
                              "NumberOfPatientRelatedStudies")
    assert [str(p.PatientID) for p in patients] == ["Pancreas-CT-CB_001"]
    assert int(patients[0].NumberOfPatientRelatedStudies) == 1
    all_patients = loaded.findscu("-P", "QueryRetrieveLevel=PATIENT", "PatientID")
    assert {str(p.PatientID) for p in all_patients} == {qido_value(s, "00100020") or "" for s in studies}

    # STUDY level: wildcard name, date range, Chinese name in UTF-8.
    by_name = loaded.findscu("-S", "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName=Pancreas*")
    assert [str(ds.StudyInstanceUID) for ds in by_name] == [CT_STUDY]
    by_date = loaded.findscu("-S", "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "StudyDate=20120701-20120710")
    assert [str(ds.StudyInstanceUID) for ds in by_date] == [CT_STUDY]
    open_range = loaded.findscu("-S", "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "StudyDate=20200901-")
    assert CT_STUDY not in {str(ds.StudyInstanceUID) for ds in open_range} and open_range

    chinese = dcmread(data.SHARED / "charset" / "chrX1.dcm", stop_before_pixels=True)
    wang = loaded.findscu("-S", "SpecificCharacterSet=ISO_IR 192", "QueryRetrieveLevel=STUDY",
                          "StudyInstanceUID", "PatientName=Wang*")
    names = {str(ds.StudyInstanceUID): str(ds.PatientName) for ds in wang}
    assert names[str(chinese.StudyInstanceUID)] == "Wang^XiaoDong=王^小東"
    assert all(name.startswith("Wang^") for name in names.values())
    ideographic = loaded.findscu("-S", "SpecificCharacterSet=ISO_IR 192", "QueryRetrieveLevel=STUDY",
                                 "StudyInstanceUID", "PatientName=Wang^XiaoDong=王^小東")
    assert [str(ds.StudyInstanceUID) for ds in ideographic] == [str(chinese.StudyInstanceUID)]

    # SERIES level under the GE MR study (two series) and the CT study (one series of 134).
    ge_study = next(o.study_uid for o in originals().values() if o.rel.startswith("mr_brain_ge_pioneer_study/"))
    series = loaded.findscu("-S", "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={ge_study}",
                            "SeriesInstanceUID", "SeriesNumber", "NumberOfSeriesRelatedInstances")
    assert sorted((int(s.SeriesNumber), int(s.NumberOfSeriesRelatedInstances)) for s in series) == [(1, 14), (5, 130)]
    ct_series = loaded.findscu("-S", "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={CT_STUDY}",
                               "SeriesInstanceUID", "NumberOfSeriesRelatedInstances")
    assert [(str(s.SeriesInstanceUID), int(s.NumberOfSeriesRelatedInstances)) for s in ct_series] == [(CT_SERIES, 134)]

    # IMAGE level under one series: the series' instances, each once.
    images = loaded.findscu("-S", "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={CT_STUDY}",
                            f"SeriesInstanceUID={CT_SERIES}", "SOPInstanceUID", "InstanceNumber")
    assert len(images) == 134
    assert {str(i.SOPInstanceUID) for i in images} == {u for u, o in originals().items() if o.study_uid == CT_STUDY}


def _compare_with_original(received: Path, expect_syntax: bool) -> str:
    """Return the SOP Instance UID of ``received`` after checking it against the original file."""
    got = dcmread(received)
    uid = str(got.SOPInstanceUID)
    original = originals()[uid]
    want = dcmread(original.path)
    if expect_syntax:
        assert got.file_meta.TransferSyntaxUID == original.transfer_syntax, original.rel
    assert ("PixelData" in got) == ("PixelData" in want), original.rel
    if "PixelData" in want:
        assert got.PixelData == want.PixelData, f"{original.rel}: pixel data differs"
    # Group lengths may be dropped or added and Data Set Trailing Padding (FFFC,FFFC) is dropped on the
    # way (PS3.5 7.2, 7.8: both carry no information); every other element must arrive unchanged.
    got_tags = {t for t in set(got.keys()) if t.element != 0 and t != 0xFFFCFFFC}
    want_tags = {t for t in set(want.keys()) if t.element != 0 and t != 0xFFFCFFFC}
    assert got_tags == want_tags, f"{original.rel}: {sorted(got_tags ^ want_tags)}"
    for tag in sorted(want_tags):
        assert got[tag].value == want[tag].value, f"{original.rel}: {tag} differs"
    return uid


def test_movescu_to_storescp(loaded: Loaded, storescp: StoreSCP) -> None:
    # Everything except the large CT (retrieved by C-GET below): every transfer syntax of the data set.
    studies = sorted({o.study_uid for o in originals().values()} - {CT_STUDY})
    expected = {u for u, o in originals().items() if o.study_uid != CT_STUDY}
    storescp.clear()
    result = dcmtk("movescu", "-v", "-S", "-aec", loaded.server.ae_title, "-aem", STORESCP_AE,
                   "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=" + "\\".join(studies),
                   HOST, str(loaded.server.dicom_port))
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-5000:]
    assert "Received Final Move Response (Success)" in text, text[-5000:]

    received = storescp.files()
    uids = [_compare_with_original(f, expect_syntax=True) for f in received]
    assert len(uids) == len(set(uids)), "an instance arrived twice"
    assert set(uids) == expected


def test_movescu_to_unknown_destination_fails(loaded: Loaded) -> None:
    result = dcmtk("movescu", "-d", "-S", "-aec", loaded.server.ae_title, "-aem", "NOBODY",
                   "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={CT_STUDY}",
                   HOST, str(loaded.server.dicom_port))
    text = result.stdout + result.stderr
    assert "0xa801" in text.lower(), text[-3000:]


def test_getscu_retrieves_a_study(loaded: Loaded, tmp_path: Path) -> None:
    result = dcmtk("getscu", "-S", "-aec", loaded.server.ae_title, "-od", str(tmp_path),
                   "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={CT_STUDY}",
                   HOST, str(loaded.server.dicom_port))
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    files = sorted(p for p in tmp_path.iterdir() if p.is_file())
    uids = [_compare_with_original(f, expect_syntax=False) for f in files]
    assert len(uids) == len(set(uids)) == 134
    assert set(uids) == {u for u, o in originals().items() if o.study_uid == CT_STUDY}


def _study_of(prefix: str) -> str:
    return next(o.study_uid for o in originals().values() if o.rel.startswith(prefix))


def test_getscu_transcodes_what_the_requestor_cannot_take(loaded: Loaded, tmp_path: Path) -> None:
    """getscu offers only uncompressed syntaxes: the one-image-in-nine-syntaxes study (JPEG lossless,
    JPEG-LS, JPEG 2000, RLE, big endian, ...) arrives little endian with the same pixel values."""
    study = _study_of("transfer_syntax_matrix_siemens_mr/")
    result = dcmtk("getscu", "-v", "-S", "-aec", loaded.server.ae_title, "-od", str(tmp_path),
                   "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                   HOST, str(loaded.server.dicom_port))
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-5000:]
    assert "Number of Failed Suboperations    : 0" in text, text[-5000:]
    received = {str(ds.SOPInstanceUID): ds for ds in map(dcmread, sorted(tmp_path.iterdir()))}
    expected = {u: o for u, o in originals().items() if o.study_uid == study}
    assert set(received) == set(expected) and len(expected) == 9
    for uid, ds in received.items():
        assert ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"), expected[uid].rel
        original = dcmread(expected[uid].path)
        assert (ds.pixel_array == original.pixel_array).all(), f"{expected[uid].rel}: pixel values differ"


def test_getscu_with_an_undecodable_instance_sends_the_others(loaded: Loaded, tmp_path: Path) -> None:
    """One instance of the study cannot be transcoded (invalid JPEG): that sub-operation fails, the other
    instance (big endian, transcoded) is still sent, and the final status is 0xB000, not a refusal."""
    study = _study_of("edge_cases/MR1_JPLY_invalid_SOS")
    result = dcmtk("getscu", "-v", "-S", "-aec", loaded.server.ae_title, "-od", str(tmp_path),
                   "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                   HOST, str(loaded.server.dicom_port))
    text = result.stdout + result.stderr
    assert "Warning: SubOperationsCompleteOneOrMoreFailures" in text, text[-5000:]
    assert "Number of Completed Suboperations : 1" in text, text[-5000:]
    assert "Number of Failed Suboperations    : 1" in text, text[-5000:]
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1
    got = dcmread(files[0])
    original = originals()[str(got.SOPInstanceUID)]
    assert original.rel == "edge_cases/MR_small_bigendian.dcm"
    assert got.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.2"
    assert (got.pixel_array == dcmread(original.path).pixel_array).all()


def test_send_survives_the_reactor_taking_its_response(storescp: StoreSCP) -> None:
    """Regression for the pynetdicom reactor race worked around in ``yunying.dimse.server``: make the
    race certain (the reactor is slow to leave its pause, the sender slow to collect its response) and
    check that every C-STORE still gets its response. Without the work-around the second one times out."""
    import threading

    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

    from yunying.dimse.server import _requeue_stolen_responses

    _requeue_stolen_responses()
    sender = threading.current_thread()

    class SlowToUnpause(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            blocked = not self.is_set()
            woken = super().wait(timeout)
            if blocked and threading.current_thread() is not sender:
                time.sleep(0.03)  # reactor still shows _is_paused = True while the next send starts
            return woken

    class SlowToCollect(queue.Queue):  # type: ignore[type-arg]
        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            if block and threading.current_thread() is sender:
                time.sleep(0.05)  # the response is queued before the sender looks for it
            return super().get(block, timeout)

    ae = AE(ae_title="RACER")
    ae.add_requested_context(CTImageStorage, ["1.2.840.10008.1.2"])
    ae.dimse_timeout = 5
    assoc = ae.associate(HOST, storescp.port, ae_title=STORESCP_AE)
    assert assoc.is_established
    checkpoint = SlowToUnpause()
    checkpoint.set()
    assoc._reactor_checkpoint = checkpoint
    assoc.dimse.msg_queue = SlowToCollect()
    ds = dcmread(data.ct_series()[0])
    try:
        statuses = [getattr(assoc.send_c_store(ds), "Status", None) for _ in range(4)]
    finally:
        assoc.release()
    assert statuses == [0x0000] * 4


def test_storage_commitment_push_model(loaded: Loaded, commitment_scp: CommitmentSCP) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

    stored = [o for o in originals().values() if o.rel.startswith(("nema_wg04_compression/", "charset/"))]
    assert stored
    never_stored = generate_uid()
    request = Dataset()
    request.TransactionUID = generate_uid()
    refs = Sequence()
    for sop_class, sop_uid in [*((o.sop_class_uid, o.sop_uid) for o in stored),
                               ("1.2.840.10008.5.1.4.1.1.2", never_stored)]:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_uid
        refs.append(item)
    request.ReferencedSOPSequence = refs

    while not commitment_scp.reports.empty():  # nothing left over from the other backend
        commitment_scp.reports.get_nowait()
    ae = AE(ae_title=COMMIT_AE)
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate(HOST, loaded.server.dicom_port, ae_title=loaded.server.ae_title)
    assert assoc.is_established
    try:
        rsp_status, _reply = assoc.send_n_action(request, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
    finally:
        assoc.release()
    assert rsp_status is not None and rsp_status.Status == 0x0000

    event_type, report = commitment_scp.reports.get(timeout=30)
    assert event_type == 2  # some failed
    assert report.TransactionUID == request.TransactionUID
    committed = {str(i.ReferencedSOPInstanceUID) for i in report.ReferencedSOPSequence}
    failed = {str(i.ReferencedSOPInstanceUID): int(i.FailureReason) for i in report.FailedSOPSequence}
    assert committed == {o.sop_uid for o in stored}
    assert failed == {never_stored: 0x0112}
