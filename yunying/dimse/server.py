"""The DIMSE SCP: one AE, one handler table, started beside the HTTP server."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from yunying.compose import Archive
from yunying.dicom.uids import ACCEPTED_TRANSFER_SYNTAXES
from yunying.dimse.commitment import CommitmentHandler
from yunying.dimse.context import DimseContext
from yunying.dimse.find import FindHandler
from yunying.dimse.retrieve import RetrieveHandler
from yunying.dimse.store import StoreHandler

log = logging.getLogger(__name__)

QUERY_RETRIEVE = (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
)


def _nodelay(event: Any) -> None:
    """Disable Nagle on every DICOM connection (each C-STORE would otherwise wait ~40 ms)."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _requeue_stolen_responses() -> None:
    """Work around a pynetdicom race (seen with 3.0.4; cf. pydicom/pynetdicom#875).

    ``send_*()`` pauses the association reactor by clearing a checkpoint and waiting for
    ``_is_paused``; a reactor just woken from the previous checkpoint still shows the stale
    ``_is_paused = True``, so the send goes ahead, the reactor takes the peer's response off the
    DIMSE queue ("Received unexpected C-STORE service message") and drops it, and the send waits
    until the peer times out. C-MOVE sub-associations hit this about once per few hundred C-STOREs:
    the move stalls ~60 s and every later sub-operation fails. A response taken while a send is
    waiting (checkpoint cleared) is put back for it instead of being dropped.
    """
    original = Association._serve_request
    if getattr(original, "_yunying_requeue", False):
        return

    def serve_request(self: Any, msg: Any, context_id: int) -> None:
        if msg is not None and not msg.is_valid_request and not self._reactor_checkpoint.is_set():
            log.info("%s taken by the association reactor handed back to the waiting request", msg.msg_type)
            self.dimse.msg_queue.put((context_id, msg))
            return
        original(self, msg, context_id)

    serve_request._yunying_requeue = True  # type: ignore[attr-defined]
    Association._serve_request = serve_request  # type: ignore[method-assign]


def handler_table(ctx: DimseContext) -> list[tuple[Any, Any]]:
    """THE DIMSE handler table: event → handler."""
    store, find, retrieve, commitment = StoreHandler(ctx), FindHandler(ctx), RetrieveHandler(ctx), CommitmentHandler(ctx)
    return [
        (evt.EVT_CONN_OPEN, _nodelay),
        (evt.EVT_C_ECHO, lambda _event: 0x0000),
        (evt.EVT_C_STORE, store.on_c_store),
        (evt.EVT_C_FIND, find.on_c_find),
        (evt.EVT_C_MOVE, retrieve.on_c_move),
        (evt.EVT_C_GET, retrieve.on_c_get),
        (evt.EVT_N_ACTION, commitment.on_n_action),
        (evt.EVT_RELEASED, store.on_association_end),
        (evt.EVT_ABORTED, store.on_association_end),
    ]


def build_ae(archive: Archive) -> AE:
    settings = archive.settings
    _requeue_stolen_responses()
    ae = AE(ae_title=settings.ae_title)
    ae.maximum_associations = settings.dimse_max_associations
    ae.maximum_pdu_size = 0  # unlimited
    ae.network_timeout = 60
    ae.acse_timeout = 30
    ae.dimse_timeout = 300
    if settings.allowed_calling_aes:
        ae.require_calling_aet = list(settings.allowed_calling_aes)
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    for cx in AllStoragePresentationContexts:
        # SCP role for C-STORE; SCU role allowed so C-GET requestors may ask us to send.
        assert cx.abstract_syntax is not None
        ae.add_supported_context(cx.abstract_syntax, ACCEPTED_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
    for sop_class in QUERY_RETRIEVE:
        ae.add_supported_context(sop_class)
    ae.add_supported_context(StorageCommitmentPushModel)
    return ae


class SharedPortAssociationServer(ThreadedAssociationServer):
    """Association server whose port several processes can listen on (SO_REUSEPORT).

    With ``yunying serve --workers N`` each worker process runs one; the kernel spreads incoming
    associations over them, so parallel associations use every core.
    """

    def server_bind(self) -> None:
        if hasattr(socket, "SO_REUSEPORT") and self.socket is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def start_dimse(archive: Archive) -> ThreadedAssociationServer:
    """Start the SCP in background threads; returns the server (call ``shutdown()`` to stop)."""
    ctx = DimseContext(archive)
    ae = build_ae(archive)
    settings = archive.settings
    server: ThreadedAssociationServer = ae.make_server(
        (settings.dicom_host, settings.dicom_port),
        evt_handlers=handler_table(ctx),  # type: ignore[arg-type]
        server_class=SharedPortAssociationServer,
    )
    threading.Thread(target=server.serve_forever, name="dimse-acceptor", daemon=True).start()
    return server
