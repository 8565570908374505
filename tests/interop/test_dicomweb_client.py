"""Interoperability with the reference Python DICOMweb client (``dicomweb-client``).

One real ``yunying serve`` process per database backend (SQLite, PostgreSQL) is loaded once
through STOW-RS by ``DICOMwebClient.store_instances`` with real data from the shared set; every
test then talks to it through the client (thumbnails and WADO-URI, which the client has no
method for, through the same authenticated session / httpx). Results are compared with the
source files, not only with status codes.

The server is started with ``YUNYING_PUBLIC_URL``: dicomweb-client sends ``Host: 127.0.0.1``
without the port on non-chunked requests, so URLs derived from the Host header (RetrieveURL,
BulkDataURI) would point at port 80.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.support.data import SHARED, ct_series, rel
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import ServerProcess

EVRLE = str(ExplicitVRLittleEndian)
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
WARNING_DUPLICATE = 0xB000

MR_MATRIX = [f"transfer_syntax_matrix_siemens_mr/{n}.dcm" for n in range(1, 10)]
CHINESE = ["charset/chrX1.dcm", "charset/chrX2.dcm"]
ECG = "waveform_ecg/anonymous_ecg_12lead_mortara.dcm"
SEG_SR = [
    "seg_sr/ct-3slice/01.dcm", "seg_sr/ct-3slice/02.dcm", "seg_sr/ct-3slice/03.dcm", "seg_sr/liver_seg.dcm",
    "seg_sr/highdicom_sr_document_tid1500.dcm", "seg_sr/test-SR_dcmtk_nested.dcm",
    "seg_sr/report_dfl_enhanced_sr_deflate",
]
NM = "multiframe_us_nm_xa/NM-MONO2-16-13x-heart"
OTHERS = [*MR_MATRIX, *CHINESE, ECG, *SEG_SR, NM]
NOT_DECODABLE = "edge_cases/JPEG2000-embedded-sequence-delimiter.dcm"


# --------------------------------------------------------------------------------------------
# source data
# --------------------------------------------------------------------------------------------

class Corpus:
    """The source datasets (as read from the shared data), keyed by their path relative to SHARED."""

    def __init__(self) -> None:
        self.ct = [rel(p) for p in ct_series()]
        self.ds: dict[str, Dataset] = {name: pydicom.dcmread(SHARED / name) for name in [*self.ct, *OTHERS]}
        self._pixels: dict[str, np.ndarray] = {}

    def pixels(self, name: str) -> np.ndarray:
        if name not in self._pixels:
            self._pixels[name] = self.ds[name].pixel_array
        return self._pixels[name]

    def uids(self, name: str) -> tuple[str, str, str]:
        ds = self.ds[name]
        return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)

    def studies(self) -> set[str]:
        return {str(ds.StudyInstanceUID) for ds in self.ds.values()}

    def by_study(self, study: str) -> list[str]:
        return [n for n, ds in self.ds.items() if ds.StudyInstanceUID == study]


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return Corpus()


# --------------------------------------------------------------------------------------------
# one server per backend, loaded once through STOW-RS
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Module-scoped override of the conftest fixture: one database per backend for this file."""
    with fresh_database(request.param, tmp_path_factory.mktemp(f"dwc-{request.param}")) as url:
        yield url


@pytest.fixture(scope="module")
def web(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("dwc-server") / "server", db_url)
    proc.env["YUNYING_PUBLIC_URL"] = proc.url
    proc.start()
    yield proc
    proc.stop()


@dataclass
class Recorder:
    """Keeps every HTTP response the client sees (dicomweb-client hides 2xx status codes)."""

    responses: list[requests.Response] = field(default_factory=list)

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self.responses.append(response)
        return response

    @property
    def last(self) -> requests.Response:
        return self.responses[-1]


@dataclass
class Web:
    server: ServerProcess
    client: DICOMwebClient
    session: requests.Session
    recorder: Recorder


def _client(server: ServerProcess) -> Web:
    session = requests.Session()
    session.auth = server.auth
    recorder = Recorder()
    client = DICOMwebClient(url=server.dicomweb, session=session, callback=recorder, timeout=120)
    client.set_http_retry_params(retry=False)
    return Web(server, client, session, recorder)


@pytest.fixture
def dw(web: ServerProcess) -> Web:
    return _client(web)


@dataclass
class Stored:
    batches: list[tuple[list[str], int, Dataset]]  # (source names, HTTP status, STOW response data set)


@pytest.fixture(scope="module")
def loaded(web: ServerProcess, corpus: Corpus) -> Stored:
    w = _client(web)
    batches: list[tuple[list[str], int, Dataset]] = []
    groups = [corpus.ct[i:i + 34] for i in range(0, len(corpus.ct), 34)] + [OTHERS]
    for names in groups:
        response = w.client.store_instances([corpus.ds[n] for n in names])
        batches.append((names, w.recorder.last.status_code, response))
    return Stored(batches)


