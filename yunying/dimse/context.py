"""What every DIMSE handler needs: the archive and the peer's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yunying.compose import Archive


@dataclass(frozen=True)
class Peer:
    ae_title: str
    address: str
    port: int

    @property
    def origin(self) -> str:
        return f"dimse:{self.ae_title}@{self.address}"


def peer_of(event: Any) -> Peer:
    requestor = event.assoc.requestor
    return Peer(str(requestor.ae_title).strip(), str(requestor.address), int(requestor.port))


@dataclass
class DimseContext:
    archive: Archive

    def audit(self, peer: Peer, action: str, subject: str, outcome: str = "success", detail: str = "") -> None:
        from yunying.auth.audit import record

        record(self.archive.sessions, actor=f"ae:{peer.ae_title}", action=action, subject=subject,
               source=f"{peer.address}:{peer.port}", outcome=outcome, detail=detail)
