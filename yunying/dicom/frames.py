"""Frame extraction and single-frame decoding (WADO-RS ``/frames/{list}``, PS3.18 §10.4.1.1.3).

Frames are numbered from 1 as in DICOMweb. Native (uncompressed) frames are
sliced out of *Pixel Data* without decoding; encapsulated frames are either
returned as their original codestream or decoded to Explicit VR Little Endian.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom import Dataset
from pydicom.encaps import generate_frames, get_frame
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import as_pixel_options, pack_bits
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian

from yunying.dicom.uids import TRANSFER_SYNTAXES
from yunying.errors import CannotDecode, NotAcceptable, NotFound

__all__ = [
    "decode_frame",
    "frame_count",
    "get_frames",
    "pixel_keyword",
    "syntax_name",
    "transfer_syntax_of",
]

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def pixel_keyword(ds: Dataset) -> str | None:
    """Return the keyword of the dataset's pixel data element, if any.

    Parameters
    ----------
    ds : pydicom.Dataset
        The instance.

    Returns
    -------
    str or None
        ``"PixelData"``, ``"FloatPixelData"`` or ``"DoubleFloatPixelData"``;
        ``None`` when the instance has no (non-empty) pixel data.
    """
    for keyword in _PIXEL_KEYWORDS:
        if keyword in ds and ds[keyword].value:
            return keyword
    return None


def transfer_syntax_of(ds: Dataset) -> UID:
    """Return the transfer syntax the dataset's pixel data are encoded in.

    Parameters
    ----------
    ds : pydicom.Dataset
        The instance, with its File Meta Information.

    Returns
    -------
    pydicom.uid.UID
        The (0002,0010) Transfer Syntax UID.

    Raises
    ------
    CannotDecode
        If the dataset carries no Transfer Syntax UID.
    """
    file_meta = getattr(ds, "file_meta", None)
    uid = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if not uid:
        raise CannotDecode("instance has no Transfer Syntax UID")
    return UID(str(uid))


def syntax_name(uid: str) -> str:
    """Return a human-readable name for a transfer syntax UID.

    Parameters
    ----------
    uid : str
        A transfer syntax UID.

    Returns
    -------
    str
        The archive's name for it, else pydicom's, else the UID itself.
    """
    known = TRANSFER_SYNTAXES.get(uid)
    if known is not None:
        return known.name
    name = UID(uid).name
    return name if name and name != uid else uid


def frame_count(ds: Dataset) -> int:
    """Return the number of frames in the instance.

    Parameters
    ----------
    ds : pydicom.Dataset
        The instance.

    Returns
    -------
    int
        ``0`` when the instance has no pixel data, else (0028,0008) *Number of
        Frames* (``1`` when absent, empty or zero).

    Raises
    ------
    CannotDecode
        If *Number of Frames* is not an integer.
    """
    if pixel_keyword(ds) is None:
        return 0
    raw = ds.get("NumberOfFrames")
    if raw is None or raw == "":
        return 1
    try:
        count = int(raw)
    except (TypeError, ValueError):
        raise CannotDecode(f"invalid Number of Frames value {str(raw)!r}") from None
    return max(count, 1)


def _one_line(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _decode_failure(uid: str, exc: BaseException) -> CannotDecode:
    return CannotDecode(f"cannot decode pixel data ({syntax_name(uid)}): {_one_line(exc)}")


def decode_frame(ds: Dataset, index: int) -> tuple[npt.NDArray[Any], str]:
    """Decode one frame of the dataset's pixel data.

    Only the requested frame is decoded. YBR_FULL / YBR_FULL_422 data are
    converted to RGB by pydicom where it can (see the returned
    photometric interpretation).

    Parameters
    ----------
    ds : pydicom.Dataset
        The instance.
    index : int
        0-based frame index (not validated against the frame count).

    Returns
    -------
    numpy.ndarray
        ``(rows, columns)`` or ``(rows, columns, samples)`` array, planar
        configuration 0, dtype sized from *Bits Allocated*.
    str
        The photometric interpretation of the returned array.

    Raises
    ------
    CannotDecode
        No pixel data, no decoder for the transfer syntax, or a damaged /
        truncated codestream.
    """
    if pixel_keyword(ds) is None:
        raise CannotDecode("instance has no pixel data")
    uid = transfer_syntax_of(ds)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise CannotDecode(
            f"cannot decode pixel data ({syntax_name(uid)}): transfer syntax not supported"
        ) from None
    try:
        opts: dict[str, Any] = as_pixel_options(ds, as_rgb=True)
        arr, props = decoder.as_array(ds, index=index, validate=True, raw=False, **opts)
    except Exception as exc:  # codec plugins raise anything; all mean "cannot decode"
        raise _decode_failure(uid, exc) from exc
    pi = str(props.get("photometric_interpretation", ds.get("PhotometricInterpretation", "")))
    return arr, pi.strip().upper()


def _check_numbers(numbers: list[int], count: int) -> None:
    if not numbers:
        raise ValueError("at least one frame number is required")
    for number in numbers:
        if number < 1 or number > count:
            if count == 0:
                raise NotFound(f"frame {number} does not exist: the instance has no pixel data")
            plural = "frame" if count == 1 else "frames"
            raise NotFound(f"frame {number} does not exist: the instance has {count} {plural}")


def _int_attr(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        if default is None:
            raise CannotDecode(f"instance has no {keyword}")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CannotDecode(f"invalid {keyword} value {str(value)!r}") from None


def _frame_bits(ds: Dataset) -> int:
    """Number of bits one native frame occupies in the pixel data element."""
    rows = _int_attr(ds, "Rows")
    columns = _int_attr(ds, "Columns")
    samples = _int_attr(ds, "SamplesPerPixel", 1)
    if pixel_keyword(ds) == "FloatPixelData":
        bits_allocated = 32
    elif pixel_keyword(ds) == "DoubleFloatPixelData":
        bits_allocated = 64
    else:
        bits_allocated = _int_attr(ds, "BitsAllocated")
    bits = rows * columns * samples * bits_allocated
    if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        bits = bits // 3 * 2  # horizontally subsampled chroma, PS3.3 C.7.6.3.1.2
    return bits


def _swap_unit(ds: Dataset, keyword: str) -> tuple[int, bool]:
    """Byte-swap unit for big-endian native data, and whether to swap the whole value.

    1 means nothing to swap. 8- and 1-bit data in an OW element are swapped in
    16-bit words over the whole value, since words may straddle frames.
    """
    if keyword == "FloatPixelData":
        return 4, False
    if keyword == "DoubleFloatPixelData":
        return 8, False
    bits_allocated = _int_attr(ds, "BitsAllocated")
    if bits_allocated > 8:
        return bits_allocated // 8, False
    if ds[keyword].VR == "OW":
        return 2, True
    return 1, False


def _swap(data: bytes, unit: int) -> bytes:
    if unit == 1:
        return data
    usable = len(data) - len(data) % unit
    arr = np.frombuffer(data, dtype=f">u{unit}", count=usable // unit)
    return arr.astype(f"<u{unit}").tobytes() + data[usable:]


def _native_frames(ds: Dataset, numbers: list[int], to_little_endian: bool) -> list[bytes]:
    keyword = pixel_keyword(ds)
    assert keyword is not None
    data: bytes = ds[keyword].value
    uid = transfer_syntax_of(ds)
    unit = 1
    if uid == ExplicitVRBigEndian and to_little_endian:
        unit, whole = _swap_unit(ds, keyword)
        if whole:
            data, unit = _swap(data, unit), 1
    bits = _frame_bits(ds)
    out: list[bytes] = []
    for number in numbers:
        start_bit = (number - 1) * bits
        end_bit = start_bit + bits
        if len(data) * 8 < end_bit:
            raise CannotDecode(
                f"cannot read frame {number} ({syntax_name(uid)}): pixel data has "
                f"{len(data)} bytes, fewer than the image dimensions require"
            )
        if bits % 8 == 0:
            frame = data[start_bit // 8 : end_bit // 8]
        else:  # packed 1-bit frames do not start on byte boundaries
            first = start_bit // 8
            chunk = np.frombuffer(data, dtype=np.uint8, count=(end_bit + 7) // 8 - first, offset=first)
            flat = np.unpackbits(chunk, bitorder="little")
            offset = start_bit - first * 8
            frame = np.packbits(flat[offset : offset + bits], bitorder="little").tobytes()
        out.append(_swap(frame, unit))
    return out


def _encapsulated_frames(ds: Dataset, numbers: list[int], count: int) -> list[bytes]:
    uid = transfer_syntax_of(ds)
    data: bytes = ds.PixelData
    extended: tuple[bytes, bytes] | None = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        if len(numbers) == 1:
            return [get_frame(data, numbers[0] - 1, number_of_frames=count, extended_offsets=extended)]
        wanted = set(numbers)
        found: dict[int, bytes] = {}
        last = max(numbers)
        for number, frame in enumerate(
            generate_frames(BytesIO(data), number_of_frames=count, extended_offsets=extended), start=1
        ):
            if number in wanted:
                found[number] = frame
            if number >= last:
                break
    except Exception as exc:  # malformed item tags, offsets beyond the data, ...
        raise CannotDecode(
            f"cannot read encapsulated frames ({syntax_name(uid)}): {_one_line(exc)}"
        ) from exc
    missing = [n for n in numbers if n not in found]
    if missing:
        raise CannotDecode(
            f"cannot read encapsulated frames ({syntax_name(uid)}): frame {missing[0]} "
            "is missing from the pixel data"
        )
    return [found[n] for n in numbers]


def _decoded_frames(ds: Dataset, numbers: list[int]) -> list[bytes]:
    out: list[bytes] = []
    bits_allocated = _int_attr(ds, "BitsAllocated", 8)
    for number in numbers:
        arr, _pi = decode_frame(ds, number - 1)
        if bits_allocated == 1:
            out.append(pack_bits(arr, pad=False))
        else:
            out.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return out


def _is_encapsulated(uid: UID) -> bool:
    known = TRANSFER_SYNTAXES.get(uid)
    if known is not None:
        return known.encapsulated
    try:
        return uid.is_encapsulated
    except ValueError:  # not a transfer syntax pydicom knows
        raise CannotDecode(f"unknown transfer syntax {uid}") from None


def get_frames(
    ds: Dataset, numbers: list[int], *, transfer_syntax: str | None
) -> tuple[list[bytes], str]:
    """Return the bytes of the requested frames.

    Parameters
    ----------
    ds : pydicom.Dataset
        The instance (with File Meta Information).
    numbers : list of int
        1-based frame numbers, in the order they are wanted (repeats allowed).
    transfer_syntax : str or None
        Requested transfer syntax UID. ``None`` or ``"*"``: frames as stored
        (native little-endian data are reported as Explicit VR Little Endian,
        native big-endian data are converted to it). The dataset's own syntax:
        frames exactly as stored. Explicit VR Little Endian: native frames
        (big endian converted), or encapsulated frames decoded to raw
        little-endian pixels (planar configuration 0; YBR JPEG data as RGB).

    Returns
    -------
    list of bytes
        One entry per requested number. Encapsulated frames are complete
        codestreams (all fragments joined).
    str
        The transfer syntax UID the returned frames are in.

    Raises
    ------
    NotFound
        A frame number is 0 or larger than the number of frames.
    NotAcceptable
        The requested transfer syntax cannot be produced.
    CannotDecode
        The pixel data are damaged, truncated or cannot be decoded.
    ValueError
        `numbers` is empty.
    """
    count = frame_count(ds)
    _check_numbers(numbers, count)
    own = transfer_syntax_of(ds)
    encapsulated = _is_encapsulated(own)

    if transfer_syntax == own:
        if encapsulated:
            return _encapsulated_frames(ds, numbers, count), str(own)
        return _native_frames(ds, numbers, to_little_endian=False), str(own)
    if transfer_syntax in (None, "*"):
        if encapsulated:
            return _encapsulated_frames(ds, numbers, count), str(own)
        return _native_frames(ds, numbers, to_little_endian=True), ExplicitVRLittleEndian
    if transfer_syntax == ExplicitVRLittleEndian:
        if encapsulated:
            return _decoded_frames(ds, numbers), ExplicitVRLittleEndian
        return _native_frames(ds, numbers, to_little_endian=True), ExplicitVRLittleEndian
    raise NotAcceptable(
        f"frames cannot be provided in transfer syntax {transfer_syntax}; available: "
        f"{own} ({syntax_name(own)}) or {ExplicitVRLittleEndian} (Explicit VR Little Endian)"
    )
