"""C-STORE SCP (PS3.4 Annex B): every Storage SOP Class, through the one durable ingest path.

Event: EVT_C_STORE. Statuses: 0x0000 success (also for a duplicate under keep-first),
0xA700 out of resources (storage failure, too large), 0xC000 cannot understand (invalid data),
0xA900 data set does not match (study mismatch), 0x0111 duplicate (reject policy).
Each non-success status carries an Error Comment.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any

from pydicom.dataset import Dataset

from yunying.archive.ingest import Outcome
from yunying.auth.access import Permission
from yunying.dimse import status
from yunying.dimse.context import DimseContext, peer_of

log = logging.getLogger(__name__)


class StoreHandler:
    """Stores instances and audits, per association, which studies were received."""

    def __init__(self, ctx: DimseContext) -> None:
        self.ctx = ctx
        self._received: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._lock = threading.Lock()

    def on_c_store(self, event: Any) -> Dataset:
        peer = peer_of(event)
        reply = Dataset()
        principal = self.ctx.allowed(event, Permission.STUDY_STORE, "C-STORE")
        if principal is None:
            reply.Status = status.REFUSED_NOT_AUTHORIZED
            reply.ErrorComment = "not authorised"
            return reply
        data = event.encoded_dataset()
        result = self.ctx.archive.ingest.store_instance(bytes(data), origin=peer.origin,
                                                        institution_id=principal.institution_id)
        if result.ok:
            reply.Status = status.SUCCESS
            with self._lock:
                self._received[id(event.assoc)][result.study_uid] += 1
            return reply
        assert result.failure is not None
        reply.Status = status.STORE_FAILURE_STATUS[result.failure]
        reply.ErrorComment = result.reason[:64]
        log.warning("C-STORE refused from %s: %s", peer.ae_title, result.reason)
        if result.outcome is Outcome.REJECTED:
            self.ctx.audit(peer, "store", result.study_uid or "-", outcome="refused", detail=result.reason)
        return reply

    def on_association_end(self, event: Any) -> None:
        self.ctx.forget(event)
        with self._lock:
            received = self._received.pop(id(event.assoc), None)
        if not received:
            return
        peer = peer_of(event)
        for study_uid, count in received.items():
            self.ctx.audit(peer, "store", study_uid, detail=f"{count} instance(s) via C-STORE")
