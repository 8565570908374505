"""Storage Commitment Push Model SCP (PS3.4 Annex J).

Event: EVT_N_ACTION (Action Type 1, Request Storage Commitment). The N-ACTION response is
0x0000; the result goes back in an N-EVENT-REPORT on a new association to the requester
(looked up by calling AE title among the configured remote AEs): Event Type 1 when every
referenced instance is durably stored, 2 with a Failed SOP Sequence (reason 0x0112 No such
object instance) otherwise. Only instances whose blob and index row are committed count.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE, build_role
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]
from sqlalchemy import select

from yunying.dimse import status
from yunying.dimse.context import DimseContext, peer_of
from yunying.index.models import Instance

log = logging.getLogger(__name__)
WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"


def commitment_result(ctx: DimseContext, request: Dataset) -> tuple[int, Dataset]:
    """Build the N-EVENT-REPORT data set for a commitment request: ``(event_type, dataset)``."""
    refs = list(request.get("ReferencedSOPSequence", []))
    wanted = {str(item.ReferencedSOPInstanceUID): str(item.ReferencedSOPClassUID) for item in refs}
    with ctx.archive.sessions() as session:
        rows = session.execute(select(Instance.sop_uid, Instance.sop_class_uid).where(Instance.sop_uid.in_(list(wanted)))).all()
    durable = {sop: cls for sop, cls in rows}
    report = Dataset()
    report.TransactionUID = request.TransactionUID
    success, failed = Sequence(), Sequence()
    for sop, cls in wanted.items():
        item = Dataset()
        item.ReferencedSOPClassUID = cls
        item.ReferencedSOPInstanceUID = sop
        if sop in durable and durable[sop] == cls:
            success.append(item)
        else:
            item.FailureReason = status.NO_SUCH_OBJECT_INSTANCE
            failed.append(item)
    report.ReferencedSOPSequence = success
    if failed:
        report.FailedSOPSequence = failed
    return (2 if failed else 1), report


class CommitmentHandler:
    def __init__(self, ctx: DimseContext) -> None:
        self.ctx = ctx

    def on_n_action(self, event: Any) -> tuple[int, Dataset | None]:
        peer = peer_of(event)
        if event.request.ActionTypeID != 1:
            return 0x0123, None  # No such action type
        request: Dataset = event.action_information
        if "TransactionUID" not in request:
            return 0x0120, None  # Missing attribute
        event_type, report = commitment_result(self.ctx, request)
        target = self.ctx.archive.settings.remote_ae_table().get(peer.ae_title)
        if target is None:
            log.warning("storage commitment from %s: requester is not a configured remote AE", peer.ae_title)
            return status.PROCESSING_FAILURE, None
        thread = threading.Thread(target=self._report, args=(peer.ae_title, target, event_type, report), daemon=True)
        thread.start()
        self.ctx.audit(peer, "commitment", str(request.TransactionUID),
                       detail=f"{len(report.ReferencedSOPSequence)} committed, {len(report.get('FailedSOPSequence', []))} failed")
        return status.SUCCESS, None

    def _report(self, ae_title: str, target: tuple[str, int], event_type: int, report: Dataset) -> None:
        ae = AE(ae_title=self.ctx.archive.settings.ae_title)
        ae.add_requested_context(StorageCommitmentPushModel)
        role = build_role(StorageCommitmentPushModel, scp_role=True)
        for _attempt in range(3):
            assoc = ae.associate(target[0], target[1], ae_title=ae_title, ext_neg=[role])
            if assoc.is_established:
                assoc.send_n_event_report(report, event_type, StorageCommitmentPushModel, WELL_KNOWN_INSTANCE)
                assoc.release()
                return
        log.warning("could not deliver storage commitment result to %s", ae_title)