def _new_instance(template: Dataset) -> Dataset:
    """A copy of ``template`` with fresh UIDs and a patient of its own (so QIDO results stay predictable)."""
    ds = copy.deepcopy(template)
    ds.PatientName = "Probe^Stow"
    ds.PatientID = "DWC-STOW-PROBE"
    ds.StudyDate = "19000101"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _stow_bytes(w: Web, blobs: list[bytes], study: str | None = None) -> requests.Response:
    """STOW-RS of Part 10 files exactly as they are on disk (dicomweb-client re-encodes data sets)."""
    boundary = "dwc-interop-boundary"
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + b + b"\r\n" for b in blobs)
    body += f"--{boundary}--\r\n".encode()
    url = w.server.dicomweb + "/studies" + (f"/{study}" if study else "")
    return w.session.post(url, data=body, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json"}, timeout=60)


def _assert_problem(response: requests.Response | httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _http_error(call: Callable[[], Any]) -> requests.Response:
    with pytest.raises(requests.HTTPError) as info:
        call()
    assert info.value.response is not None
    return info.value.response


def _value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None


def _instance_url(w: Web, study: str, series: str, sop: str) -> str:
    return f"{w.server.dicomweb}/studies/{study}/series/{series}/instances/{sop}"


def _assert_same_attributes(got: Dataset, source: Dataset, ignore: frozenset[int] = frozenset()) -> None:
    """Every non-meta, non-pixel top-level attribute of ``source`` is in ``got`` with the same value."""
    for elem in source:
        if elem.tag.group == 0x0002 or elem.tag.element == 0 or elem.tag in PIXEL_TAGS or elem.tag in ignore:
            continue  # file meta, (retired) group lengths, pixel data: checked separately
        assert elem.tag in got, f"{elem.tag} {elem.keyword} missing"
        assert got[elem.tag].value == elem.value, f"{elem.tag} {elem.keyword} differs"


# --------------------------------------------------------------------------------------------
# 1. STOW-RS
# --------------------------------------------------------------------------------------------

def test_stow_lists_every_instance_with_retrieve_url(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    assert sum(len(names) for names, _, _ in loaded.batches) == len(corpus.ct) + len(OTHERS)
    for names, status, response in loaded.batches:
        assert status == 200, names
        assert "FailedSOPSequence" not in response
        referenced = response.ReferencedSOPSequence
        assert [item.ReferencedSOPInstanceUID for item in referenced] == [corpus.ds[n].SOPInstanceUID for n in names]
        for name, item in zip(names, referenced, strict=True):
            study, series, sop = corpus.uids(name)
            assert item.ReferencedSOPClassUID == corpus.ds[name].SOPClassUID
            assert item.RetrieveURL == _instance_url(dw, study, series, sop)
            assert "WarningReason" not in item
    # a RetrieveURL is a working WADO-RS URL
    name = "charset/chrX1.dcm"
    url = next(i.RetrieveURL for names, _, r in loaded.batches for n, i in zip(names, r.ReferencedSOPSequence, strict=True)
               if n == name)
    # dicomweb-client has no "retrieve by URL" for instances: GET it with the same session
    fetched = dw.session.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=30)
    assert fetched.status_code == 200
    assert corpus.ds[name].SOPInstanceUID.encode() in fetched.content


def test_stow_missing_sop_instance_uid_is_a_failure(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    broken = _new_instance(corpus.ds["charset/chrX1.dcm"])
    del broken.SOPInstanceUID
    # nothing stored: 409, which dicomweb-client raises
    response = _http_error(lambda: dw.client.store_instances([broken]))
    assert response.status_code == 409
    body = Dataset.from_json(response.json())
    assert "ReferencedSOPSequence" not in body
    (failed,) = body.FailedSOPSequence
    assert failed.FailureReason  # a PS3.18 failure reason code
    assert "ReferencedSOPInstanceUID" not in failed
    assert "SOP Instance UID" in failed[0x00091001].value  # yunying's reason text (private, creator YUNYING)

    # one good, one bad: 202 with both sequences
    good = _new_instance(corpus.ds["charset/chrX2.dcm"])
    result = dw.client.store_instances([good, broken])
    assert dw.recorder.last.status_code == 202
    assert [i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence] == [good.SOPInstanceUID]
    assert result.ReferencedSOPSequence[0].RetrieveURL == _instance_url(
        dw, good.StudyInstanceUID, good.SeriesInstanceUID, good.SOPInstanceUID)
    (failed,) = result.FailedSOPSequence
    assert failed.FailureReason
    stored = dw.client.retrieve_instance(good.StudyInstanceUID, good.SeriesInstanceUID, good.SOPInstanceUID)
    assert stored.PatientName == "Probe^Stow"


def test_stow_to_another_study_is_a_failure(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    ds = _new_instance(corpus.ds[ECG])
    other = generate_uid()
    response = _http_error(lambda: dw.client.store_instances([ds], study_instance_uid=other))
    assert response.status_code == 409
    body = Dataset.from_json(response.json())
    (failed,) = body.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert failed.ReferencedSOPClassUID == ds.SOPClassUID
    assert failed.FailureReason
    assert body.RetrieveURL == f"{dw.server.dicomweb}/studies/{other}"
    assert dw.client.search_for_instances(search_filters={"SOPInstanceUID": ds.SOPInstanceUID}) == []
    assert _http_error(lambda: dw.client.retrieve_study_metadata(other)).status_code == 404

    # mixed with an instance of the addressed study: 202, only the matching one stored
    same = _new_instance(corpus.ds[ECG])
    result = dw.client.store_instances([ds, same], study_instance_uid=same.StudyInstanceUID)
    assert dw.recorder.last.status_code == 202
    assert [i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence] == [same.SOPInstanceUID]
    assert [i.ReferencedSOPInstanceUID for i in result.FailedSOPSequence] == [ds.SOPInstanceUID]
    assert result.RetrieveURL == f"{dw.server.dicomweb}/studies/{same.StudyInstanceUID}"

    # into its own study it is accepted
    result = dw.client.store_instances([ds], study_instance_uid=ds.StudyInstanceUID)
    assert dw.recorder.last.status_code == 200
    assert [i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence] == [ds.SOPInstanceUID]


def test_stow_duplicate_warns_and_keeps_first_copy(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    name = corpus.ct[0]
    source = corpus.ds[name]
    study, series, sop = corpus.uids(name)
    second = copy.deepcopy(source)
    second.PatientName = "Second^Copy"
    second.ImageComments = "second copy, must not replace the first"
    second.PixelData = bytes(len(source.PixelData))
    result = dw.client.store_instances([second])
    assert dw.recorder.last.status_code == 202
    assert "FailedSOPSequence" not in result
    (item,) = result.ReferencedSOPSequence
    assert item.ReferencedSOPInstanceUID == sop
    assert item.WarningReason == WARNING_DUPLICATE
    assert item.RetrieveURL == _instance_url(dw, study, series, sop)

    kept = dw.client.retrieve_instance(study, series, sop, media_types=(("application/dicom", "*"),))
    assert kept.ImageComments == source.ImageComments
    assert kept.PatientName == source.PatientName
    assert kept.PixelData == source.PixelData
    (hit,) = dw.client.search_for_studies(search_filters={"StudyInstanceUID": study})
    assert _value(hit, "00201208") == len(corpus.ct)
    assert _value(hit, "00100010") == {"Alphabetic": str(source.PatientName)}


# --------------------------------------------------------------------------------------------
# 2. QIDO-RS
# --------------------------------------------------------------------------------------------

def _studies(results: list[dict[str, Any]]) -> set[str]:
    return {_value(r, "0020000D") for r in results}


def test_qido_study_filters(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    ct = corpus.ds[corpus.ct[0]]
    ours = corpus.studies()

    (hit,) = dw.client.search_for_studies(search_filters={"PatientID": ct.PatientID})
    assert _value(hit, "0020000D") == ct.StudyInstanceUID
    assert _value(hit, "00100010") == {"Alphabetic": str(ct.PatientName)}
    assert _value(hit, "00100020") == ct.PatientID
    assert _value(hit, "00080020") == ct.StudyDate
    assert _value(hit, "00081030") == ct.StudyDescription
    assert hit["00080061"]["Value"] == ["CT"]
    assert _value(hit, "00201206") == 1
    assert _value(hit, "00201208") == len(corpus.ct)
    assert _value(hit, "00081190") == f"{dw.server.dicomweb}/studies/{ct.StudyInstanceUID}"

    wildcard = dw.client.search_for_studies(search_filters={"PatientName": "Pancreas-CT*"})
    assert _studies(wildcard) & ours == {ct.StudyInstanceUID}
    fuzzy = dw.client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "pancreas"})
    assert ct.StudyInstanceUID in _studies(fuzzy)
    mr = corpus.ds[MR_MATRIX[0]]
    assert _studies(dw.client.search_for_studies(search_filters={"PatientName": "stc_t?st"})) & ours == {
        mr.StudyInstanceUID}

    def by_date(low: str, high: str) -> set[str]:
        return {str(ds.StudyInstanceUID) for ds in corpus.ds.values()
                if ds.get("StudyDate") and (not low or ds.StudyDate >= low) and (not high or ds.StudyDate <= high)}

    for low, high in (("20120101", "20121231"), ("20030101", "20131231"), ("", "20040101"), ("20130101", "")):
        results = dw.client.search_for_studies(search_filters={"StudyDate": f"{low}-{high}"})
        assert _studies(results) & ours == by_date(low, high), (low, high)
        for r in results:
            date = _value(r, "00080020")
            assert date and (not low or date >= low) and (not high or date <= high)
    single = dw.client.search_for_studies(search_filters={"StudyDate": ct.StudyDate})
    assert _studies(single) & ours == by_date(ct.StudyDate, ct.StudyDate)

    for modality in ("MR", "SEG", "SR", "ECG", "NM"):
        expected = {str(ds.StudyInstanceUID) for ds in corpus.ds.values() if ds.Modality == modality}
        results = dw.client.search_for_studies(search_filters={"ModalitiesInStudy": modality})
        assert _studies(results) & ours == expected, modality
        for r in results:
            assert modality in r["00080061"]["Value"]
            wanted = {str(corpus.ds[n].Modality) for n in corpus.by_study(_value(r, "0020000D"))}
            if wanted:
                assert set(r["00080061"]["Value"]) == wanted
        # the same key at series level: every series of the studies that hold the modality (was a 500)
        series = dw.client.search_for_series(search_filters={"ModalitiesInStudy": modality})
        assert {_value(r, "0020000D") for r in series} & ours == expected, modality
    seg_study = corpus.ds["seg_sr/liver_seg.dcm"].StudyInstanceUID
    (seg,) = dw.client.search_for_studies(search_filters={"StudyInstanceUID": seg_study})
    assert _value(seg, "00201206") == 2
    assert _value(seg, "00201208") == 4


def test_qido_series_and_instances_match_headers(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    checked = {corpus.ds[corpus.ct[0]].StudyInstanceUID, corpus.ds[MR_MATRIX[0]].StudyInstanceUID,
               corpus.ds["seg_sr/liver_seg.dcm"].StudyInstanceUID, corpus.ds[NM].StudyInstanceUID,
               corpus.ds[ECG].StudyInstanceUID}
    for study in checked:
        names = corpus.by_study(study)
        series = dw.client.search_for_series(study)
        expected_series = {str(corpus.ds[n].SeriesInstanceUID) for n in names}
        assert {_value(s, "0020000E") for s in series} == expected_series
        for s in series:
            uid = _value(s, "0020000E")
            members = [n for n in names if corpus.ds[n].SeriesInstanceUID == uid]
            first = corpus.ds[members[0]]
            assert _value(s, "0020000D") == study
            assert _value(s, "00080060") == first.Modality
            assert _value(s, "00201209") == len(members)
            if uid != corpus.ds[MR_MATRIX[0]].SeriesInstanceUID:  # its 9 files disagree on SeriesNumber
                assert _value(s, "00200011") == first.get("SeriesNumber")
            if first.get("PatientID"):  # see test_qido_patient_name_of_studies_without_patient_id
                assert _value(s, "00100010")["Alphabetic"] == str(first.PatientName).split("=")[0]
            assert _value(s, "00081190") == f"{dw.server.dicomweb}/studies/{study}/series/{uid}"

            instances = dw.client.search_for_instances(study, uid)
            assert len(instances) == len(members)
            by_sop = {_value(i, "00080018"): i for i in instances}
            for n in members:
                source = corpus.ds[n]
                item = by_sop[source.SOPInstanceUID]
                assert _value(item, "00080016") == source.SOPClassUID
                assert _value(item, "00200013") == source.get("InstanceNumber")
                assert _value(item, "00280010") == source.get("Rows")
                assert _value(item, "00280011") == source.get("Columns")
                assert _value(item, "00020010") == source.file_meta.TransferSyntaxUID
                frames = source.get("NumberOfFrames")
                if frames is not None:
                    assert _value(item, "00280008") == int(frames)
                assert _value(item, "00081190") == _instance_url(dw, study, uid, source.SOPInstanceUID)


def test_qido_patient_name_of_studies_without_patient_id(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    names = [NM, "seg_sr/test-SR_dcmtk_nested.dcm", "seg_sr/report_dfl_enhanced_sr_deflate"]
    assert all(not corpus.ds[n].get("PatientID") for n in names)
    for name in names:
        source = corpus.ds[name]
        (hit,) = dw.client.search_for_studies(search_filters={"StudyInstanceUID": source.StudyInstanceUID})
        # matching uses the study's own copy of the name and finds the study ...
        found = dw.client.search_for_studies(search_filters={"PatientName": str(source.PatientName)})
        assert source.StudyInstanceUID in _studies(found)
        # ... but the returned name must be the instance's too
        assert _value(hit, "00100010") == {"Alphabetic": str(source.PatientName)}, name


def test_qido_paging_walks_ct_series(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    study, series, _ = corpus.uids(corpus.ct[0])
    expected = [corpus.ds[n].SOPInstanceUID for n in corpus.ct]
    seen: list[str] = []
    page_size = 25
    offset = 0
    while True:
        page = dw.client.search_for_instances(study, series, limit=page_size, offset=offset)
        more = "additional results" in dw.recorder.last.headers.get("Warning", "")
        if not page:
            break
        assert len(page) == min(page_size, len(expected) - offset)
        assert more == (offset + len(page) < len(expected))
        seen.extend(_value(i, "00080018") for i in page)
        offset += len(page)
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == set(expected)
    assert dw.client.search_for_instances(study, series, limit=10, offset=len(expected)) == []
    # a UID list (comma form and repeated parameter) matches exactly those instances
    pair = expected[3:5]
    for filters in ({"SOPInstanceUID": ",".join(pair)}, {"SOPInstanceUID": pair}):
        assert sorted(_value(i, "00080018") for i in dw.client.search_for_instances(search_filters=filters)) == sorted(pair)
    # the client's own paging loop ends on the empty page
    walked = dw.client.search_for_instances(study, series, limit=40, get_remaining=True)
    assert sorted(_value(i, "00080018") for i in walked) == sorted(expected)
    # the order is stable: a one-result window matches the bigger page
    assert [_value(i, "00080018") for i in dw.client.search_for_instances(study, series, limit=1, offset=57)] == [
        seen[57]]


def test_qido_chinese_names(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    x1, x2 = (corpus.ds[n] for n in CHINESE)
    both = {x1.StudyInstanceUID, x2.StudyInstanceUID}
    ours = corpus.studies()

    results = dw.client.search_for_studies(search_filters={"PatientName": "王*"})
    assert _studies(results) & ours == both
    names = {_value(r, "0020000D"): _value(r, "00100010") for r in results}
    assert names[x1.StudyInstanceUID] == {"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小東"}
    assert names[x2.StudyInstanceUID] == {"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东"}

    for term in ("王", "小", "xiaodong", "Wang"):
        fuzzy = dw.client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": term})
        assert _studies(fuzzy) & ours == both, term
    # traditional vs simplified: an exact ideographic name tells them apart
    assert _studies(dw.client.search_for_studies(search_filters={"PatientName": "王^小東"})) & ours == {
        x1.StudyInstanceUID}
    assert _studies(dw.client.search_for_studies(search_filters={"PatientName": "王^小东"})) & ours == {
        x2.StudyInstanceUID}
    assert _studies(dw.client.search_for_studies(search_filters={"PatientName": "李*"})) & ours == set()


# --------------------------------------------------------------------------------------------
# 3. WADO-RS
# --------------------------------------------------------------------------------------------

INSTANCE_CASES = [*MR_MATRIX, "ct0", "seg_sr/liver_seg.dcm", NM, *CHINESE, ECG, "seg_sr/report_dfl_enhanced_sr_deflate"]
SOP_UIDS = frozenset({0x00080018, 0x00020003})


def _encapsulated(source: Dataset) -> bool:
    return bool(source.file_meta.TransferSyntaxUID.is_encapsulated)


def test_retrieve_instance_equals_source(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    for case in INSTANCE_CASES:
        name = corpus.ct[0] if case == "ct0" else case
        source = corpus.ds[name]
        study, series, sop = corpus.uids(name)
        has_pixels = "PixelData" in source

        # server default (Accept without transfer-syntax) and an explicit Explicit VR LE request
        for media in (("application/dicom",), (("application/dicom", EVRLE),)):
            got = dw.client.retrieve_instance(study, series, sop, media_types=media)
            assert got.file_meta.TransferSyntaxUID == EVRLE, (name, media)
            if not _encapsulated(source):  # see test_transcoded_instance_keeps_its_sop_instance_uid
                assert got.SOPInstanceUID == sop
            _assert_same_attributes(got, source, ignore=SOP_UIDS)
            if has_pixels:
                assert np.array_equal(got.pixel_array, corpus.pixels(name)), name

        # any syntax (also dicomweb-client's default): the stored bytes
        any_syntax: tuple[Any, ...] = ((("application/dicom", "*"),), None)
        for media in any_syntax:
            got = dw.client.retrieve_instance(study, series, sop, media_types=media)
            assert got.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID, name
            assert got.SOPInstanceUID == sop
            _assert_same_attributes(got, source)
            if has_pixels:
                assert got.PixelData == source.PixelData, name
        if name == ECG:
            assert np.array_equal(got.waveform_array(0), source.waveform_array(0))


def test_transcoded_instance_keeps_its_sop_instance_uid(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    compressed = [n for n in MR_MATRIX if _encapsulated(corpus.ds[n])]
    assert compressed
    study, series, _ = corpus.uids(MR_MATRIX[0])
    in_series = {ds.SOPInstanceUID for ds in dw.client.retrieve_series(study, series, media_types=("application/dicom",))}
    for name in compressed:
        _, _, sop = corpus.uids(name)
        got = dw.client.retrieve_instance(study, series, sop, media_types=("application/dicom",))
        assert (got.SOPInstanceUID, got.file_meta.MediaStorageSOPInstanceUID) == (sop, sop), name
        assert sop in in_series, name


def test_retrieve_series_and_study(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    study, series, _ = corpus.uids(MR_MATRIX[0])
    by_sop = {corpus.ds[n].SOPInstanceUID: n for n in MR_MATRIX}
    by_number = {int(corpus.ds[n].SeriesNumber): n for n in MR_MATRIX}  # the 9 files differ in SeriesNumber
    assert len(by_number) == len(MR_MATRIX)
    native = dw.client.retrieve_series(study, series, media_types=("application/dicom",))
    assert sorted(int(ds.SeriesNumber) for ds in native) == sorted(by_number)
    reference = corpus.pixels(MR_MATRIX[0])
    for ds in native:
        name = by_number[int(ds.SeriesNumber)]
        assert ds.file_meta.TransferSyntaxUID == EVRLE
        if not _encapsulated(corpus.ds[name]):
            assert ds.SOPInstanceUID == corpus.ds[name].SOPInstanceUID
        assert np.array_equal(ds.pixel_array, corpus.pixels(name))
        assert np.array_equal(ds.pixel_array, reference)  # the 9 encodings are one image
    stored = dw.client.retrieve_series(study, series, media_types=(("application/dicom", "*"),))
    assert sorted(ds.SOPInstanceUID for ds in stored) == sorted(by_sop)
    for ds in stored:
        source = corpus.ds[by_sop[ds.SOPInstanceUID]]
        assert ds.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
        assert ds.PixelData == source.PixelData

    ct_study, ct_series_uid, _ = corpus.uids(corpus.ct[0])
    sources = {corpus.ds[n].SOPInstanceUID: corpus.ds[n] for n in corpus.ct}
    got = dw.client.retrieve_series(ct_study, ct_series_uid, media_types=(("application/dicom", "*"),))
    assert len(got) == len(sources)
    assert {ds.SOPInstanceUID for ds in got} == set(sources)
    for ds in got:
        assert ds.PixelData == sources[ds.SOPInstanceUID].PixelData

    seg_study = corpus.ds["seg_sr/liver_seg.dcm"].StudyInstanceUID
    whole = dw.client.retrieve_study(seg_study)
    assert sorted(ds.SOPInstanceUID for ds in whole) == sorted(
        corpus.ds[n].SOPInstanceUID for n in corpus.by_study(seg_study))


def _bulk_uri(item: dict[str, Any]) -> str:
    pixel = item["7FE00010"]
    assert "Value" not in pixel and "InlineBinary" not in pixel
    uri: str = pixel["BulkDataURI"]
    return uri


def test_metadata_has_attributes_and_bulk_data_uri(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    seg_study = corpus.ds["seg_sr/liver_seg.dcm"].StudyInstanceUID
    items = dw.client.retrieve_study_metadata(seg_study)
    names = corpus.by_study(seg_study)
    assert len(items) == len(names)
    by_sop = {corpus.ds[n].SOPInstanceUID: n for n in names}
    for item in items:
        name = by_sop[_value(item, "00080018")]
        source = corpus.ds[name]
        parsed = Dataset.from_json(item, bulk_data_uri_handler=lambda tag, vr, uri: b"")
        assert parsed.PatientName == source.PatientName
        assert parsed.StudyDate == source.StudyDate
        assert parsed.Modality == source.Modality
        assert parsed.SeriesInstanceUID == source.SeriesInstanceUID
        assert parsed.get("SeriesNumber") == source.get("SeriesNumber")
        assert parsed.get("InstanceNumber") == source.get("InstanceNumber")
        assert parsed.SOPClassUID == source.SOPClassUID
        assert _value(item, "00020010") == source.file_meta.TransferSyntaxUID
        uri = _bulk_uri(item)
        assert uri == _instance_url(dw, seg_study, source.SeriesInstanceUID, source.SOPInstanceUID) + "/bulkdata/7FE00010"
        if source.Modality == "CT":  # native 16-bit: the bulk data are the Pixel Data bytes
            (bulk,) = dw.client.retrieve_bulkdata(uri)
            assert bulk == source.PixelData
        if source.Modality == "SEG":
            assert parsed.SegmentSequence[0].SegmentLabel == source.SegmentSequence[0].SegmentLabel
            assert len(parsed.PerFrameFunctionalGroupsSequence) == int(source.NumberOfFrames)

    study, series, _ = corpus.uids(MR_MATRIX[0])
    series_items = dw.client.retrieve_series_metadata(study, series)
    assert len(series_items) == len(MR_MATRIX)
    syntaxes = {corpus.ds[n].SOPInstanceUID: corpus.ds[n].file_meta.TransferSyntaxUID for n in MR_MATRIX}
    for item in series_items:
        sop = _value(item, "00080018")
        assert _value(item, "00020010") == syntaxes[sop]
        assert _value(item, "00100010") == {"Alphabetic": "stc_test"}
        assert _value(item, "00080060") == "MR"
        assert _bulk_uri(item).endswith(f"/instances/{sop}/bulkdata/7FE00010")

    # a waveform: no pixel data, the ECG survives the JSON round trip
    ecg_study, ecg_series, ecg_sop = corpus.uids(ECG)
    item = dw.client.retrieve_instance_metadata(ecg_study, ecg_series, ecg_sop)
    assert "7FE00010" not in item
    parsed = Dataset.from_json(item, bulk_data_uri_handler=lambda tag, vr, uri: b"")
    parsed.file_meta = pydicom.dataset.FileMetaDataset()
    parsed.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    assert np.array_equal(parsed.waveform_array(0), corpus.ds[ECG].waveform_array(0))


def test_retrieve_frames(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    # CT (Implicit VR LE on disk): frame 1 is the Pixel Data
    name = corpus.ct[10]
    study, series, sop = corpus.uids(name)
    for media in (None, ("application/octet-stream",), (("application/octet-stream", EVRLE),)):
        (frame,) = dw.client.retrieve_instance_frames(study, series, sop, [1], media_types=media)
        assert frame == corpus.ds[name].PixelData, media
        assert "application/octet-stream" in dw.recorder.last.headers["content-type"]

    # multi-frame NM: frames 1 and 13 are slices 0 and 12 of the source array
    study, series, sop = corpus.uids(NM)
    source = corpus.pixels(NM)
    assert source.shape[0] == 13
    frames = dw.client.retrieve_instance_frames(study, series, sop, [1, 13], media_types=("application/octet-stream",))
    assert len(frames) == 2
    for frame, index in zip(frames, (0, 12), strict=True):
        got = np.frombuffer(frame, dtype=source.dtype.newbyteorder("<")).reshape(source.shape[1:])
        assert np.array_equal(got, source[index])
    (f7,) = dw.client.retrieve_instance_frames(study, series, sop, [7])
    assert np.array_equal(np.frombuffer(f7, dtype="<u2").reshape(64, 64), source[6])
    for beyond in ([14], [1, 14]):
        response = _http_error(partial(dw.client.retrieve_instance_frames, study, series, sop, beyond))
        assert "13 frames" in _assert_problem(response, 404)["detail"]

    # JPEG-LS: image/jls gives the original codestream, octet-stream the decoded pixels
    for name in ("transfer_syntax_matrix_siemens_mr/7.dcm", "transfer_syntax_matrix_siemens_mr/8.dcm"):
        study, series, sop = corpus.uids(name)
        ds = corpus.ds[name]
        (original,) = list(generate_frames(ds.PixelData, number_of_frames=1))
        for media in ((("image/jls", JPEG_LS_LOSSLESS),), ("image/jls",)):
            (frame,) = dw.client.retrieve_instance_frames(study, series, sop, [1], media_types=media)
            assert frame == original, (name, media)
            content_type = dw.recorder.last.headers["content-type"]
            assert 'type="image/jls' in content_type and JPEG_LS_LOSSLESS in content_type
        (raw,) = dw.client.retrieve_instance_frames(study, series, sop, [1], media_types=("application/octet-stream",))
        pixels = corpus.pixels(name)
        assert np.array_equal(np.frombuffer(raw, dtype=pixels.dtype.newbyteorder("<")).reshape(pixels.shape), pixels)


def _image(data: bytes, fmt: str) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == fmt
    return image


def test_rendered_and_thumbnails(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    for name in (corpus.ct[0], MR_MATRIX[8], NM, "seg_sr/ct-3slice/02.dcm", "charset/chrX1.dcm"):
        study, series, sop = corpus.uids(name)
        ds = corpus.ds[name]
        for media, fmt in (("image/jpeg", "JPEG"), ("image/png", "PNG")):
            data = dw.client.retrieve_instance_rendered(study, series, sop, media_types=(media,))
            assert dw.recorder.last.headers["content-type"].startswith(media)
            assert _image(data, fmt).size == (ds.Columns, ds.Rows), (name, media)
    study, series, sop = corpus.uids(NM)
    last = dw.client.retrieve_instance_frames_rendered(study, series, sop, [13], media_types=("image/png",))
    assert _image(last, "PNG").size == (64, 64)
    first = dw.client.retrieve_instance_frames_rendered(study, series, sop, [1], media_types=("image/png",))
    assert first != last  # a different frame, not frame 1 again

    # thumbnails: dicomweb-client has no method for them; same session, same auth
    ct_study, ct_series_uid, _ = corpus.uids(corpus.ct[0])
    for path in (f"/studies/{ct_study}/series/{ct_series_uid}/thumbnail", f"/studies/{ct_study}/thumbnail",
                 f"/studies/{corpus.ds[MR_MATRIX[0]].StudyInstanceUID}/thumbnail"):
        response = dw.session.get(dw.server.dicomweb + path, headers={"Accept": "image/jpeg"}, timeout=30)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("image/jpeg")
        image = _image(response.content, "JPEG")
        assert max(image.size) <= 128 and min(image.size) > 0, (path, image.size)


def test_wildcard_image_accept(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    """``image/*`` (which dicomweb-client offers) selects an image type the server can produce."""
    study, series, sop = corpus.uids(corpus.ct[0])
    data = dw.client.retrieve_instance_rendered(study, series, sop, media_types=("image/*",))
    assert dw.recorder.last.request.headers["Accept"] == "image/*"
    assert _image(data, dw.recorder.last.headers["content-type"].split("/")[1].split(";")[0].upper()).size == (512, 512)
    name = "transfer_syntax_matrix_siemens_mr/8.dcm"
    study, series, sop = corpus.uids(name)
    (frame,) = dw.client.retrieve_instance_frames(study, series, sop, [1], media_types=("image/*",))
    assert 'type="image/*"' in dw.recorder.last.request.headers["Accept"]
    assert 'type="image/jls' in dw.recorder.last.headers["content-type"]
    assert frame == next(iter(generate_frames(corpus.ds[name].PixelData, number_of_frames=1)))
    ct_study, ct_series_uid, _ = corpus.uids(corpus.ct[0])
    response = dw.session.get(f"{dw.server.dicomweb}/studies/{ct_study}/series/{ct_series_uid}/thumbnail",
                              headers={"Accept": "image/*"}, timeout=30)
    assert response.status_code == 200
    assert max(Image.open(io.BytesIO(response.content)).size) <= 128


def test_instance_accept_alternatives(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    """An Accept listing several transfer syntaxes is served with the first one that can be produced.

    dicomweb-client refuses to send such a header for an instance or series (it only accepts one
    ``application/dicom`` entry), so the request goes through its session; its decoder reads the answer.
    """
    name = corpus.ct[1]
    study, series, sop = corpus.uids(name)
    source = corpus.ds[name]
    url = _instance_url(dw, study, series, sop)

    def get(accept: str) -> Dataset:
        response = dw.session.get(url, headers={"Accept": accept}, timeout=30)
        assert response.status_code == 200, (accept, response.text)
        (part,) = list(dw.client._decode_multipart_message(response, stream=False))
        return pydicom.dcmread(io.BytesIO(part))

    item = 'multipart/related; type="application/dicom"; transfer-syntax={}'
    lossy_then_any = ", ".join([item.format("1.2.840.10008.1.2.4.91"), item.format("*")])
    got = get(lossy_then_any)
    assert got.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert got.PixelData == source.PixelData
    jpeg_then_native = ", ".join([item.format("1.2.840.10008.1.2.4.50"), item.format(EVRLE)])
    got = get(jpeg_then_native)
    assert got.file_meta.TransferSyntaxUID == EVRLE
    assert np.array_equal(got.pixel_array, corpus.pixels(name))
    preferred = ", ".join([item.format("*") + "; q=0.5", item.format(EVRLE)])
    assert get(preferred).file_meta.TransferSyntaxUID == EVRLE
    # nothing acceptable: still 406
    only_lossy = dw.session.get(url, headers={"Accept": item.format("1.2.840.10008.1.2.4.91")}, timeout=30)
    _assert_problem(only_lossy, 406)


# --------------------------------------------------------------------------------------------
# 4. WADO-URI
# --------------------------------------------------------------------------------------------

def test_wado_uri(loaded: Stored, web: ServerProcess, corpus: Corpus) -> None:
    for name in (corpus.ct[5], MR_MATRIX[6], "charset/chrX2.dcm"):
        study, series, sop = corpus.uids(name)
        params = {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop}
        response = httpx.get(web.url + "/wado", params={**params, "contentType": "application/dicom"},
                             auth=web.auth, timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/dicom")
        got = pydicom.dcmread(io.BytesIO(response.content))
        if not _encapsulated(corpus.ds[name]):  # see test_transcoded_instance_keeps_its_sop_instance_uid
            assert got.SOPInstanceUID == sop
        assert got.file_meta.TransferSyntaxUID == EVRLE
        _assert_same_attributes(got, corpus.ds[name], ignore=SOP_UIDS)
        assert np.array_equal(got.pixel_array, corpus.pixels(name))

        response = httpx.get(web.url + "/wado", params={**params, "contentType": "image/jpeg"}, auth=web.auth,
                             timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/jpeg")
        assert _image(response.content, "JPEG").size == (corpus.ds[name].Columns, corpus.ds[name].Rows)
    anonymous = httpx.get(web.url + "/wado", params={**params, "contentType": "image/jpeg"}, timeout=30)
    assert anonymous.status_code == 401


# --------------------------------------------------------------------------------------------
# 5. errors
# --------------------------------------------------------------------------------------------

def test_unknown_study_is_404_problem(loaded: Stored, dw: Web) -> None:
    unknown = generate_uid()
    for call in (lambda: dw.client.retrieve_study_metadata(unknown), lambda: dw.client.retrieve_study(unknown),
                 lambda: dw.client.retrieve_instance(unknown, generate_uid(), generate_uid()),
                 lambda: dw.client.retrieve_instance_rendered(unknown, generate_uid(), generate_uid(),
                                                              media_types=("image/jpeg",))):
        _assert_problem(_http_error(call), 404)
    assert dw.client.search_for_series(unknown) == []


def test_not_decodable_rendered_is_a_problem_and_server_survives(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    raw = (SHARED / NOT_DECODABLE).read_bytes()
    source = pydicom.dcmread(io.BytesIO(raw))
    study, series, sop = str(source.StudyInstanceUID), str(source.SeriesInstanceUID), str(source.SOPInstanceUID)
    stow = _stow_bytes(dw, [raw])
    assert stow.status_code == 200, stow.text
    assert Dataset.from_json(stow.json()).ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sop
    # stored byte for byte
    kept = dw.client.retrieve_instance(study, series, sop, media_types=(("application/dicom", "*"),))
    assert kept.PixelData == source.PixelData

    for media in ("image/jpeg", "image/png", "image/jpeg"):  # twice: also once it is known not renderable
        response = _http_error(partial(dw.client.retrieve_instance_rendered, study, series, sop, media_types=(media,)))
        assert 400 <= response.status_code < 500
        body = _assert_problem(response, response.status_code)
        assert "cannot decode" in (body.get("detail", "") + body["title"]).lower()
    response = _http_error(lambda: dw.client.retrieve_instance_frames(study, series, sop, [1],
                                                                      media_types=("application/octet-stream",)))
    assert 400 <= response.status_code < 500
    assert "cannot decode" in _assert_problem(response, response.status_code)["detail"].lower()

    # the server keeps answering, also for pixel work
    assert httpx.get(dw.server.url + "/healthz", timeout=10).status_code == 200
    assert dw.client.search_for_instances(search_filters={"SOPInstanceUID": sop})
    good = corpus.ct[3]
    g_study, g_series, g_sop = corpus.uids(good)
    image = _image(dw.client.retrieve_instance_rendered(g_study, g_series, g_sop, media_types=("image/jpeg",)), "JPEG")
    assert image.size == (512, 512)


def test_frames_with_unsupported_accept_are_406(loaded: Stored, dw: Web, corpus: Corpus) -> None:
    study, series, sop = corpus.uids(corpus.ct[0])
    url = _instance_url(dw, study, series, sop) + "/frames/1"
    for accept in ('multipart/related; type="image/gif"', "image/gif"):
        response = dw.session.get(url, headers={"Accept": accept}, timeout=30)
        _assert_problem(response, 406)
    # a valid request through the client for a syntax the native CT frame cannot be given in
    response = _http_error(lambda: dw.client.retrieve_instance_frames(study, series, sop, [1],
                                                                      media_types=("image/jp2",)))
    _assert_problem(response, 406)
    # and for the rendered resource
    response = _http_error(lambda: dw.client.retrieve_instance_rendered(study, series, sop, media_types=("image/jp2",)))
    _assert_problem(response, 406)


def test_qido_bad_parameters_are_400(loaded: Stored, dw: Web) -> None:
    for filters in ({"NoSuchAttribute": "x"}, {"99991234": "x"}):
        _assert_problem(_http_error(partial(dw.client.search_for_studies, search_filters=filters)), 400)
    for params in ({"limit": "-1"}, {"offset": "-5"}, {"limit": "ten"}, {"fuzzymatching": "maybe"}):
        _assert_problem(_http_error(partial(dw.client.search_for_studies, additional_params=params)), 400)
    _assert_problem(_http_error(lambda: dw.client.search_for_instances(additional_params={"includefield": "Bogus"})),
                    400)
    # still serving
    assert dw.client.search_for_studies(limit=1)

