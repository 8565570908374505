"""Administration use cases for what reaches beyond one institution: DICOM peers and grants (framework-free).

A peer (AE title + address) acts for one institution with the roles it is given; an administrator adds
and removes the peers of the institutions they reach (``yunying.web.directory.Reach``). A grant lets a
user or institution read one study of the grantor's institution; whoever holds ``study:share`` creates
and revokes grants on their own institution's studies only (another institution's study or grant is
"not found"). Every change is audited (``admin:peer-add``, ``admin:grant-create`` …).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from yunying.auth import grants, peers
from yunying.auth.access import Role, parse_roles
from yunying.errors import NotFound
from yunying.index.db import write_session
from yunying.index.models import AccessGrant, DicomPeer, Institution, Study, User
from yunying.web.directory import Actor, Reach, Refused, audit_change, institution_by_code

PEER_ROLES = (Role.TECHNICIAN, Role.CLINICIAN, Role.GATEWAY)  # what a DICOM AE may act as (no administration)
GRANT_KINDS = tuple(sorted(grants.GRANT_KINDS))
MAX_GRANT_DAYS = 3650


# --- DICOM peers ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerRow:
    id: int
    ae_title: str
    host: str
    port: int | None
    institution: str  # code
    roles: tuple[str, ...]


def list_peers(sessions: sessionmaker[Session], reach: Reach) -> list[PeerRow]:
    query = select(DicomPeer, Institution.code).join(Institution, DicomPeer.institution_fk == Institution.id)
    if not reach.everything:
        query = query.where(DicomPeer.institution_fk == reach.institution_id)
    with sessions() as session:
        rows = session.execute(query.order_by(DicomPeer.ae_title, DicomPeer.host)).all()
    return [PeerRow(p.id, p.ae_title, p.host, p.port, code, tuple(sorted(parse_roles(p.roles)))) for p, code in rows]


def _valid_host(host: str) -> bool:
    """One address or a network, not "any address" (0.0.0.0/0, ::/0)."""
    try:
        if "/" in host:
            return ipaddress.ip_network(host, strict=False).prefixlen > 0
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def add_peer(sessions: sessionmaker[Session], actor: Actor, reach: Reach, *, ae_title: str, host: str, port: str = "",
             roles: list[str], institution: str = "") -> int:
    if not ae_title or not host:
        raise Refused("form.required")
    if ae_title != "*" and (len(ae_title) > 16 or "\\" in ae_title or not ae_title.strip()):
        raise Refused("form.invalid_ae")
    if len(host) > 64 or not _valid_host(host):
        raise Refused("form.invalid_host")
    number = None
    if port:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise Refused("form.invalid_port")
        number = int(port)
    if not roles:
        raise Refused("form.roles_required")
    if not set(roles) <= {r.value for r in PEER_ROLES}:
        raise Refused("form.role_not_allowed")
    institution_id = reach.institution_id if not institution else institution_by_code(sessions, institution)
    if institution_id is None:
        raise Refused("form.unknown_institution")
    subject = f"peer:{ae_title}@{host}"
    if not reach.covers(institution_id):
        audit_change(sessions, actor, "peer-add", subject, "form.institution_not_allowed", outcome="refused")
        raise Refused("form.institution_not_allowed", 403)
    try:
        peer_id = peers.add_peer(sessions, ae_title, host, institution_id, ",".join(sorted(roles)), port=number)
    except IntegrityError:
        raise Refused("form.taken") from None
    except ValueError:
        raise Refused("form.invalid_ae") from None
    audit_change(sessions, actor, "peer-add", subject, f"roles {','.join(sorted(roles))}; port {number or '-'}")
    return peer_id


def remove_peer(sessions: sessionmaker[Session], actor: Actor, reach: Reach, peer_id: int) -> None:
    with write_session(sessions) as session:
        peer = session.get(DicomPeer, peer_id)
        if peer is None or not reach.covers(peer.institution_fk):
            raise Refused("error.404", 404)
        subject = f"peer:{peer.ae_title}@{peer.host}"
        session.delete(peer)
        session.commit()
    audit_change(sessions, actor, "peer-remove", subject)


# --- grants ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantRow:
    id: int
    kind: str
    study_uid: str  # "" for an institution-wide (regional sharing) grant
    accession: str
    grantee: str  # user name, or institution code
    grantee_is_user: bool
    granted_by: str
    reason: str
    created_at: datetime
    expires_at: datetime | None
    status: str  # active | revoked | expired


def _status(grant: AccessGrant, now: datetime) -> str:
    expires = grant.expires_at
    if grant.revoked_at is not None:
        return "revoked"
    if expires is not None and (expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires) <= now:
        return "expired"
    return "active"


def list_grants(sessions: sessionmaker[Session], institution_id: int | None, *, limit: int = 200) -> list[GrantRow]:
    """Grants on ``institution_id``'s studies (and institution-wide ones), newest first."""
    if institution_id is None:
        return []
    grantee_user, grantor, grantee_inst = aliased(User), aliased(User), aliased(Institution)
    query = (select(AccessGrant, Study.study_uid, Study.accession_number, grantee_user.username, grantee_inst.code,
                    grantor.username)
             .outerjoin(Study, AccessGrant.study_fk == Study.id)
             .outerjoin(grantee_user, AccessGrant.grantee_user_fk == grantee_user.id)
             .outerjoin(grantee_inst, AccessGrant.grantee_institution_fk == grantee_inst.id)
             .outerjoin(grantor, AccessGrant.granted_by_fk == grantor.id)
             .where(or_(Study.institution_fk == institution_id, AccessGrant.source_institution_fk == institution_id))
             .order_by(AccessGrant.id.desc()).limit(limit))
    now = datetime.now(UTC)
    with sessions() as session:
        rows = session.execute(query).all()
    return [GrantRow(g.id, g.kind, uid or "", accession or "", user or code or "", user is not None, by or "",
                     g.reason, g.created_at, g.expires_at, _status(g, now))
            for g, uid, accession, user, code, by in rows]


