"""C-MOVE and C-GET SCP (PS3.4 Annex C.4.2, C.4.3).

Events: EVT_C_MOVE, EVT_C_GET. Statuses: 0xFF00 pending, 0x0000 all sub-operations done,
0xB000 some sub-operations failed, 0xFE00 cancelled, 0xA801 move destination unknown,
0xA900 identifier does not match, 0xA702 unable to perform sub-operations.
Instances go out as stored when the receiver accepted that transfer syntax; otherwise they
are transcoded losslessly (pixel-verified) to Explicit/Implicit VR Little Endian.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context

from yunying.archive.retrieve import StoredInstance
from yunying.auth.access import Permission, scope_of
from yunying.dicom.uids import TRANSFER_SYNTAXES
from yunying.dimse import status
from yunying.dimse.context import DimseContext, Peer, peer_of
from yunying.dimse.find import identifier_filters
from yunying.errors import YunyingError
from yunying.index.access import Scope
from yunying.index.queries import LEVELS

log = logging.getLogger(__name__)
UNCOMPRESSED: list[str] = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def _matching_instances(ctx: DimseContext, identifier: Dataset, scope: Scope) -> list[StoredInstance] | None:
    level = str(identifier.get("QueryRetrieveLevel", "")).upper()
    if level not in LEVELS:
        return None
    filters = identifier_filters(identifier)
    found = ctx.archive.query.find(scope, "IMAGE", filters)
    result: list[StoredInstance] = []
    for study_uid, series_uid, sop_uid in found.uids:
        result.extend(ctx.archive.retrieve.list(scope, study_uid, series_uid, sop_uid))
    return result


def _dataset_for(ctx: DimseContext, inst: StoredInstance, accepted: dict[str, set[str]]) -> Dataset:
    """The instance in a transfer syntax the receiver accepted for its SOP class."""
    syntaxes = accepted.get(inst.sop_class_uid, set())
    data = ctx.archive.retrieve.read(inst)
    # pynetdicom re-encodes a native data set into another native context of the same byte order only
    # (explicit <-> implicit, deflated <-> inflated); big endian must be transcoded here.
    convertible = inst.transfer_syntax_uid != ExplicitVRBigEndian and not TRANSFER_SYNTAXES[
        inst.transfer_syntax_uid].encapsulated
    if inst.transfer_syntax_uid in syntaxes or (convertible and syntaxes & set(UNCOMPRESSED)):
        return dcmread(BytesIO(data))
    target = next((ts for ts in UNCOMPRESSED if ts in syntaxes), ExplicitVRLittleEndian)
    data, _ = ctx.archive.retrieve.read_as(inst, target)
    return dcmread(BytesIO(data))


def _sub_operations(ctx: DimseContext, event: Any, instances: list[StoredInstance],
                    accepted: dict[str, set[str]]) -> Iterator[tuple[int, Dataset | None]]:
    for inst in instances:
        if event.is_cancelled:
            yield status.CANCEL, None
            return
        try:
            dataset = _dataset_for(ctx, inst, accepted)
        except YunyingError as exc:
            log.warning("sub-operation for %s failed: %s", inst.sop_uid, exc)
            # A failure status here would end the whole C-MOVE/C-GET; instead hand pynetdicom a data set
            # it cannot send (no File Meta: its C-STORE raises before anything goes on the wire), so it
            # counts one failed sub-operation with this UID and goes on (final 0xB000, or 0xA702 if all fail).
            dataset = Dataset()
            dataset.SOPClassUID = inst.sop_class_uid
            dataset.SOPInstanceUID = inst.sop_uid
        yield status.PENDING, dataset


def _contexts(instances: list[StoredInstance]) -> list[Any]:
    contexts = []
    seen: set[tuple[str, str]] = set()
    for inst in instances:
        key = (inst.sop_class_uid, inst.transfer_syntax_uid)
        if key in seen:
            continue
        seen.add(key)
        # As stored, in a context of its own (a receiver picks one syntax per context), then native.
        contexts.append(build_context(inst.sop_class_uid, [inst.transfer_syntax_uid]))
        if (inst.sop_class_uid, "native") not in seen:
            seen.add((inst.sop_class_uid, "native"))
            contexts.append(build_context(inst.sop_class_uid, UNCOMPRESSED))
    return contexts[:128]


def _probe_destination(ae_title: str, host: str, port: int, calling: str, contexts: list[Any]) -> dict[str, set[str]]:
    """Ask the destination which of our contexts it accepts (one short association)."""
    probe = AE(ae_title=calling)
    probe.requested_contexts = contexts
    assoc = probe.associate(host, port, ae_title=ae_title)
    accepted: dict[str, set[str]] = {}
    if assoc.is_established:
        for cx in assoc.accepted_contexts:
            accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
        assoc.release()
    return accepted


class RetrieveHandler:
    def __init__(self, ctx: DimseContext) -> None:
        self.ctx = ctx

    def on_c_move(self, event: Any) -> Iterator[Any]:
        peer = peer_of(event)
        destination = str(event.move_destination.decode() if isinstance(event.move_destination, bytes)
                          else event.move_destination).strip()
        known = self.ctx.archive.settings.remote_ae_table()
        if destination not in known:
            yield None, None
            return
        host, port = known[destination]
        principal = self.ctx.allowed(event, Permission.STUDY_READ, "C-MOVE")
        if principal is None:
            yield host, port
            yield status.REFUSED_NOT_AUTHORIZED, None
            return
        instances = _matching_instances(self.ctx, event.identifier, scope_of(principal))
        if instances is None:
            yield host, port
            yield status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, None
            return
        contexts = _contexts(instances)
        accepted = _probe_destination(destination, host, port, self.ctx.archive.settings.ae_title, contexts) if instances else {}
        yield host, port, {"contexts": contexts, "ae_title": destination}
        yield len(instances)
        yield from _sub_operations(self.ctx, event, instances, accepted)
        self._audit(peer, instances, f"C-MOVE to {destination}")

    def on_c_get(self, event: Any) -> Iterator[Any]:
        peer = peer_of(event)
        principal = self.ctx.allowed(event, Permission.STUDY_READ, "C-GET")
        if principal is None:
            yield 0
            yield status.REFUSED_NOT_AUTHORIZED, None
            return
        instances = _matching_instances(self.ctx, event.identifier, scope_of(principal))
        if instances is None:
            yield 0
            yield status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, None
            return
        accepted: dict[str, set[str]] = {}
        for cx in event.assoc.accepted_contexts:
            if cx.as_scu:  # contexts where we may send C-STORE (SCP role granted to the requestor)
                accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
        yield len(instances)
        yield from _sub_operations(self.ctx, event, instances, accepted)
        self._audit(peer, instances, "C-GET")

    def _audit(self, peer: Peer, instances: list[StoredInstance], how: str) -> None:
        studies: dict[str, int] = {}
        for inst in instances:
            studies[inst.study_uid] = studies.get(inst.study_uid, 0) + 1
        for study_uid, count in studies.items():
            self.ctx.audit(peer, "retrieve", study_uid, detail=f"{count} instance(s) via {how}")
