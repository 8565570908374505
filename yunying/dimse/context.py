"""What every DIMSE handler needs: the archive and the peer's identity."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from yunying.auth.access import Permission, Principal
from yunying.auth.peers import peer_principal
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
    _principals: dict[int, Principal | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def principal(self, event: Any) -> Principal | None:
        """Who the association acts as (looked up once per association); None: an unknown peer."""
        key = id(event.assoc)
        with self._lock:
            if key in self._principals:
                return self._principals[key]
        peer = peer_of(event)
        found = peer_principal(self.archive.sessions, peer.ae_title, peer.address)
        with self._lock:
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[key] = found
        return found

    def forget(self, event: Any) -> None:
        with self._lock:
            self._principals.pop(id(event.assoc), None)

    def allowed(self, event: Any, permission: Permission, service: str) -> Principal | None:
        """The principal when it may use ``service``; otherwise audit the refusal and return None."""
        principal = self.principal(event)
        if principal is not None and principal.can(permission):
            return principal
        self.audit(peer_of(event), "denied", service, outcome="refused",
                   detail="unknown DICOM peer" if principal is None else f"lacks {permission.value}")
        return None

    def audit(self, peer: Peer, action: str, subject: str, outcome: str = "success", detail: str = "") -> None:
        from yunying.auth.audit import record

        record(self.archive.sessions, actor=f"ae:{peer.ae_title}", action=action, subject=subject,
               source=f"{peer.address}:{peer.port}", outcome=outcome, detail=detail)
