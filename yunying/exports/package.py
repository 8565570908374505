"""Download packages: AES-256 encrypted ZIP parts, each a complete DICOM file-set with its DICOMDIR.

Files are staged on disk one instance at a time (never the whole study in memory), then grouped into
parts of at most ``limit`` bytes; each part gets its own DICOMDIR (pydicom ``FileSet``: file IDs
``PTxxxxxx/STxxxxxx/SExxxxxx/IMxxxxxx``, 8-character ISO 9660 components) and is written with
pyzipper as WinZip AES-256 (``7z``, WinZip, macOS Archive Utility with 7-Zip... open it).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pyzipper
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

# No 0/O/o, 1/l/I: read aloud or typed from a phone without doubt. 12 characters ≈ 69 bits.
UNAMBIGUOUS_CHARACTERS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
PASSWORD_LENGTH = 12
# Worst case bytes a ZIP adds per member beyond its data: local + central headers with the name, AES
# extra fields, salt, verifier, authentication code, zip64 extras; deflate's worst-case growth on top.
_MEMBER_OVERHEAD = 256
_DICOMDIR_BASE, _DICOMDIR_PER_FILE = 4096, 1024


def new_password() -> str:
    """A fresh extraction password (``secrets``), shown once and never stored."""
    return "".join(secrets.choice(UNAMBIGUOUS_CHARACTERS) for _ in range(PASSWORD_LENGTH))


@dataclass(frozen=True)
class Staged:
    """One instance written to the staging folder, ready to be packed."""

    path: Path
    size: int


@dataclass(frozen=True)
class Part:
    n: int
    path: Path
    size: int
    instances: int


def _deflate_bound(size: int) -> int:
    return size + size // 16000 * 5 + 64


def estimate(files: list[Staged]) -> int:
    """An upper bound of the ZIP holding ``files`` and their DICOMDIR."""
    dicomdir = _DICOMDIR_BASE + _DICOMDIR_PER_FILE * len(files)
    return sum(_deflate_bound(f.size) + _MEMBER_OVERHEAD for f in files) + _deflate_bound(dicomdir) + _MEMBER_OVERHEAD


def plan(files: list[Staged], limit: int) -> list[list[Staged]]:
    """Consecutive groups (series stay together where they fit) whose estimated ZIP is at most ``limit``.

    An instance larger than ``limit`` on its own gets a part of its own (it cannot be split and stay
    a DICOM file); the part is then larger than ``limit``.
    """
    groups: list[list[Staged]] = []
    current: list[Staged] = []
    for f in files:
        if current and estimate([*current, f]) > limit:
            groups.append(current)
            current = []
        current.append(f)
    if current:
        groups.append(current)
    return groups


def write_part(files: list[Staged], target: Path, password: str, workdir: Path) -> int:
    """Write ``files`` with a DICOMDIR into the encrypted ZIP ``target``; return its size."""
    fileset = FileSet()
    by_uid: dict[str, Path] = {}
    for f in files:
        header = dcmread(f.path, stop_before_pixels=True)
        fileset.add(_record_ready(header))
        by_uid[str(header.SOPInstanceUID)] = f.path
    layout = workdir / f"fileset-{target.stem}"
    fileset.write(layout)
    with pyzipper.AESZipFile(target, "w", compression=pyzipper.ZIP_DEFLATED, compresslevel=1,
                             encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password.encode())
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        archive.write(layout / "DICOMDIR", "DICOMDIR")
        for instance in fileset:
            # The stored (or de-identified) bytes, not the header copy FileSet made.
            archive.write(by_uid[str(instance.SOPInstanceUID)], instance.FileID.replace(os.sep, "/"))
    shutil.rmtree(layout)
    return target.stat().st_size


# Type 1 keys of the DICOMDIR records (PS3.3 F.5) that de-identified (or sloppy) instances may lack; the
# record gets a placeholder, the file itself is packed unchanged.
_RECORD_PLACEHOLDERS = {"PatientID": "UNKNOWN", "StudyDate": "19000101", "StudyTime": "000000", "StudyID": "1", "SeriesNumber": 0,
                        "InstanceNumber": 0, "Modality": "OT"}


def _record_ready(header: Dataset) -> Dataset:
    for keyword, placeholder in _RECORD_PLACEHOLDERS.items():
        if header.get(keyword) in (None, ""):
            setattr(header, keyword, placeholder)
    return header


def build_parts(files: list[Staged], limit: int, password: str, workdir: Path) -> Iterator[Part]:
    """Each part as it is written (the caller stores it, then deletes it); too big → split in two and retry."""
    queue = plan(files, limit)
    n = 0
    while queue:
        group = queue.pop(0)
        target = workdir / f"part-{n + 1}.zip"
        size = write_part(group, target, password, workdir)
        if size > limit and len(group) > 1:  # the estimate was wrong: halve and try again
            target.unlink()
            half = len(group) // 2
            queue[:0] = [group[:half], group[half:]]
            continue
        n += 1
        yield Part(n, target, size, len(group))


def pixel_data_equal(original: bytes, produced: bytes) -> bool:
    """Whether two encodings of one instance carry the same Pixel Data bytes (after de-identification)."""
    def pixels(data: bytes) -> bytes | None:
        ds = dcmread(BytesIO(data))
        elem = ds.get((0x7FE0, 0x0010))
        return None if elem is None else bytes(elem.value)

    return pixels(original) == pixels(produced)
