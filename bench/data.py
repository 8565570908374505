"""Benchmark data: CT series on disk (real TCIA + synthetic), fresh-UID copies, tiny instances in memory.

Everything here is deterministic for a given seed, so Yunying and Orthanc always receive the very
same bytes. Generated files are cached in ``cache_dir`` (outside the repository) between runs; the
servers are fresh in every run, so re-using the same UIDs across runs is fine.
"""

from __future__ import annotations

import hashlib
import random
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian

PEERS = Path("/work/shared/peers")
TCIA_CT = Path("/work/shared/dicom/ct_abdomen_pancreas_tcia")
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root, as make_ct_series.py uses


def uid(*parts: object) -> str:
    """A valid, deterministic UID (≤ 64 chars) from ``parts``."""
    digest = int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:16], "big")
    return (UID_ROOT + str(digest))[:64].rstrip(".")


@dataclass(frozen=True)
class Series:
    """One CT series on disk: its files, study/series UIDs and total size."""

    name: str
    files: list[Path]
    study_uid: str
    series_uid: str

    @property
    def nbytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def read_all(self) -> list[bytes]:
        return [f.read_bytes() for f in self.files]


def _series_of(name: str, files: list[Path]) -> Series:
    first = dcmread(files[0], stop_before_pixels=True)
    return Series(name, files, str(first.StudyInstanceUID), str(first.SeriesInstanceUID))


def synthetic_ct(cache_dir: Path, slices: int) -> Path:
    """A synthetic 512×512 CT series of ``slices`` files (make_ct_series.py), generated once."""
    folder = cache_dir / f"synthetic_ct_{slices}"
    done = folder / ".complete"
    if not done.exists():
        print(f"  generating a synthetic {slices}-slice CT series in {folder} (once) …", flush=True)
        subprocess.run([sys.executable, str(PEERS / "make_ct_series.py"), str(folder), "--slices", str(slices),
                        "--patient-id", "BENCHCT", "--patient-name", "BENCH^CT"], check=True, stdout=subprocess.DEVNULL)
        done.write_text("ok\n")
    return folder


def source_files(kind: str, cache_dir: Path, slices: int) -> list[Path]:
    if kind == "tcia":
        return sorted(TCIA_CT.glob("*.dcm"))
    return sorted(synthetic_ct(cache_dir, slices).glob("*.dcm"))


def fresh_copy(files: list[Path], cache_dir: Path, label: str) -> Series:
    """A copy of ``files`` with new Study/Series/SOP Instance UIDs (deterministic for ``label``).

    Each ingest measurement needs instances neither server has seen yet; the copies are
    cached, the servers are new in every run.
    """
    folder = cache_dir / "copies" / label
    done = folder / ".complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        study, series = uid(label, "study"), uid(label, "series")
        for i, path in enumerate(files):
            ds = dcmread(path)
            sop = uid(label, "sop", i)
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
            ds.file_meta.MediaStorageSOPInstanceUID = sop
            ds.PatientID = f"BENCH-{label}"[:64]
            ds.save_as(folder / f"{i:04d}.dcm", enforce_file_format=True)
        done.write_text("ok\n")
    return _series_of(label, sorted(folder.glob("*.dcm")))


# ---------------------------------------------------------------- tiny instances for the QIDO fill

SURNAMES = [
    "WANG", "LI", "ZHANG", "LIU", "CHEN", "YANG", "HUANG", "ZHAO", "WU", "ZHOU", "XU", "SUN", "MA", "ZHU", "HU",
    "GUO", "HE", "GAO", "LIN", "LUO", "ZHENG", "LIANG", "XIE", "SONG", "TANG", "HAN", "FENG", "DENG", "CAO", "PENG",
    "ZENG", "XIAO", "TIAN", "DONG", "YUAN", "PAN", "YU", "JIANG", "CAI", "JIA", "DING", "WEI", "XUE", "YE", "YAN",
    "SMITH", "JONES", "MUELLER", "DUPONT", "ROSSI", "GARCIA", "SILVA", "KOWALSKI", "NGUYEN", "KIM", "PARK", "TANAKA",
]
GIVEN = ["WEI", "FANG", "NA", "MIN", "JING", "LEI", "JUN", "YAN", "HUI", "TAO", "QIANG", "XIN", "ANNA", "JOHN", "MARIA"]
MODALITIES = ["CT", "MR", "CR", "DX", "US", "MG", "PT", "NM", "XA", "RF"]
TINY_PIXELS = bytes(range(64)) * 2  # 8×8, 16 bit
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_LONG_VRS = {"OB", "OW", "OF", "SQ", "UT", "UN"}


@dataclass(frozen=True)
class TinyCorpus:
    """Tiny instances in memory plus what the QIDO query mix needs to know about them."""

    instances: list[bytes]
    n_studies: int
    n_series: int
    patients: list[tuple[str, int]]  # (PatientID, index of its first instance)

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.instances)


