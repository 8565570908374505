"""Optional lossless compression at rest, pixel-verified before the original is discarded."""

from __future__ import annotations

import logging
from io import BytesIO

import numpy as np
from pydicom import dcmread
from pydicom.dataset import FileDataset
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

from yunying.dicom.uids import TRANSFER_SYNTAXES
from yunying.settings import AtRestCompression

log = logging.getLogger(__name__)

TARGETS: dict[AtRestCompression, str] = {
    AtRestCompression.JPEG_LS: JPEGLSLossless,
    AtRestCompression.JPEG_2000: JPEG2000Lossless,
}


def compress_for_storage(ds: FileDataset, received_ts: str, mode: AtRestCompression) -> tuple[bytes, str] | None:
    """Return ``(part10_bytes, transfer_syntax)`` losslessly compressed, or ``None`` to keep the original.

    Only uncompressed (native) pixel data is compressed; the result is decoded again and
    compared to the original pixels — any difference keeps the original.
    """
    target = TARGETS.get(mode)
    if target is None or TRANSFER_SYNTAXES[received_ts].encapsulated:
        return None
    try:
        original = ds.pixel_array.copy()
        work = dcmread(BytesIO(_to_bytes(ds)))
        work.compress(target, generate_instance_uid=False)
        out = BytesIO()
        work.save_as(out, enforce_file_format=True)
        encoded = out.getvalue()
        check = dcmread(BytesIO(encoded))
        if not np.array_equal(check.pixel_array, original):
            log.warning("lossless compression changed pixels; keeping the original")
            return None
        return encoded, target
    except Exception as exc:
        log.info("kept original: %s", type(exc).__name__)
        return None


def _to_bytes(ds: FileDataset) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()
