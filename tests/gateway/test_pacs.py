"""The gateway's PACS client against real peers: dcmtk's dcmqrscp as the hospital PACS and a pynetdicom
storage SCP as the C-MOVE destination. Expected values are read from the source files with pydicom.

dcmqrscp (3.6.7) neither matches nor returns Modalities in Study and computes no Number of ... Related
Instances; it refuses an IMAGE-level query without a series UID (0xC001); a C-MOVE to an AE title it does
not know is refused with 0xA801 (-> PacsError), to a known one that is down ends 0xA702 with every
instance in the Failed SOP Instance UID List (-> TransferResult not ok).
"""

from __future__ import annotations

import datetime
import io
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, _config, build_context, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

from tests.gateway.conftest import RunningPacs
from tests.support import data
from tests.support.server import free_port
from yunying.gateway.pacs import (
    MAX_PRESENTATION_CONTEXTS,
    MOVE_DESTINATION_UNKNOWN,
    UNABLE_TO_PERFORM_SUBOPS,
    WARNING_SUBOPS_FAILED,
    PacsClient,
    PacsError,
    PacsPeer,
    get_storage_contexts,
)

MOVE_AE = "GW_STORE"


@dataclass(frozen=True)
class Source:
    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    study_date: str
    accession: str
    modality: str
    patient_id: str
    patient_name: str


def sources(src: Path) -> dict[str, Source]:
    """The files a PACS was loaded from, by SOP Instance UID."""
    found = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        ds = dcmread(path, stop_before_pixels=True)
        found[ds.SOPInstanceUID] = Source(path, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
                                          ds.StudyDate, ds.get("AccessionNumber", ""), ds.Modality, ds.PatientID,
                                          str(ds.PatientName))
    return found


def studies(src: Path) -> dict[str, list[Source]]:
    by_study: dict[str, list[Source]] = {}
    for source in sources(src).values():
        by_study.setdefault(source.study_uid, []).append(source)
    return by_study


def client(pacs: RunningPacs, timeout: float = 10.0) -> PacsClient:
    return PacsClient(pacs.peer, timeout=timeout)


def assert_same_pixels(received: Mapping[str, Dataset], src: Path) -> None:
    """Each received instance decodes to the pixels of its source file (dcmqrscp sends them uncompressed)."""
    by_uid = sources(src)
    for uid, ds in received.items():
        assert np.array_equal(ds.pixel_array, dcmread(by_uid[uid].path).pixel_array), uid


class StoreSCP:
    """A pynetdicom storage SCP on a free port, keeping what it receives in memory."""

    def __init__(self, ae_title: str = MOVE_AE) -> None:
        self.ae_title = ae_title
        self.port = free_port()
        self.received: dict[str, Dataset] = {}
        self._lock = threading.Lock()
        self._server: Any = None

    def _on_store(self, event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        with self._lock:
            self.received[str(ds.SOPInstanceUID)] = ds
        return 0x0000

    @staticmethod
    def _nodelay(event: Any) -> None:
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def start(self) -> StoreSCP:
        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        handlers: list[Any] = [(evt.EVT_CONN_OPEN, self._nodelay), (evt.EVT_C_STORE, self._on_store)]
        self._server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)
        return self

    def take(self) -> dict[str, Dataset]:
        with self._lock:
            received, self.received = self.received, {}
        return received

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def store_scp() -> Iterator[StoreSCP]:
    scp = StoreSCP().start()
    yield scp
    scp.stop()


@pytest.fixture
def moving_pacs(pacs_factory: Callable[..., RunningPacs], default_src: Path, store_scp: StoreSCP) -> RunningPacs:
    """The default PACS, knowing the test's storage SCP as move destination ``GW_STORE``."""
    return pacs_factory(default_src, {store_scp.ae_title: store_scp.port})


# -- peers and verification ------------------------------------------------------------------------


def test_peer_parse() -> None:
    assert PacsPeer.parse("HOSPITAL_PACS@10.0.0.5:104") == PacsPeer("HOSPITAL_PACS", "10.0.0.5", 104, "YUNYING_GW")
    assert PacsPeer.parse("PACS@[::1]:11112", calling_ae="GW1") == PacsPeer("PACS", "::1", 11112, "GW1")
    assert str(PacsPeer.parse("PACS@pacs.hospital.local:104")) == "PACS@pacs.hospital.local:104"
    for bad in ("PACS", "PACS@host", "@host:104", "PACS@:104", "PACS@host:port", "PACS@host:0", "A_TITLE_LONGER_THAN_16@h:1"):
        with pytest.raises(ValueError):
            PacsPeer.parse(bad)