def _element(tag: int, vr: str, value: bytes) -> bytes:
    """One Explicit VR Little Endian element (value already padded to even length)."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode()
    if vr in _LONG_VRS:
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def _pad(text: str, vr: str) -> bytes:
    raw = text.encode("latin-1")
    return raw + (b"\0" if vr == "UI" else b" ") if len(raw) % 2 else raw


def _encode(meta: list[tuple[int, str, str | bytes]], data: list[tuple[int, str, str | bytes]]) -> bytes:
    """A Part 10 file from (tag, VR, value) lists; data elements must be in tag order."""
    def enc(items: list[tuple[int, str, str | bytes]]) -> bytes:
        return b"".join(_element(t, vr, v if isinstance(v, bytes) else _pad(v, vr)) for t, vr, v in items)

    meta_body = enc(meta)
    group_length = _element(0x00020000, "UL", struct.pack("<I", len(meta_body)))
    return b"\0" * 128 + b"DICM" + group_length + meta_body + enc(data)


def _tiny(patient: tuple[str, str, str, str], study: str, series: str, sop: str, date: str, modality: str,
          study_no: int, series_no: int, inst_no: int, accession: str, description: str) -> bytes:
    """A tiny Secondary Capture instance, encoded by hand (pydicom is ~50× slower for 100k of these)."""
    pid, name, birth, sex = patient
    meta = [(0x00020001, "OB", b"\0\1"), (0x00020002, "UI", SECONDARY_CAPTURE), (0x00020003, "UI", sop),
            (0x00020010, "UI", ExplicitVRLittleEndian), (0x00020012, "UI", UID_ROOT + "1")]
    data = [
        (0x00080005, "CS", "ISO_IR 100"), (0x00080016, "UI", SECONDARY_CAPTURE), (0x00080018, "UI", sop),
        (0x00080020, "DA", date), (0x00080021, "DA", date), (0x00080030, "TM", f"{8 + study_no % 10:02d}{study_no % 60:02d}00"),
        (0x00080050, "SH", accession), (0x00080060, "CS", modality), (0x00080090, "PN", "REFERRER^DR"),
        (0x00081030, "LO", description), (0x0008103E, "LO", f"{modality} series {series_no}"),
        (0x00100010, "PN", name), (0x00100020, "LO", pid), (0x00100030, "DA", birth), (0x00100040, "CS", sex),
        (0x0020000D, "UI", study), (0x0020000E, "UI", series), (0x00200010, "SH", str(study_no % 100000)),
        (0x00200011, "IS", str(series_no)), (0x00200013, "IS", str(inst_no)),
        (0x00280002, "US", struct.pack("<H", 1)), (0x00280004, "CS", "MONOCHROME2"),
        (0x00280010, "US", struct.pack("<H", 8)), (0x00280011, "US", struct.pack("<H", 8)),
        (0x00280100, "US", struct.pack("<H", 16)), (0x00280101, "US", struct.pack("<H", 12)),
        (0x00280102, "US", struct.pack("<H", 11)), (0x00280103, "US", struct.pack("<H", 0)),
        (0x7FE00010, "OW", TINY_PIXELS),
    ]
    return _encode(meta, data)


def tiny_corpus(n_instances: int, seed: int = 7) -> TinyCorpus:
    """About ``n_instances`` tiny (8×8) instances: patients with 1–4 studies of 1–3 series of 2–6 images.

    PatientName, StudyDate (2015–2024) and Modality vary, so every query of the mix has a realistic
    selectivity. Deterministic for ``seed``.
    """
    rng = random.Random(seed)
    out: list[bytes] = []
    patients: list[tuple[str, int]] = []
    n_studies = n_series = 0
    p = 0
    while len(out) < n_instances:
        p += 1
        pid = f"P{seed:02d}{p:07d}"
        patients.append((pid, len(out)))
        name = f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}"
        birth = f"{rng.randint(1935, 2020)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        patient = (pid, name, birth, rng.choice("MFO"))
        for _ in range(rng.randint(1, 4)):
            n_studies += 1
            study = uid(seed, "tiny-study", n_studies)
            date = f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            main = rng.choice(MODALITIES)
            accession = f"A{seed:02d}{n_studies:08d}"
            description = f"{main} EXAM {rng.randint(1, 40)}"
            for s in range(rng.randint(1, 3)):
                n_series += 1
                modality = main if s == 0 or rng.random() < 0.7 else rng.choice(MODALITIES)
                series = uid(seed, "tiny-series", n_series)
                for i in range(rng.randint(2, 6)):
                    sop = uid(seed, "tiny-sop", len(out))
                    out.append(_tiny(patient, study, series, sop, date, modality, n_studies, s + 1, i + 1,
                                     accession, description))
    return TinyCorpus(out, n_studies, n_series, patients)
