"""The one ingest path over every file of the shared real data, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from tests.support import data
from tests.support.archive import default_institution
from yunying.archive.ingest import Failure, Ingest, IngestPolicy, Outcome
from yunying.compose import Archive
from yunying.index.access import Scope
from yunying.index.queries import count_query
from yunying.settings import AtRestCompression, DuplicatePolicy


def test_every_shared_file_is_stored_or_refused_as_the_manifest_says(archive: Archive) -> None:
    seen: dict[str, Outcome] = {}
    for path in data.all_files():
        name = data.rel(path)
        result = archive.ingest.store_instance(path.read_bytes(), origin="test", institution_id=default_institution(archive))
        seen[name] = result.outcome
        if name in data.REFUSED:
            assert result.outcome is Outcome.REJECTED and result.failure is Failure.INVALID, name
            assert data.REFUSED[name] in result.reason, (name, result.reason)
        elif name in data.DUPLICATES_OF:
            assert result.outcome is Outcome.DUPLICATE, name
        else:
            assert result.outcome is Outcome.STORED, (name, result.reason)
    stored = sum(1 for o in seen.values() if o is Outcome.STORED)
    with archive.sessions() as session:
        assert count_query(session, "IMAGE", {}, Scope.all()) == stored
    blobs = list(archive.blobs.iter_blobs("dicom/"))
    assert len(blobs) == stored  # refused and duplicate inputs left nothing behind


def test_stored_bytes_are_the_received_bytes(archive: Archive) -> None:
    path = data.SHARED / "transfer_syntax_matrix_siemens_mr" / "7.dcm"
    result = archive.ingest.store_instance(path.read_bytes(), origin="test", institution_id=default_institution(archive))
    inst = archive.retrieve.list(Scope.all(), result.study_uid, result.series_uid, result.sop_instance_uid)[0]
    assert archive.retrieve.read(inst) == path.read_bytes()
    assert inst.transfer_syntax_uid == "1.2.840.10008.1.2.4.80"


def test_duplicate_policies(archive: Archive) -> None:
    first = (data.SHARED / "edge_cases" / "MR_small_bigendian.dcm").read_bytes()
    second = (data.SHARED / "edge_cases" / "MR_small_implicit.dcm").read_bytes()
    assert archive.ingest.store_instance(first, "t", institution_id=default_institution(archive)).outcome is Outcome.STORED
    reject = Ingest(archive.sessions, archive.blobs, IngestPolicy(duplicates=DuplicatePolicy.REJECT))
    refused = reject.store_instance(second, "t", institution_id=default_institution(archive))
    assert refused.outcome is Outcome.REJECTED and refused.failure is Failure.DUPLICATE
    overwrite = Ingest(archive.sessions, archive.blobs, IngestPolicy(duplicates=DuplicatePolicy.OVERWRITE))
    replaced = overwrite.store_instance(second, "t", institution_id=default_institution(archive))
    assert replaced.outcome is Outcome.OVERWRITTEN
    inst = archive.retrieve.list(Scope.all(), replaced.study_uid, replaced.series_uid, replaced.sop_instance_uid)
    assert len(inst) == 1 and archive.retrieve.read(inst[0]) == second
    assert len(list(archive.blobs.iter_blobs("dicom/"))) == 1  # the replaced blob was removed


def test_lossless_compression_at_rest_is_pixel_exact(archive: Archive, tmp_path: Path) -> None:
    import numpy as np
    from pydicom import dcmread

    ingest = Ingest(archive.sessions, archive.blobs, IngestPolicy(compression=AtRestCompression.JPEG_LS))
    sources = data.ct_series()[:3]
    for path in sources:
        result = ingest.store_instance(path.read_bytes(), "t", institution_id=default_institution(archive))
        inst = archive.retrieve.list(Scope.all(), result.study_uid, result.series_uid, result.sop_instance_uid)[0]
        assert inst.transfer_syntax_uid == "1.2.840.10008.1.2.4.80"
        assert inst.size < path.stat().st_size * 0.7
        stored = dcmread(archive.blobs.local_path(inst.blob_key))  # type: ignore[arg-type]
        assert np.array_equal(stored.pixel_array, dcmread(path).pixel_array)
    # not decodable data are kept as received, never "compressed" into something else
    broken = data.SHARED / "edge_cases" / "MR1_JPLY_invalid_SOS"
    result = ingest.store_instance(broken.read_bytes(), "t", institution_id=default_institution(archive))
    inst = archive.retrieve.list(Scope.all(), result.study_uid, result.series_uid, result.sop_instance_uid)[0]
    assert archive.retrieve.read(inst) == broken.read_bytes()
