"""DICOM peers: which AE titles, from which addresses, act for which institution (default deny).

A peer row names an AE title (or ``*`` for any title) and a host address or CIDR network, the
institution it belongs to and the roles it acts with (technician: store and read; gateway: store
and read; a read-only viewer station: clinician). An association from anything else is served
nothing: each service answers 0x0124 (refused, not authorised).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth.access import Principal, Role, check_assignable, parse_roles
from yunying.index.db import write_session
from yunying.index.models import DicomPeer


def _host_matches(pattern: str, address: str) -> bool:
    try:
        if "/" in pattern:
            return ipaddress.ip_address(address) in ipaddress.ip_network(pattern, strict=False)
        return ipaddress.ip_address(address) == ipaddress.ip_address(pattern)
    except ValueError:
        return pattern == address


def add_peer(sessions: sessionmaker[Session], ae_title: str, host: str, institution_id: int,
             roles: Iterable[Role] | str = "technician", port: int | None = None) -> int:
    if ae_title != "*" and (not ae_title or len(ae_title) > 16 or "\\" in ae_title):
        raise ValueError("AE title must be 1-16 characters without backslash, or *")
    if "/" in host:
        ipaddress.ip_network(host, strict=False)  # raises ValueError for a malformed network
    parsed = parse_roles(roles) if isinstance(roles, str) else frozenset(roles)
    check_assignable(parsed)
    with write_session(sessions) as session:
        peer = DicomPeer(ae_title=ae_title, host=host, port=port, institution_fk=institution_id,
                         roles=",".join(sorted(parsed)))
        session.add(peer)
        session.commit()
        return peer.id


def remove_peer(sessions: sessionmaker[Session], ae_title: str, host: str) -> int:
    with write_session(sessions) as session:
        peers = session.execute(select(DicomPeer).where(DicomPeer.ae_title == ae_title, DicomPeer.host == host)).scalars()
        count = 0
        for peer in peers:
            session.delete(peer)
            count += 1
        session.commit()
        return count


def peer_principal(sessions: sessionmaker[Session], ae_title: str, address: str) -> Principal | None:
    """The principal an association acts as, or None (not a known peer: served nothing)."""
    with sessions() as session:
        rows = session.execute(select(DicomPeer).where(or_(DicomPeer.ae_title == ae_title, DicomPeer.ae_title == "*"))
                               ).scalars().all()
    # An exact AE title beats the wildcard; a single address beats a network.
    for peer in sorted(rows, key=lambda p: (p.ae_title == "*", "/" in p.host)):
        if _host_matches(peer.host, address):
            return Principal(None, f"ae:{ae_title}", parse_roles(peer.roles), peer.institution_fk, f"dicom:{ae_title}")
    return None
