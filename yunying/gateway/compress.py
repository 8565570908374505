"""Lossless compression of instances before upload, the codec chosen by measured ratio and speed (GW-5).

Only native (unencapsulated) pixel data is compressed, and only losslessly: the re-encoding goes through
:func:`yunying.dicom.transcode.transcode`, which decodes the result again and refuses it unless every pixel
value is identical. Whatever cannot be compressed that way (already compressed or lossy data, objects without
pixels such as SR or encapsulated PDF, unusual pixel layouts, damaged files) is sent as received.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO
from typing import Any, NamedTuple

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

from yunying.dicom.transcode import transcode
from yunying.dicom.uids import TRANSFER_SYNTAXES

log = logging.getLogger(__name__)


class Codec(StrEnum):
    NONE = "none"
    JPEG_LS = "jpeg-ls"
    JPEG_2000 = "jpeg-2000"
    AUTO = "auto"


# The lossless transfer syntax each codec produces (PS3.5 §A.4.3 JPEG-LS, §A.4.4 JPEG 2000).
TARGET_SYNTAX: dict[Codec, str] = {
    Codec.JPEG_LS: JPEGLSLossless,
    Codec.JPEG_2000: JPEG2000Lossless,
}
CANDIDATES: tuple[Codec, ...] = tuple(TARGET_SYNTAX)


@dataclass(frozen=True)
class Compressed:
    """An instance ready for upload; ``codec`` is NONE when it goes as received."""

    data: bytes
    transfer_syntax: str
    original_size: int
    codec: Codec

    @property
    def saved_bytes(self) -> int:
        return self.original_size - len(self.data)


class ImageKind(NamedTuple):
    """What makes two instances compress alike: a choice measured on one holds for the others."""

    modality: str
    rows: int
    columns: int
    bits_allocated: int
    samples_per_pixel: int

    @classmethod
    def of(cls, ds: Dataset) -> ImageKind:
        return cls(str(ds.get("Modality", "") or ""), int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0),
                   int(ds.get("BitsAllocated", 0) or 0), int(ds.get("SamplesPerPixel", 1) or 1))

    def __str__(self) -> str:
        return (f"{self.modality or '?'} {self.rows}x{self.columns} {self.bits_allocated}-bit "
                f"{self.samples_per_pixel}spp")


@dataclass(frozen=True)
class Measurement:
    codec: Codec
    original_size: int
    compressed_size: int
    seconds: float

    @property
    def ratio(self) -> float:
        return self.original_size / self.compressed_size if self.compressed_size else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.original_size / 1e6 / self.seconds if self.seconds > 0 else float("inf")

    def report(self) -> dict[str, Any]:
        return {"ratio": round(self.ratio, 2), "mb_per_s": round(self.mb_per_s, 1)}


@dataclass(frozen=True)
class Choice:
    codec: Codec  # NONE when no candidate made this kind smaller
    measured: tuple[Measurement, ...]


class CodecChooser:
    """Choose JPEG-LS or JPEG 2000 (both lossless) per image kind, by measurement, and remember the choice.

    The first instance of each kind (modality, rows, columns, bits allocated, samples per pixel) is encoded
    with every candidate; the size of the result and the time taken (encode plus the pixel-exact check done
    by ``transcode``, i.e. what the gateway really pays per instance) are recorded. The choice is the
    smallest result, unless that codec took more than ``max_slowdown`` times as long as the fastest
    candidate, in which case the smallest among those within that bound wins (the fastest always is).

    Why: the hospital's uplink is usually the bottleneck, so bytes saved matter most and a slower but
    smaller codec is worth it; but on a two-core gateway a codec several times slower can make the CPU the
    bottleneck during a burst (a whole CT study at once) and delay emergency exams, so a few percent of size
    are not worth an unbounded slowdown. Measured on the shared test data (one core, encode + check):
    JPEG-LS wins on CT (3.7:1 vs 3.6:1, ~1.7x faster), JPEG 2000 on a GE 3D T1 brain MR (6.4:1 vs 5.5:1 at
    the same speed), so neither codec is right everywhere; neither was ever 3x slower than the other.

    A kind whose candidates all failed is not remembered (the next instance measures again); a kind where
    a candidate worked but none made the file smaller is remembered as NONE. Thread-safe: measuring happens
    outside the lock, so two threads meeting a new kind at once may both measure; the first stored wins.
    """

    def __init__(self, max_slowdown: float = 3.0, candidates: tuple[Codec, ...] = CANDIDATES) -> None:
        if max_slowdown < 1.0:
            raise ValueError("max_slowdown must be at least 1.0")
        unknown = [c for c in candidates if c not in TARGET_SYNTAX]
        if not candidates or unknown:
            raise ValueError(f"candidates must be among {', '.join(CANDIDATES)}")
        self.max_slowdown = max_slowdown
        self.candidates = candidates
        self._lock = threading.Lock()
        self._choices: dict[ImageKind, Choice] = {}

    def choice_for(self, kind: ImageKind) -> Codec | None:
        """The remembered codec for ``kind``, or None before it has been measured."""
        with self._lock:
            choice = self._choices.get(kind)
        return choice.codec if choice else None

    def compress(self, data: bytes, ds: Dataset, source_ts: str) -> Compressed:
        """Compress ``data`` (header ``ds``, native ``source_ts``) with the codec chosen for its kind."""
        kind = ImageKind.of(ds)
        known = self.choice_for(kind)
        if known is not None:
            return _encode(data, source_ts, known) if known is not Codec.NONE else _unchanged(data, source_ts)
        results: list[tuple[Measurement, bytes]] = []
        for codec in self.candidates:
            started = time.perf_counter()
            encoded = _try_transcode(data, source_ts, codec)
            if encoded is not None:
                results.append((Measurement(codec, len(data), len(encoded), time.perf_counter() - started), encoded))
        if not results:
            return _unchanged(data, source_ts)
        best = choose([m for m, _ in results], self.max_slowdown)
        encoded = next(e for m, e in results if m is best)
        codec = best.codec if len(encoded) < len(data) else Codec.NONE
        with self._lock:
            self._choices.setdefault(kind, Choice(codec, tuple(m for m, _ in results)))
        log.info("compression for %s: %s (%s)", kind, codec,
                 ", ".join(f"{m.codec} {m.ratio:.2f}:1 {m.mb_per_s:.1f} MB/s" for m, _ in results))
        if codec is Codec.NONE:
            return _unchanged(data, source_ts)
        return Compressed(encoded, TARGET_SYNTAX[codec], len(data), codec)

    def choices(self) -> dict[str, dict[str, Any]]:
        """For the status page: kind -> chosen codec with its ratio and MB/s, and every candidate measured."""
        with self._lock:
            items = list(self._choices.items())
        report: dict[str, dict[str, Any]] = {}
        for kind, choice in items:
            chosen = next((m for m in choice.measured if m.codec is choice.codec), None)
            report[str(kind)] = {
                "codec": str(choice.codec),
                "ratio": round(chosen.ratio, 2) if chosen else 1.0,
                "mb_per_s": round(chosen.mb_per_s, 1) if chosen else None,
                "candidates": {str(m.codec): m.report() for m in choice.measured},
            }
        return report


def choose(measured: Sequence[Measurement], max_slowdown: float) -> Measurement:
    """The smallest result among those at most ``max_slowdown`` times slower than the fastest."""
    fastest = min(m.seconds for m in measured)
    return min((m for m in measured if m.seconds <= fastest * max_slowdown), key=lambda m: m.compressed_size)


def compress_lossless(data: bytes, codec: Codec, chooser: CodecChooser | None = None) -> Compressed:
    """Return ``data`` (a Part 10 file) losslessly compressed with ``codec``, or unchanged.

    Only native pixel data is re-encoded; compressed, lossy or pixel-less instances, and any instance whose
    re-encoding fails, is refused by the pixel check or is not smaller, come back unchanged with codec NONE.
    The SOP Instance UID (and every other attribute) is kept. ``Codec.AUTO`` uses ``chooser``; without one
    a throwaway chooser measures both candidates for this instance alone.

    Raises
    ------
    ValueError
        ``data`` is not a DICOM Part 10 file with a transfer syntax in its file meta (a gateway bug upstream:
        every spooled instance has one), so there is nothing sensible to send "unchanged".
    """
    ds, source_ts = read_header(data)
    if codec is Codec.NONE or not _compressible(ds, source_ts):
        return _unchanged(data, source_ts)
    if codec is Codec.AUTO:
        return (chooser or CodecChooser()).compress(data, ds, source_ts)
    return _encode(data, source_ts, codec)


def read_header(data: bytes) -> tuple[Dataset, str]:
    """The dataset up to the pixel data, and the transfer syntax from the file meta."""
    try:
        ds = dcmread(BytesIO(data), stop_before_pixels=True)
    except (InvalidDicomError, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"not a DICOM Part 10 file: {type(exc).__name__}") from exc
    file_meta = getattr(ds, "file_meta", None)
    source_ts = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if not source_ts:
        raise ValueError("not a DICOM Part 10 file: no Transfer Syntax UID in the file meta")
    return ds, str(source_ts)


def _compressible(ds: Dataset, source_ts: str) -> bool:
    syntax = TRANSFER_SYNTAXES.get(source_ts)
    if syntax is None or syntax.encapsulated or syntax.lossy:
        return False
    # stop_before_pixels leaves Pixel Data out; the Image Pixel module's geometry says whether it exists
    return all(keyword in ds for keyword in ("Rows", "Columns", "BitsAllocated"))


def _encode(data: bytes, source_ts: str, codec: Codec) -> Compressed:
    encoded = _try_transcode(data, source_ts, codec)
    if encoded is None or len(encoded) >= len(data):
        return _unchanged(data, source_ts)
    return Compressed(encoded, TARGET_SYNTAX[codec], len(data), codec)


def _try_transcode(data: bytes, source_ts: str, codec: Codec) -> bytes | None:
    """The re-encoded instance, or None when it cannot be done pixel-exactly (never raises)."""
    try:
        return transcode(data, source_ts, TARGET_SYNTAX[codec])
    except Exception as exc:  # compression is an optimisation: any failure means "send as received"
        # the exception message may quote attribute values: log only its type
        log.debug("%s compression not possible: %s", codec, type(exc).__name__)
        return None


def _unchanged(data: bytes, source_ts: str) -> Compressed:
    return Compressed(data, source_ts, len(data), Codec.NONE)
