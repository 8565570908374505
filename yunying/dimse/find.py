"""C-FIND SCP (PS3.4 Annex C): Patient Root and Study Root at every level.

Event: EVT_C_FIND. Statuses: 0xFF00 pending per match, 0x0000 done, 0xFE00 cancelled,
0xA900 identifier does not match (bad QueryRetrieveLevel), 0xC001 unable to process.
Matching: single value, list of UIDs, wildcards (* ?), date/time ranges, universal
matching; sequence matching keys are ignored. Return keys: the requested attributes only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from yunying.archive.query import JsonDataset
from yunying.auth.access import Permission, scope_of
from yunying.dimse import status
from yunying.dimse.context import DimseContext, peer_of
from yunying.index.queries import LEVELS

log = logging.getLogger(__name__)
PAGE = 500
_SKIP = {"QueryRetrieveLevel", "SpecificCharacterSet", ""}


def identifier_filters(identifier: Dataset) -> dict[str, str]:
    """Matching keys of a C-FIND/C-MOVE/C-GET identifier as ``keyword → DICOM matching string``."""
    filters: dict[str, str] = {}
    for elem in identifier:
        if elem.keyword in _SKIP or elem.VR == "SQ":
            continue
        value = elem.value
        if value is None:
            text = ""
        elif isinstance(value, PersonName):
            text = str(value)
        elif isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        filters[elem.keyword] = text.replace("\x00", "")  # NUL is padding, never a character to match
    return filters


def _response(identifier: Dataset, row: JsonDataset, level: str, ae_title: str) -> Dataset:
    found = Dataset.from_json(row)
    reply = Dataset()
    reply.SpecificCharacterSet = "ISO_IR 192"
    reply.QueryRetrieveLevel = level
    for elem in identifier:
        if elem.keyword in ("QueryRetrieveLevel", "SpecificCharacterSet"):
            continue
        if elem.tag in found and elem.VR != "SQ":
            reply[elem.tag] = found[elem.tag]
        else:
            reply.add_new(elem.tag, elem.VR, None)
    reply.RetrieveAETitle = ae_title
    return reply


class FindHandler:
    def __init__(self, ctx: DimseContext) -> None:
        self.ctx = ctx

    def on_c_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        peer = peer_of(event)
        principal = self.ctx.allowed(event, Permission.STUDY_READ, "C-FIND")
        if principal is None:
            yield status.REFUSED_NOT_AUTHORIZED, None
            return
        identifier: Dataset = event.identifier
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        if level not in LEVELS:
            yield status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, None
            return
        filters = identifier_filters(identifier)
        query = self.ctx.archive.query
        offset, matches = 0, 0
        try:
            while True:
                page = query.find(scope_of(principal), level, filters, limit=PAGE, offset=offset)
                for row in page.rows:
                    if event.is_cancelled:
                        yield status.CANCEL, None
                        return
                    matches += 1
                    yield status.PENDING, _response(identifier, row, level, self.ctx.archive.settings.ae_title)
                if len(page.rows) < PAGE:
                    break
                offset += PAGE
        except Exception:
            log.exception("C-FIND failed")
            yield status.UNABLE_TO_PROCESS, None
            return
        keys = sorted(k for k, v in filters.items() if v)
        self.ctx.audit(peer, "query", f"C-FIND {level}", detail=f"{matches} match(es); keys {keys}")
        yield status.SUCCESS, None
