"""Bad input gets a clear error and leaves no partial state.

Every row of the table is sent to a running archive (STOW-RS over HTTP, or C-STORE over
DIMSE); the test checks the error (HTTP status, problem document or STOW failure entry,
DIMSE status and Error Comment) and that the index rows and blob files are exactly as
before. The servers run once per database back-end for the whole module: one with default
limits and two with a small request / instance size limit.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import generate_uid
from pynetdicom import AE
from sqlalchemy import create_engine, func, select

from tests.faults.conftest import BOUNDARY, DICOM_JSON, PROBLEM_JSON, STOW_TYPE, blob_files, multipart_body, real_ct_files
from tests.support.data import SHARED
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import ServerProcess
from yunying.index.models import Instance, Patient, Series, Study

SMALL_LIMIT = 65536
SERVER_ENV = {
    "default": {},
    "small-request": {"YUNYING_MAX_REQUEST_BYTES": str(SMALL_LIMIT)},
    "small-instance": {"YUNYING_MAX_INSTANCE_BYTES": str(SMALL_LIMIT)},
}
INVALID, TOO_LARGE, MISMATCH = 0xC000, 0xA700, 0xA900


# --------------------------------------------------------------------------- inputs


def _ct(**changes: Any) -> Dataset:
    """A real CT slice with fresh UIDs; ``changes`` set attributes (``None`` deletes one)."""
    ds = pydicom.dcmread(real_ct_files(1)[0])
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def _part10(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _valid() -> bytes:
    return _part10(_ct())


def _small_valid() -> bytes:
    """A valid instance of a few kilobytes (a 16x16 crop of the CT)."""
    ds = _ct(Rows=16, Columns=16)
    ds.PixelData = bytes(16 * 16 * 2)
    return _part10(ds)


def _with_transfer_syntax(data: bytes, uid: str) -> bytes:
    """Rewrite the File Meta Information with another Transfer Syntax UID, keeping the data set bytes."""
    assert data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00"
    meta_end = 144 + struct.unpack("<I", data[140:144])[0]
    meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = uid
    buf = DicomBytesIO()
    write_file_meta_info(buf, meta, enforce_standard=True)
    return data[:132] + buf.getvalue() + data[meta_end:]


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + bytes(range(8)) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _dicom_part(data: bytes) -> bytes:
    return multipart_body([("application/dicom", data)])


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Bad:
    """One kind of bad input and the answer it must get."""

    id: str
    build: Callable[[], Any]  # STOW: the request body; DIMSE: the data set
    status: int  # HTTP status, or DIMSE status
    says: str  # a phrase the error (problem detail, failure reason, Error Comment) must contain
    reason: int | None = None  # STOW: FailureReason of the one failed part; None: a problem document
    content_type: str = STOW_TYPE
    path: str = "/studies"
    server: str = "default"
    dimse: bool = False
    slow: bool = False  # send the body in pieces, pausing after the first few kilobytes
    chunked: bool = False  # ... and without a Content-Length (Transfer-Encoding: chunked)
    marks: tuple[Any, ...] = field(default=())


TABLE: list[Bad] = [
    Bad("not-dicom-random-bytes", lambda: _dicom_part(os.urandom(4096)), 409, "not a DICOM Part 10 file", INVALID),
    Bad("png-image", lambda: _dicom_part(_png()), 409, "not a DICOM Part 10 file", INVALID),
    Bad("truncated-part10-300-bytes", lambda: _dicom_part(_valid()[:300]), 409, "missing SOP Class UID", INVALID),
    Bad("no-preamble-no-meta", lambda: _dicom_part((SHARED / "edge_cases/no_meta.dcm").read_bytes()), 409,
        "not a DICOM Part 10 file", INVALID),
    Bad("meta-without-transfer-syntax", lambda: _dicom_part((SHARED / "edge_cases/meta_missing_tsyntax.dcm").read_bytes()),
        409, "no Transfer Syntax UID", INVALID),
    Bad("unknown-transfer-syntax", lambda: _dicom_part(_with_transfer_syntax(_valid(), "1.2.3.4")), 409,
        "unknown or unsupported Transfer Syntax UID 1.2.3.4", INVALID),
    Bad("garbage-after-valid-meta", lambda: _dicom_part(_valid()[:400] + bytes(range(256)) * 64), 409,
        "missing SOP", INVALID),
    Bad("missing-sop-class-uid", lambda: _dicom_part(_part10(_ct(SOPClassUID=None))), 409, "missing SOP Class UID", INVALID),
    Bad("missing-sop-instance-uid", lambda: _dicom_part(_part10(_ct(SOPInstanceUID=None))), 409,
        "missing SOP Instance UID", INVALID),
    Bad("missing-study-instance-uid", lambda: _dicom_part(_part10(_ct(StudyInstanceUID=None))), 409,
        "missing Study Instance UID", INVALID),
    Bad("missing-series-instance-uid", lambda: _dicom_part(_part10(_ct(SeriesInstanceUID=None))), 409,
        "missing Series Instance UID", INVALID),
    Bad("malformed-uid-letters", lambda: _dicom_part(_part10(_ct(SOPInstanceUID="1.2.840.abc.7"))), 409,
        "malformed SOP Instance UID", INVALID),
    Bad("malformed-uid-too-long", lambda: _dicom_part(_part10(_ct(StudyInstanceUID="1." + "2" * 70))), 409,
        "malformed Study Instance UID", INVALID),
    Bad("study-mismatch", lambda: _dicom_part(_valid()), 409, "differs from the target study", MISMATCH,
        path="/studies/1.2.826.0.1.3680043.8.498.999999"),
    Bad("part-media-type-text-plain", lambda: multipart_body([("text/plain", b"hello, archive")]), 409,
        "'text/plain' is not application/dicom", INVALID),
    Bad("content-type-application-json", lambda: b'{"00080018": {"vr": "UI"}}', 415, "multipart/related",
        content_type="application/json"),
    Bad("multipart-without-boundary", lambda: _dicom_part(_valid()), 415, "boundary",
        content_type='multipart/related; type="application/dicom"'),
    Bad("multipart-of-json", lambda: _dicom_part(_valid()), 415, "multipart/related",
        content_type=f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}'),
    Bad("empty-multipart-body", lambda: b"", 400, "no parts"),
    Bad("multipart-only-closing-delimiter", lambda: f"--{BOUNDARY}--\r\n".encode(), 400, "no parts"),
    Bad("multipart-body-without-boundary", lambda: os.urandom(2048), 400, "multipart"),
    Bad("multipart-cut-inside-the-part", lambda: _dicom_part(_valid())[:200_000], 400, "multipart"),
    Bad("oversized-request", lambda: multipart_body([("application/dicom", _small_valid()),
                                                     ("application/dicom", _valid())]),
        413, f"exceeds {SMALL_LIMIT} bytes", server="small-request"),
    # the body arrives slowly: a small valid part first, the limit is crossed only later
    Bad("oversized-request-arriving-slowly", lambda: multipart_body([("application/dicom", _small_valid()),
                                                                     ("application/dicom", _valid())]),
        413, f"exceeds {SMALL_LIMIT} bytes", server="small-request", slow=True),
    Bad("oversized-instance", lambda: _dicom_part(_valid()), 409, f"size limit of {SMALL_LIMIT} bytes", TOO_LARGE,
        server="small-instance"),
    Bad("dimse-missing-study-uid", lambda: _ct(StudyInstanceUID=None), INVALID, "missing Study Instance UID", dimse=True),
    Bad("dimse-malformed-series-uid", lambda: _ct(SeriesInstanceUID="1.2.3.x"), INVALID, "malformed Series Instance UID",
        dimse=True),
    Bad("dimse-malformed-study-uid-too-long", lambda: _ct(StudyInstanceUID="1." + "2" * 70), INVALID,
        "malformed Study Instance UID", dimse=True),
]


# --------------------------------------------------------------------------- servers and state


class Servers:
    """Servers of one database back-end, started on first use (one database each)."""

    def __init__(self, backend: str, folder: Path, stack: ExitStack) -> None:
        self.backend, self.folder, self.stack = backend, folder, stack
        self.running: dict[str, ServerProcess] = {}
        self.urls: dict[str, str] = {}

    def get(self, kind: str) -> ServerProcess:
        if kind not in self.running:
            url = self.stack.enter_context(fresh_database(self.backend, self.folder / kind))
            (self.folder / kind).mkdir(exist_ok=True)
            proc = ServerProcess(self.folder / kind / "data", url, env=dict(SERVER_ENV[kind]))
            self.stack.callback(proc.stop)
            self.running[kind] = proc.start()
            self.urls[kind] = url
        return self.running[kind]


@pytest.fixture(scope="module", params=BACKENDS)
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(request.param, tmp_path_factory.mktemp(f"bad-input-{request.param}"), stack)


@dataclass(frozen=True)
class State:
    rows: dict[str, int]
    blobs: list[Path]


def _state(server: ServerProcess) -> State:
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            rows = {m.__tablename__: int(conn.execute(select(func.count()).select_from(m)).scalar_one())
                    for m in (Patient, Study, Series, Instance)}
    finally:
        engine.dispose()
    return State(rows, blob_files(server))


def _assert_healthy(server: ServerProcess) -> None:
    r = httpx.get(server.url + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def _assert_problem(r: httpx.Response, status: int, says: str) -> None:
    assert r.status_code == status, (r.status_code, r.headers.get("content-type"), r.text[:500])
    assert r.headers["content-type"].startswith(PROBLEM_JSON), r.headers["content-type"]
    body = r.json()
    assert isinstance(body.get("title"), str) and body["title"], body
    assert body["status"] == status, body
    assert says.lower() in (body["title"] + " " + body.get("detail", "")).lower(), body


def _failures(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.headers["content-type"].startswith(DICOM_JSON), (r.status_code, r.headers["content-type"], r.text[:500])
    return list(r.json().get("00081198", {}).get("Value", []))


def _assert_failure_entry(item: dict[str, Any], reason: int, says: str) -> None:
    assert item["00081197"]["Value"] == [reason], item
    text = item["00091001"]["Value"][0]
    assert says.lower() in text.lower(), text


def _stow(server: ServerProcess, body: bytes, content_type: str = STOW_TYPE, path: str = "/studies",
          slow: bool = False, chunked: bool = False) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if not slow:
        return httpx.post(server.dicomweb + path, content=body, headers=headers, auth=server.auth, timeout=60)

    def pieces() -> Iterator[bytes]:
        yield body[:8192]
        time.sleep(0.5)  # the server has the first part by now
        for at in range(8192, len(body), 16384):
            yield body[at:at + 16384]

    if not chunked:
        headers["Content-Length"] = str(len(body))
    try:
        return httpx.post(server.dicomweb + path, content=pieces(), headers=headers, auth=server.auth, timeout=60)
    except httpx.TransportError as exc:  # the server may answer and close before the client finished sending
        pytest.fail(f"no HTTP answer to an oversized request: {exc!r}")


def _c_store(server: ServerProcess, ds: Dataset) -> Dataset:
    ae = AE(ae_title="BADINPUT")
    ae.add_requested_context(ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.ae_title)
    assert assoc.is_established
    try:
        status: Dataset = assoc.send_c_store(ds)
    finally:
        assoc.release()
    return status


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("bad", [pytest.param(b, id=b.id, marks=b.marks) for b in TABLE])
def test_bad_input_is_refused_and_changes_nothing(servers: Servers, bad: Bad) -> None:
    server = servers.get(bad.server)
    payload = bad.build()
    before = _state(server)
    if bad.dimse:
        status = _c_store(server, payload)
        assert status.Status == bad.status, status
        assert bad.says.lower() in str(status.get("ErrorComment", "")).lower(), status
    else:
        r = _stow(server, payload, bad.content_type, bad.path, bad.slow, bad.chunked)
        if bad.reason is None:
            _assert_problem(r, bad.status, bad.says)
        else:
            assert r.status_code == bad.status, (r.status_code, r.text[:500])
            body = r.json()
            assert "00081199" not in body, f"something was stored: {body}"
            (item,) = _failures(r)
            _assert_failure_entry(item, bad.reason, bad.says)
    assert _state(server) == before, "the store changed"
    _assert_healthy(server)


def test_unauthenticated_stow_is_refused(servers: Servers) -> None:
    server = servers.get("default")
    before = _state(server)
    r = httpx.post(server.dicomweb + "/studies", content=_dicom_part(_valid()), headers={"Content-Type": STOW_TYPE},
                   auth=("admin", "wrong-password"), timeout=60)
    _assert_problem(r, 401, "")
    assert _state(server) == before


def test_good_and_bad_parts_in_one_request(servers: Servers) -> None:
    """The good part is stored, the bad one is listed with its reason: 202, one more instance."""
    server = servers.get("default")
    good = _ct()
    before = _state(server)
    r = _stow(server, multipart_body([("application/dicom", _part10(good)), ("application/dicom", _png())]))
    assert r.status_code == 202, r.text
    referenced = r.json()["00081199"]["Value"]
    assert [item["00081155"]["Value"][0] for item in referenced] == [good.SOPInstanceUID]
    (item,) = _failures(r)
    _assert_failure_entry(item, INVALID, "not a DICOM Part 10 file")
    after = _state(server)
    assert after.rows["instance"] == before.rows["instance"] + 1
    assert len(after.blobs) == len(before.blobs) + 1


def test_request_cut_after_a_good_part_is_not_a_success(servers: Servers) -> None:
    """A body that ends inside its second part (no closing delimiter) must not answer 200 "all stored"."""
    server = servers.get("default")
    good = _ct()
    body = multipart_body([("application/dicom", _part10(good)), ("application/dicom", _valid())], close=False)
    cut = body[: len(body) - 100_000]
    r = _stow(server, cut)
    assert r.status_code == 202, (r.status_code, r.text[:500])
    referenced = r.json()["00081199"]["Value"]
    assert [item["00081155"]["Value"][0] for item in referenced] == [good.SOPInstanceUID]
    (item,) = _failures(r)
    _assert_failure_entry(item, INVALID, "closing delimiter")


def test_chunked_oversized_request_says_what_was_stored(servers: Servers) -> None:
    """Without a Content-Length the limit can only be noticed mid-stream, after earlier parts were stored.

    The answer must not hide that: either a 413 with nothing stored, or the STOW response listing the
    stored part and a 0xA700 failure for the rest.
    """
    server = servers.get("small-request")
    first = _ct(Rows=16, Columns=16)
    first.PixelData = bytes(16 * 16 * 2)
    body = multipart_body([("application/dicom", _part10(first)), ("application/dicom", _valid())])
    before = _state(server)
    r = _stow(server, body, slow=True, chunked=True)
    after = _state(server)
    if r.status_code == 413:
        _assert_problem(r, 413, f"exceeds {SMALL_LIMIT} bytes")
        assert after == before
        return
    assert r.status_code == 202, (r.status_code, r.text[:500])
    referenced = r.json()["00081199"]["Value"]
    assert [item["00081155"]["Value"][0] for item in referenced] == [first.SOPInstanceUID]
    (item,) = _failures(r)
    _assert_failure_entry(item, TOO_LARGE, f"exceeds {SMALL_LIMIT} bytes")
    assert after.rows["instance"] == before.rows["instance"] + 1


def test_servers_still_healthy(servers: Servers) -> None:
    for kind in SERVER_ENV:
        server = servers.get(kind)
        _assert_healthy(server)
        assert "Traceback" not in server.log(), f"{kind} server logged an unhandled error:\n{server.log()[-4000:]}"