def test_echo(pacs: RunningPacs) -> None:
    assert client(pacs).echo() is True


def test_get_proposes_at_most_128_contexts() -> None:
    assert len(get_storage_contexts()) + 1 <= MAX_PRESENTATION_CONTEXTS


# -- C-FIND ----------------------------------------------------------------------------------------


def test_find_studies_all_and_by_date_range(pacs: RunningPacs) -> None:
    expected = studies(pacs.src)
    hits = client(pacs).find_studies()
    assert {hit.study_uid for hit in hits} == set(expected)
    for hit in hits:
        first = expected[hit.study_uid][0]
        assert (hit.study_date, hit.accession, hit.patient_key) == (first.study_date, first.accession, first.patient_id)

    dates = sorted({items[0].study_date for items in expected.values()})
    assert len(dates) >= 3
    as_date = [datetime.datetime.strptime(d, "%Y%m%d").date() for d in dates]

    def uids_between(low: str, high: str) -> set[str]:
        return {uid for uid, items in expected.items() if low <= items[0].study_date <= high}

    pacs_client = client(pacs)
    one_day = pacs_client.find_studies(date_from=as_date[1], date_to=as_date[1])
    assert {hit.study_uid for hit in one_day} == uids_between(dates[1], dates[1])
    since = pacs_client.find_studies(date_from=as_date[1])
    assert {hit.study_uid for hit in since} == uids_between(dates[1], "99999999")
    until = pacs_client.find_studies(date_to=as_date[1] - datetime.timedelta(days=1))
    assert {hit.study_uid for hit in until} == uids_between("", dates[0])
    assert pacs_client.find_studies(date_from=as_date[-1] + datetime.timedelta(days=1)) == []


def test_find_studies_by_accession(pacs: RunningPacs) -> None:
    expected = studies(pacs.src)
    accessions = {items[0].accession for items in expected.values()}
    assert len(accessions) >= 2
    pacs_client = client(pacs)
    for accession in accessions:
        hits = pacs_client.find_studies(accession=accession)
        assert {hit.study_uid for hit in hits} == {uid for uid, items in expected.items() if items[0].accession == accession}
    assert pacs_client.find_studies(accession="NO-SUCH-ACCESSION") == []


def test_find_studies_by_modality(pacs: RunningPacs) -> None:
    """dcmqrscp ignores Modalities in Study: the client filters by the studies' series."""
    expected = studies(pacs.src)
    modalities = {source.modality for items in expected.values() for source in items}
    assert len(modalities) >= 3
    pacs_client = client(pacs)
    for modality in modalities:
        hits = pacs_client.find_studies(modality=modality)
        assert {hit.study_uid for hit in hits} == {
            uid for uid, items in expected.items() if any(s.modality == modality for s in items)}
        for hit in hits:
            assert hit.modalities == tuple(sorted({s.modality for s in expected[hit.study_uid]}))
    assert pacs_client.find_studies(modality="PT") == []


def test_find_series_instances_and_count(pacs: RunningPacs) -> None:
    pacs_client = client(pacs)
    for study_uid, items in studies(pacs.src).items():
        series = pacs_client.find_series(study_uid)
        assert {(hit.series_uid, hit.modality) for hit in series} == {(s.series_uid, s.modality) for s in items}
        assert all(hit.number_of_instances is None for hit in series)  # dcmqrscp does not compute it
        for hit in series:
            assert sorted(pacs_client.find_instances(study_uid, hit.series_uid)) == sorted(
                s.sop_uid for s in items if s.series_uid == hit.series_uid)
        assert pacs_client.count_instances(study_uid) == len(items)
    assert pacs_client.find_series("1.2.3.4.5.6.7.8.9") == []
    assert pacs_client.count_instances("1.2.3.4.5.6.7.8.9") == 0


def test_find_failure_status_raises(pacs: RunningPacs) -> None:
    """dcmqrscp answers 0xC000 (unable to process) to a query lacking a unique key of a level above (hierarchical query).

    The public API always sends those keys, so the refused identifier goes through the internals.
    """
    pacs_client = client(pacs)
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.SeriesInstanceUID = ""
    with pytest.raises(PacsError, match=r"C-FIND at .* failed: 0xC000 Failed: unable to process") as err:
        with pacs_client._association([build_context(StudyRootQueryRetrieveInformationModelFind)]) as assoc:
            list(pacs_client._find(assoc, query))
    assert err.value.status == 0xC000
    with pytest.raises(ValueError, match="series_uid"):
        pacs_client.find_instances(next(iter(studies(pacs.src))), "")


