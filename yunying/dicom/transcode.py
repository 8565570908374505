"""Lossless transcoding of whole instances for WADO-RS / C-MOVE / C-GET, verified pixel-exact."""

from __future__ import annotations

from io import BytesIO

import numpy as np
from pydicom import dcmread
from pydicom.dataset import FileDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from yunying.dicom.uids import TRANSFER_SYNTAXES
from yunying.errors import CannotDecode, NotAcceptable

# Syntaxes we can produce from any decodable source (lossless only: never lossy on the diagnostic path).
ENCODABLE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian, "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90",
             "1.2.840.10008.1.2.5"}


def _save(ds: FileDataset) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def transcode(data: bytes, source_ts: str, target_ts: str) -> bytes:
    """Return ``data`` (Part 10, in ``source_ts``) re-encoded in ``target_ts``.

    Raises
    ------
    NotAcceptable
        ``target_ts`` is lossy or cannot be produced here.
    CannotDecode
        The source pixel data cannot be decoded.
    """
    if target_ts == source_ts:
        return data
    if target_ts not in ENCODABLE:
        raise NotAcceptable(f"cannot produce transfer syntax {target_ts}")
    if TRANSFER_SYNTAXES.get(source_ts) and TRANSFER_SYNTAXES[source_ts].lossy and target_ts not in (
        ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        raise NotAcceptable("lossy source data is only served as stored or uncompressed")
    ds = dcmread(BytesIO(data))
    has_pixels = "PixelData" in ds
    original = None
    if has_pixels:
        try:
            original = ds.pixel_array.copy()
        except Exception as exc:
            raise CannotDecode(f"cannot decode pixel data ({TRANSFER_SYNTAXES[source_ts].name}): {exc}") from exc
    try:
        if TRANSFER_SYNTAXES[source_ts].encapsulated and has_pixels:
            ds.decompress(generate_instance_uid=False)
        if not ds.original_encoding[1]:  # big endian source: re-encode everything little endian first
            ds = _little_endian_copy(ds, original)
        if target_ts in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            ds.file_meta.TransferSyntaxUID = UID(target_ts)
            if has_pixels and ds.get("BitsAllocated", 0) > 8:
                ds["PixelData"].VR = "OW"
            out = BytesIO()
            ds.save_as(out, implicit_vr=target_ts == ImplicitVRLittleEndian, little_endian=True, enforce_file_format=True)
            encoded = out.getvalue()
        else:
            ds.compress(target_ts, generate_instance_uid=False)
            encoded = _save(ds)
    except (NotAcceptable, CannotDecode):
        raise
    except Exception as exc:
        raise NotAcceptable(f"cannot transcode to {target_ts}: {type(exc).__name__}: {exc}") from exc
    if original is not None:
        check = dcmread(BytesIO(encoded)).pixel_array
        if not np.array_equal(check, original):
            raise NotAcceptable(f"transcoding to {target_ts} would change pixel values; refused")
    return encoded


def _little_endian_copy(ds: FileDataset, pixels: np.ndarray | None) -> FileDataset:
    if pixels is not None:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
        if ds.get("BitsAllocated", 0) > 8:
            ds["PixelData"].VR = "OW"
        if "PlanarConfiguration" in ds:
            ds.PlanarConfiguration = 0
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = BytesIO()
    dcmwrite(out, ds, implicit_vr=False, little_endian=True, force_encoding=True)
    return dcmread(BytesIO(out.getvalue()))
