"""The gateway's DICOM Storage SCP: modalities and PACS push here (also the C-MOVE destination).

A C-STORE is answered Success only after the instance is durable in the spool. Statuses:
0x0000 success, 0xA700 out of resources (disk budget full — the sender keeps its copy and retries),
0xC000 cannot understand (not a valid instance). A calling AE title not on the allow-list is rejected
at association. Only the transfer syntaxes the archive accepts are negotiated, so a modality falls
back to one the cloud will take instead of having an instance refused later.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from yunying.dicom.uids import ACCEPTED_TRANSFER_SYNTAXES
from yunying.gateway.intake import Intake, InvalidInstance
from yunying.gateway.spool import SpoolFull

log = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000


def _nodelay(event: Any) -> None:
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StorageReceiver:
    """pynetdicom Storage SCP + Verification feeding the intake."""

    def __init__(self, intake: Intake, *, ae_title: str, host: str, port: int, allowed_calling_aes: list[str]) -> None:
        self.intake = intake
        self.address = (host, port)
        self.ae = AE(ae_title=ae_title)
        self.ae.maximum_associations = 32
        self.ae.network_timeout = 60
        self.ae.dimse_timeout = 60
        for context in AllStoragePresentationContexts:
            self.ae.add_supported_context(str(context.abstract_syntax), ACCEPTED_TRANSFER_SYNTAXES)
        self.ae.add_supported_context(Verification)
        if allowed_calling_aes:
            self.ae.require_calling_aet = list(allowed_calling_aes)
        self.server: ThreadedAssociationServer | None = None

    def start(self) -> None:
        handlers = [(evt.EVT_C_STORE, self.on_c_store), (evt.EVT_C_ECHO, lambda _e: SUCCESS),
                    (evt.EVT_ACCEPTED, _nodelay)]
        self.server = self.ae.start_server(self.address, block=False, evt_handlers=handlers)  # type: ignore[arg-type]
        log.info("gateway DICOM SCP %s listening on %s:%d", self.ae.ae_title, *self.address)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def on_c_store(self, event: Any) -> Dataset | int:
        calling = str(event.assoc.requestor.ae_title).strip()
        reply = Dataset()
        try:
            data = bytes(event.encoded_dataset())
            self.intake.accept(data, f"scp:{calling}", sop_uid_expected=str(event.request.AffectedSOPInstanceUID))
            reply.Status = SUCCESS
        except InvalidInstance as exc:
            reply.Status = CANNOT_UNDERSTAND
            reply.ErrorComment = str(exc)[:64]
            log.warning("C-STORE from %s refused: %s", calling, exc)
        except SpoolFull as exc:
            reply.Status = OUT_OF_RESOURCES
            reply.ErrorComment = "gateway disk budget full"
            log.error("C-STORE from %s refused: %s", calling, exc)
        except Exception as exc:  # storage failure: the sender must not think it is safe
            reply.Status = OUT_OF_RESOURCES
            reply.ErrorComment = f"gateway storage failure ({type(exc).__name__})"[:64]
            log.exception("C-STORE from %s failed", calling)
        return reply
