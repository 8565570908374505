"""DIMSE status codes used by the archive, with the standard's names (PS3.4 Annex B, C; PS3.7 Annex C)."""

from __future__ import annotations

from yunying.archive.ingest import Failure

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
WARNING_SUBOPS_FAILED = 0xB000  # C-MOVE/C-GET: sub-operations complete, one or more failures
# Storage (PS3.4 Table B.2-1)
REFUSED_OUT_OF_RESOURCES = 0xA700
ERROR_CANNOT_UNDERSTAND = 0xC000
ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
DUPLICATE_SOP_INSTANCE = 0x0111  # PS3.7 C.5.? "Duplicate SOP Instance"
NOT_AUTHORIZED = 0x0124
# Query/Retrieve (PS3.4 Table C.4-1..C.4-3)
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
UNABLE_TO_PROCESS = 0xC001
MOVE_DESTINATION_UNKNOWN = 0xA801
REFUSED_NOT_AUTHORIZED = 0x0124  # PS3.7 C.5.x: the peer may not do this (or not on this data)
UNABLE_TO_PERFORM_SUBOPS = 0xA702
# Storage Commitment (PS3.4 Table J.3-2 failure reasons)
NO_SUCH_OBJECT_INSTANCE = 0x0112
PROCESSING_FAILURE = 0x0110

STORE_FAILURE_STATUS: dict[Failure, int] = {
    Failure.INVALID: ERROR_CANNOT_UNDERSTAND,
    Failure.TOO_LARGE: REFUSED_OUT_OF_RESOURCES,
    Failure.STUDY_MISMATCH: ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS,
    Failure.DUPLICATE: DUPLICATE_SOP_INSTANCE,
    Failure.STORAGE: REFUSED_OUT_OF_RESOURCES,
    Failure.NOT_OWNER: REFUSED_NOT_AUTHORIZED,
}