def _own_study(sessions: sessionmaker[Session], study_uid: str, institution_id: int) -> bool:
    with sessions() as session:
        found = session.execute(select(Study.id).where(Study.study_uid == study_uid,
                                                       Study.institution_fk == institution_id)).first()
    return found is not None


def _user_id(sessions: sessionmaker[Session], username: str) -> int | None:
    with sessions() as session:
        found = session.execute(select(User.id).where(User.username == username)).scalar_one_or_none()
    return None if found is None else int(found)


def create_grant(sessions: sessionmaker[Session], actor: Actor, *, study_uid: str, kind: str, to_user: str = "",
                 to_institution: str = "", days: str = "", reason: str = "") -> int:
    """Let one user or institution read one study of the actor's institution (for ``days``, or until revoked)."""
    own = actor.principal.institution_id
    if not study_uid or not kind:
        raise Refused("form.required")
    if kind not in GRANT_KINDS:
        raise Refused("form.unknown_action")
    if bool(to_user) == bool(to_institution):
        raise Refused("form.one_grantee")
    if len(study_uid) > 64 or len(reason) > 500:
        raise Refused("form.too_long")
    valid_days: int | None = None
    if days:
        if not days.isdigit() or not 1 <= int(days) <= MAX_GRANT_DAYS:
            raise Refused("form.invalid_days")
        valid_days = int(days)
    if own is None or not _own_study(sessions, study_uid, own):
        raise Refused("form.unknown_study")  # another institution's study answers like one that does not exist
    user_id = _user_id(sessions, to_user) if to_user else None
    institution_id = institution_by_code(sessions, to_institution) if to_institution else None
    if to_user and user_id is None:
        raise Refused("form.unknown_user")
    if to_institution and institution_id is None:
        raise Refused("form.unknown_institution")
    try:
        grant_id = grants.grant_study(sessions, kind=kind, study_uid=study_uid, granted_by=actor.principal.user_id,
                                      to_user=user_id, to_institution=institution_id, days=valid_days, reason=reason)
    except (NotFound, ValueError):
        raise Refused("form.unknown_study") from None
    grantee = f"user {to_user}" if to_user else f"institution {to_institution}"
    audit_change(sessions, actor, "grant-create", study_uid,
                 f"grant {grant_id} ({kind}) to {grantee}; days {valid_days or '-'}")
    return grant_id


def revoke_grant(sessions: sessionmaker[Session], actor: Actor, grant_id: int) -> None:
    own = actor.principal.institution_id
    with sessions() as session:
        found = session.execute(select(AccessGrant, Study.study_uid, Study.institution_fk)
                                .outerjoin(Study, AccessGrant.study_fk == Study.id).where(AccessGrant.id == grant_id)).first()
    if found is None or own is None or own not in (found[0].source_institution_fk, found[2]):
        raise Refused("error.404", 404)  # another institution's grant is not found
    revoked = grants.revoke_grant(sessions, grant_id)
    audit_change(sessions, actor, "grant-revoke", found[1] or f"institution-grant:{grant_id}",
                 f"grant {grant_id}" + ("" if revoked else ": already revoked"))