def test_load_adds_instances(pacs: RunningPacs) -> None:
    path = data.SHARED / "dicomdir_media_pcir/98892003/MR1/4919"
    new = dcmread(path, stop_before_pixels=True)
    assert new.StudyInstanceUID not in studies(pacs.src)
    pacs.load([path])
    hits = client(pacs).find_studies(accession=str(new.AccessionNumber))
    assert [hit.study_uid for hit in hits] == [new.StudyInstanceUID]


# -- C-MOVE ----------------------------------------------------------------------------------------


def test_move_study(moving_pacs: RunningPacs, store_scp: StoreSCP) -> None:
    pacs_client = client(moving_pacs)
    for study_uid, items in studies(moving_pacs.src).items():
        result = pacs_client.move(study_uid, MOVE_AE)
        assert result.ok, result
        assert (result.completed, result.failed, result.failed_sop_uids) == (len(items), 0, [])
        received = store_scp.take()
        on_pacs = {uid for series in pacs_client.find_series(study_uid)
                   for uid in pacs_client.find_instances(study_uid, series.series_uid)}
        assert set(received) == on_pacs == {s.sop_uid for s in items}
        assert_same_pixels(received, moving_pacs.src)


def test_move_series_and_instances(moving_pacs: RunningPacs, store_scp: StoreSCP) -> None:
    by_study = studies(moving_pacs.src)
    # a study with several series, the largest of them holding several instances
    study_uid, items = max(by_study.items(), key=lambda kv: (len({s.series_uid for s in kv[1]}) > 1, len(kv[1])))
    series_uids = sorted({s.series_uid for s in items})
    assert len(series_uids) >= 2
    pacs_client = client(moving_pacs)

    result = pacs_client.move(study_uid, MOVE_AE, series_uid=series_uids[0])
    assert result.ok
    assert set(store_scp.take()) == {s.sop_uid for s in items if s.series_uid == series_uids[0]}

    biggest = max(series_uids, key=lambda uid: sum(s.series_uid == uid for s in items))
    wanted = sorted(s.sop_uid for s in items if s.series_uid == biggest)[:2]
    result = pacs_client.move(study_uid, MOVE_AE, series_uid=biggest, sop_uids=wanted)
    assert result.ok and result.completed == len(wanted) == 2
    received = store_scp.take()
    assert set(received) == set(wanted)
    assert_same_pixels(received, moving_pacs.src)

    with pytest.raises(ValueError, match="series_uid"):
        pacs_client.move(study_uid, MOVE_AE, sop_uids=wanted)


def test_move_to_unknown_destination_raises(moving_pacs: RunningPacs) -> None:
    """A destination the PACS does not know is a refused request (0xA801): PacsError, not a result."""
    study_uid = next(iter(studies(moving_pacs.src)))
    with pytest.raises(PacsError, match="move destination unknown") as err:
        client(moving_pacs).move(study_uid, "NOT_CONFIGURED")
    assert err.value.status == MOVE_DESTINATION_UNKNOWN


def test_move_to_destination_that_is_down(pacs: RunningPacs) -> None:
    """A known destination nobody listens on: every sub-operation fails, reported in the result."""
    (down_ae,) = pacs.peers
    study_uid, items = next(iter(studies(pacs.src).items()))
    result = client(pacs).move(study_uid, down_ae)
    assert not result.ok
    assert result.status == UNABLE_TO_PERFORM_SUBOPS and result.completed == 0
    assert sorted(result.failed_sop_uids) == sorted(s.sop_uid for s in items)


# -- C-GET -----------------------------------------------------------------------------------------


def test_get_study(pacs: RunningPacs) -> None:
    pacs_client = client(pacs)
    for study_uid, items in studies(pacs.src).items():
        blobs: list[bytes] = []

        def keep(blob: bytes, blobs: list[bytes] = blobs) -> int:
            blobs.append(blob)
            return 0x0000

        result = pacs_client.get(study_uid, keep)
        assert result.ok and result.completed == len(items) == len(blobs)
        received = {}
        for blob in blobs:
            assert blob[128:132] == b"DICM"  # DICOM Part 10: preamble, prefix, file meta, data set
            ds = dcmread(io.BytesIO(blob))
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
            received[str(ds.SOPInstanceUID)] = ds
        assert set(received) == {s.sop_uid for s in items}
        assert_same_pixels(received, pacs.src)


