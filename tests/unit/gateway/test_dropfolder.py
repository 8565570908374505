"""The drop folder on real files: settled valid files are spooled then removed, bad ones set aside with a reason."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from yunying.gateway.dropfolder import REJECTED, DropFolder
from yunying.gateway.intake import Intake
from yunying.gateway.lanes import Lane, LaneClassifier, parse_lane_rules
from yunying.gateway.spool import Spool

DATA = Path("/work/shared/dicom")
STUDY = "1.2.826.0.1.3680043.8.1"


def instance(sop_uid: str, *, study: str = STUDY, modality: str = "CT", omit: str = "") -> bytes:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = UID(sop_uid)
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = study + ".1"
    ds.Modality = modality
    ds.PatientID = "DROP-1"
    if omit:
        delattr(ds, omit)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def settled(path: Path, data: bytes, age_s: float = 60.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(tmp_path / "queue.sqlite3", tmp_path / "spool")
    yield s
    s.close()


def drop_folder(root: Path, spool: Spool, rules: list[str] | None = None) -> DropFolder:
    return DropFolder(root, Intake(spool, LaneClassifier(parse_lane_rules(rules or []))), settle_s=2.0)


def test_valid_files_are_spooled_and_removed(tmp_path: Path, spool: Spool) -> None:
    root = tmp_path / "drop"
    uids = [generate_uid() for _ in range(2)]
    top = settled(root / "a.dcm", instance(uids[0]))
    nested = settled(root / "cd" / "IMG0001", instance(uids[1], modality="MR"))
    folder = drop_folder(root, spool, ["emergency:Modality=MR"])

    assert folder.scan_once() == 2
    assert not top.exists() and not nested.exists()
    assert spool.study_items(STUDY) == {uids[0]: "queued", uids[1]: "queued"}
    first, second = spool.claim(10, 1 << 30)  # the MR was classed emergency by the lane rule
    assert (first.sop_uid, first.lane) == (uids[1], Lane.EMERGENCY)
    assert (second.sop_uid, second.lane) == (uids[0], Lane.ROUTINE)
    assert spool.read(first) == instance(uids[1], modality="MR")
    assert folder.scan_once() == 0


def test_real_instance_is_spooled_byte_identical(tmp_path: Path, spool: Spool) -> None:
    source = DATA / "charset" / "chrX1.dcm"
    if not source.is_file():
        pytest.skip("shared DICOM test data not available")
    root = tmp_path / "drop"
    root.mkdir()
    copy = root / "chrX1.dcm"
    shutil.copyfile(source, copy)
    os.utime(copy, (time.time() - 60, time.time() - 60))
    assert drop_folder(root, spool).scan_once() == 1
    [item] = spool.claim(10, 1 << 30)
    assert spool.read(item) == source.read_bytes()


def test_young_file_is_left_until_settled(tmp_path: Path, spool: Spool) -> None:
    root = tmp_path / "drop"
    uid = generate_uid()
    root.mkdir()
    young = root / "copying.dcm"
    young.write_bytes(instance(uid))
    folder = drop_folder(root, spool)
    assert folder.scan_once() == 0
    assert young.is_file()
    assert spool.study_items(STUDY) == {}
    past = time.time() - 10
    os.utime(young, (past, past))
    assert folder.scan_once() == 1
    assert not young.exists()


@pytest.mark.parametrize(("data", "reason"), [
    (b"this is not a DICOM file at all" * 10, "not a readable DICOM file"),
    (instance("1.2.3.4", omit="SOPInstanceUID"), "SOPInstanceUID missing"),
    (instance("1.2.03.4"), "SOPInstanceUID missing or not a valid UID"),
])
def test_invalid_file_is_set_aside_with_a_reason(tmp_path: Path, spool: Spool, data: bytes, reason: str) -> None:
    root = tmp_path / "drop"
    bad = settled(root / "bad.dcm", data)
    folder = drop_folder(root, spool)
    assert folder.scan_once() == 0
    assert not bad.exists()
    rejected = root / REJECTED / "bad.dcm"
    assert rejected.read_bytes() == data
    assert reason in (root / REJECTED / "bad.dcm.reason.txt").read_text()
    assert spool.figures().queued == 0
    assert folder.scan_once() == 0  # the rejected folder is not scanned again
    assert sorted(p.name for p in (root / REJECTED).iterdir()) == ["bad.dcm", "bad.dcm.reason.txt"]


def test_rejected_name_clash_keeps_both(tmp_path: Path, spool: Spool) -> None:
    root = tmp_path / "drop"
    folder = drop_folder(root, spool)
    settled(root / "x.dcm", b"first bad file")
    folder.scan_once()
    settled(root / "x.dcm", b"second bad file")
    folder.scan_once()
    assert (root / REJECTED / "x.dcm").read_bytes() == b"first bad file"
    assert (root / REJECTED / "x.dcm.1").read_bytes() == b"second bad file"
    assert (root / REJECTED / "x.dcm.1.reason.txt").is_file()


def test_hidden_files_and_folders_are_ignored(tmp_path: Path, spool: Spool) -> None:
    root = tmp_path / "drop"
    hidden = settled(root / ".partial-copy.dcm", instance(generate_uid()))
    in_hidden_dir = settled(root / ".staging" / "a.dcm", instance(generate_uid()))
    assert drop_folder(root, spool).scan_once() == 0
    assert hidden.is_file() and in_hidden_dir.is_file()
    assert spool.figures().queued == 0
    assert not (root / REJECTED).exists()


def test_full_spool_leaves_the_file_in_place(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "queue.sqlite3", tmp_path / "spool", budget_bytes=64)
    root = tmp_path / "drop"
    data = instance(generate_uid())
    path = settled(root / "a.dcm", data)
    assert drop_folder(root, spool).scan_once() == 0
    assert path.read_bytes() == data  # nothing deleted before it is durable
    assert not (root / REJECTED).exists()
    spool.close()


def test_a_pulled_study_keeps_the_pull_lane_unless_a_rule_is_more_urgent(spool: Spool) -> None:
    intake = Intake(spool, LaneClassifier(parse_lane_rules(["emergency:Modality=MR"])))
    pulled = "1.2.826.0.1.3680043.8.2"
    intake.expect(pulled, Lane.BACKFILL, "backfill")
    assert intake.accept(instance(f"{pulled}.1.1", study=pulled), "scp:PACS").lane is Lane.BACKFILL
    assert intake.accept(instance(f"{pulled}.1.2", study=pulled, modality="MR"), "scp:PACS").lane is Lane.EMERGENCY
    assert intake.accept(instance(f"{STUDY}.1.3"), "scp:MODALITY").lane is Lane.ROUTINE  # not pulled: the rules' default
