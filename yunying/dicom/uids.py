"""Transfer syntaxes and SOP classes the archive knows, as data (PS3.5 §10, PS3.6 Annex A)."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)


@dataclass(frozen=True)
class TransferSyntax:
    uid: str
    name: str
    lossy: bool
    encapsulated: bool
    media_type: str  # PS3.18 Table 8.7.3-2 bulk/frame media type


# PS3.18 Table 8.7.3-2 (media types for frames / bulk data) and PS3.5 Annex A.
TRANSFER_SYNTAXES: dict[str, TransferSyntax] = {
    ts.uid: ts
    for ts in (
        TransferSyntax(ImplicitVRLittleEndian, "Implicit VR Little Endian", False, False, "application/octet-stream"),
        TransferSyntax(ExplicitVRLittleEndian, "Explicit VR Little Endian", False, False, "application/octet-stream"),
        TransferSyntax(DeflatedExplicitVRLittleEndian, "Deflated Explicit VR Little Endian", False, False,
                       "application/octet-stream"),
        TransferSyntax(ExplicitVRBigEndian, "Explicit VR Big Endian", False, False, "application/octet-stream"),
        TransferSyntax(JPEGBaseline8Bit, "JPEG Baseline (Process 1)", True, True, "image/jpeg"),
        TransferSyntax(JPEGExtended12Bit, "JPEG Extended (Process 2 & 4)", True, True, "image/jpeg"),
        TransferSyntax(JPEGLossless, "JPEG Lossless (Process 14)", False, True, "image/jpeg"),
        TransferSyntax(JPEGLosslessSV1, "JPEG Lossless SV1", False, True, "image/jpeg"),
        TransferSyntax(JPEGLSLossless, "JPEG-LS Lossless", False, True, "image/jls"),
        TransferSyntax(JPEGLSNearLossless, "JPEG-LS Near-Lossless", True, True, "image/jls"),
        TransferSyntax(JPEG2000Lossless, "JPEG 2000 Lossless Only", False, True, "image/jp2"),
        TransferSyntax(JPEG2000, "JPEG 2000", True, True, "image/jp2"),
        TransferSyntax(HTJ2KLossless, "HTJ2K Lossless", False, True, "image/jphc"),
        TransferSyntax(HTJ2KLosslessRPCL, "HTJ2K Lossless RPCL", False, True, "image/jphc"),
        TransferSyntax(HTJ2K, "HTJ2K", True, True, "image/jphc"),
        TransferSyntax(RLELossless, "RLE Lossless", False, True, "image/dicom-rle"),
        TransferSyntax(UID("1.2.840.10008.1.2.4.100"), "MPEG2 Main Profile", True, True, "video/mpeg"),
        TransferSyntax(UID("1.2.840.10008.1.2.4.102"), "MPEG-4 AVC/H.264", True, True, "video/mp4"),
        TransferSyntax(UID("1.2.840.10008.1.2.4.103"), "MPEG-4 AVC/H.264 BD", True, True, "video/mp4"),
        TransferSyntax(UID("1.2.840.10008.1.2.4.110"), "JPEG XL Lossless", False, True, "image/jxl"),
        TransferSyntax(UID("1.2.840.10008.1.2.4.112"), "JPEG XL", True, True, "image/jxl"),
    )
}

NATIVE_TRANSFER_SYNTAXES = [uid for uid, ts in TRANSFER_SYNTAXES.items() if not ts.encapsulated]

# What the DIMSE SCP accepts in presentation contexts, preferred first.
ACCEPTED_TRANSFER_SYNTAXES: list[str] = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    *[uid for uid in TRANSFER_SYNTAXES if uid not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)],
]

DEFAULT_TRANSFER_SYNTAX = ExplicitVRLittleEndian


def is_known(uid: str) -> bool:
    return uid in TRANSFER_SYNTAXES


def is_lossy(uid: str) -> bool:
    ts = TRANSFER_SYNTAXES.get(uid)
    return bool(ts and ts.lossy)