def test_get_series_instances_and_refusals(pacs: RunningPacs) -> None:
    study_uid, items = max(studies(pacs.src).items(), key=lambda kv: len(kv[1]))
    series_uid = max({s.series_uid for s in items}, key=lambda uid: sum(s.series_uid == uid for s in items))
    in_series = sorted(s.sop_uid for s in items if s.series_uid == series_uid)
    assert len(in_series) >= 3
    pacs_client = client(pacs)

    uids: list[str] = []

    def keep_uid(blob: bytes) -> int:
        uids.append(dcmread(io.BytesIO(blob)).SOPInstanceUID)
        return 0x0000

    result = pacs_client.get(study_uid, keep_uid, series_uid=series_uid)
    assert result.ok and sorted(uids) == in_series

    refused, broken = in_series[0], in_series[1]

    def picky(blob: bytes) -> int:
        uid = dcmread(io.BytesIO(blob)).SOPInstanceUID
        if uid == broken:
            raise OSError("disk full")  # answered 0x0110 processing failure
        return 0xA700 if uid == refused else 0x0000

    result = pacs_client.get(study_uid, picky, series_uid=series_uid, sop_uids=in_series[:3])
    assert not result.ok
    assert (result.status, result.completed, result.failed) == (WARNING_SUBOPS_FAILED, 1, 2)
    assert sorted(result.failed_sop_uids) == sorted([refused, broken])


# -- failures and privacy ----------------------------------------------------------------------------


def test_unreachable_peer_fails_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(PacsError, match="cannot reach"):
        PacsClient(PacsPeer("HOSPITAL_PACS", "127.0.0.1", free_port()), timeout=5).echo()
    assert time.monotonic() - started < 2


def test_mute_peer_times_out() -> None:
    """A port that accepts TCP but never answers the A-ASSOCIATE-RQ (a hung PACS, a stale NAT)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(PacsError, match="no association response within 1 s"):
            PacsClient(PacsPeer("HOSPITAL_PACS", "127.0.0.1", port), timeout=1).find_studies()
        assert time.monotonic() - started < 4


def test_rejected_association(pacs: RunningPacs) -> None:
    """dcmqrscp answers an unknown called AE title with A-ASSOCIATE-RJ, and the client says so.

    dcmqrscp drops the connection right after the RJ; on a busy machine the reset can reach the
    client before it has read the RJ (the kernel then discards it), which reads as "cannot reach".
    That race is the peer's, so the test allows it twice before it must see the rejection.
    """
    wrong = PacsPeer("NOT_THE_PACS", pacs.peer.host, pacs.peer.port)
    messages = []
    for _ in range(3):
        with pytest.raises(PacsError) as caught:
            PacsClient(wrong, timeout=30).echo()
        messages.append(str(caught.value))
        if re.search(r"rejected .*Called AE title not recognised", messages[-1]):
            break
    else:
        pytest.fail("\n".join(messages) + f"\n--- PACS log ---\n{pacs.log}")
    assert all("NOT_THE_PACS" in m for m in messages)


def test_patient_identifiers_not_logged(moving_pacs: RunningPacs, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pynetdicom")
    pacs_client = client(moving_pacs)
    for hit in pacs_client.find_studies(modality="CT"):
        assert hit.patient_key  # returned to the caller ...
        pacs_client.count_instances(hit.study_uid)
        pacs_client.move(hit.study_uid, MOVE_AE)
        pacs_client.get(hit.study_uid, lambda _blob: 0x0000)
    assert "C-FIND" in caplog.text and "Find SCP Response" in caplog.text  # ... the logs were captured ...
    patients = {(source.patient_id, source.patient_name) for source in sources(moving_pacs.src).values()}
    for patient_id, patient_name in patients:  # ... but never logged
        assert patient_id not in caplog.text
        assert patient_name not in caplog.text

    # and the check would see them: pynetdicom's default logs every response identifier
    caplog.clear()
    _config.LOG_RESPONSE_IDENTIFIERS = True
    try:
        pacs_client.find_studies()
    finally:
        _config.LOG_RESPONSE_IDENTIFIERS = False
    assert all(patient_id in caplog.text for patient_id, _ in patients)
