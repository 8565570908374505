"""The access model: roles, permissions, and what a principal may see.

Roles are fixed in code (they are the contract with hospitals' MLPS assessments); a user holds one
or more roles in one institution. Permissions are what routes and DICOM services require. A
principal's visible data is its institution's studies plus the studies granted to it or its
institution (consultation, patient authorisation, regional sharing) — see ``yunying.index.access``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from yunying.index.access import Scope


class Role(StrEnum):
    PLATFORM_ADMIN = "platform-admin"  # runs the platform: institutions, hospital admins; no patient data
    HOSPITAL_ADMIN = "hospital-admin"  # users, peers and settings of one hospital
    RADIOLOGIST = "radiologist"
    REVIEWING_RADIOLOGIST = "reviewing-radiologist"
    CLINICIAN = "clinician"
    TECHNICIAN = "technician"
    CONSULTATION_COORDINATOR = "consultation-coordinator"
    EXPERT = "expert"  # reads what consultations grant to them
    AUDITOR = "auditor"  # reads the audit trail, nothing else
    GATEWAY = "gateway"  # machine client: a hospital's edge gateway
    INTEGRATION = "integration"  # machine client: HIS/RIS/EMR integration
    SHARE_VIEWER = "share-viewer"  # a visitor of a patient's share (no account): exactly the shared exams
    PATIENT = "patient"  # a verified patient (cloud film): no account, sees their own exams (decision 0010)


MACHINE_ROLES = frozenset({Role.GATEWAY, Role.INTEGRATION})
# Roles of principals without an account (share visitors): never given to a user, a token or an AE.
SESSION_ONLY_ROLES = frozenset({Role.SHARE_VIEWER, Role.PATIENT})  # no account may hold them
ADMIN_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.HOSPITAL_ADMIN})  # TOTP required


class Permission(StrEnum):
    STUDY_READ = "study:read"  # query, view, download visible studies
    STUDY_STORE = "study:store"  # send instances (STOW-RS, C-STORE)
    STUDY_DELETE = "study:delete"
    STUDY_SHARE = "study:share"  # create grants on own institution's studies (consultation, sharing)
    REPORT_WRITE = "report:write"
    REPORT_SIGN = "report:sign"
    USER_MANAGE = "user:manage"  # users, roles, tokens of own institution (platform admin: any)
    INSTITUTION_MANAGE = "institution:manage"
    PEER_MANAGE = "peer:manage"  # DICOM AE allow-list of own institution
    AUDIT_READ = "audit:read"
    GATEWAY_REPORT = "gateway:report"  # post heartbeats
    GATEWAY_VIEW = "gateway:view"
    SELF = "self"  # own profile, password, second factor, sessions
    FEEDBACK_SEND = "feedback:send"  # send a feedback ticket (CF-10)
    FEEDBACK_MANAGE = "feedback:manage"  # read and close the feedback tickets of own institution (CF-10)
    CLOUDFILM_VIEW = "cloudfilm:view"  # the patient-space views (exam list, report) of a patient or share session
    SHARE_CREATE = "share:create"  # a patient's own shares (granted by the patient role)
    PATIENT_SELF = "patient:self"  # a patient's own space: exams, hide, access log, blocks
    CLOUDFILM_MANAGE = "cloudfilm:manage"  # a hospital's cloud-film settings and its outbox of messages


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM_ADMIN: frozenset({P.INSTITUTION_MANAGE, P.USER_MANAGE, P.PEER_MANAGE, P.GATEWAY_VIEW, P.FEEDBACK_SEND,
                                    P.FEEDBACK_MANAGE, P.CLOUDFILM_MANAGE, P.SELF}),
    Role.HOSPITAL_ADMIN: frozenset({P.USER_MANAGE, P.PEER_MANAGE, P.GATEWAY_VIEW, P.FEEDBACK_SEND, P.FEEDBACK_MANAGE,
                                    P.CLOUDFILM_MANAGE, P.SELF}),
    Role.RADIOLOGIST: frozenset({P.STUDY_READ, P.STUDY_STORE, P.REPORT_WRITE, P.FEEDBACK_SEND, P.SELF}),
    Role.REVIEWING_RADIOLOGIST: frozenset({P.STUDY_READ, P.STUDY_STORE, P.REPORT_WRITE, P.REPORT_SIGN, P.FEEDBACK_SEND,
                                           P.SELF}),
    Role.CLINICIAN: frozenset({P.STUDY_READ, P.FEEDBACK_SEND, P.SELF}),
    Role.TECHNICIAN: frozenset({P.STUDY_READ, P.STUDY_STORE, P.FEEDBACK_SEND, P.SELF}),
    Role.CONSULTATION_COORDINATOR: frozenset({P.STUDY_READ, P.STUDY_SHARE, P.FEEDBACK_SEND, P.SELF}),
    Role.EXPERT: frozenset({P.STUDY_READ, P.REPORT_WRITE, P.FEEDBACK_SEND, P.SELF}),
    Role.AUDITOR: frozenset({P.AUDIT_READ, P.FEEDBACK_SEND, P.SELF}),
    Role.GATEWAY: frozenset({P.STUDY_STORE, P.STUDY_READ, P.GATEWAY_REPORT}),
    Role.INTEGRATION: frozenset({P.STUDY_READ, P.STUDY_STORE, P.REPORT_WRITE}),
    Role.SHARE_VIEWER: frozenset({P.STUDY_READ, P.CLOUDFILM_VIEW, P.FEEDBACK_SEND}),
    Role.PATIENT: frozenset({P.STUDY_READ, P.PATIENT_SELF, P.CLOUDFILM_VIEW, P.SHARE_CREATE, P.FEEDBACK_SEND}),
}
PATIENT_VIA = "patient"  # Principal.via of a verified patient


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)


def check_assignable(roles: Iterable[Role]) -> None:
    """Raise ValueError when ``roles`` include a role no account may hold (:data:`SESSION_ONLY_ROLES`)."""
    refused = sorted(r.value for r in roles if r in SESSION_ONLY_ROLES)
    if refused:
        raise ValueError(f"role(s) {', '.join(refused)} belong to sessions without an account, not to users or AEs")


def parse_roles(text: str | Iterable[str]) -> frozenset[Role]:
    """``"radiologist,expert"`` or a list → roles; unknown names raise ValueError naming them."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in Role._value2member_map_]
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(unknown)} (known: {', '.join(r.value for r in Role)})")
    return frozenset(Role(n) for n in names)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (or machine client) of one institution, through a password, session, token or AE."""

    user_id: int | None  # None for a DICOM peer (an AE, not a person)
    username: str
    roles: frozenset[Role]
    institution_id: int | None
    via: str  # "password" | "session" | "token:<name>" | "dicom:<AET>" | "patient"
    scopes: frozenset[Permission] | None = None  # a token limited to these permissions; None: the roles' all
    session_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def permissions(self) -> frozenset[Permission]:
        granted = permissions_of(self.roles)
        return granted if self.scopes is None else granted & self.scopes

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def role(self) -> str:
        """Roles as one text (for audit entries and legacy callers)."""
        return ",".join(sorted(r.value for r in self.roles))


SHARE_STUDIES = "studies"  # Principal.extra key of a share visitor: the share's study ids, comma-separated


def scope_of(principal: Principal) -> Scope:
    """The data ``principal`` may read (only with ``study:read``; callers check the permission first).

    A share visitor (``extra["share"]``) sees exactly the share's studies, read from the database on
    every request by ``yunying.shares.service.authenticate``. A patient (``via="patient"``) has no
    institution and no grants: only their identity's exams.
    """
    if "share" in principal.extra:
        ids = principal.extra.get(SHARE_STUDIES, "")
        return Scope(None, None, study_ids=frozenset(int(i) for i in ids.split(",") if i))
    if principal.via == PATIENT_VIA:
        return Scope(None, None, identity_hashes=identity_of(principal))
    if principal.roles & SESSION_ONLY_ROLES:  # such a role outside its session: nothing
        return Scope(None, None, study_ids=frozenset())
    return Scope(principal.user_id, principal.institution_id)


def identity_of(principal: Principal) -> frozenset[str]:
    """A patient principal's identity hashes (``extra["identity"]``, comma-separated); empty for others."""
    if principal.via != PATIENT_VIA:
        return frozenset()
    return frozenset(h for h in principal.extra.get("identity", "").split(",") if h)


def permissions_table() -> str:
    """The role → permission table as Markdown (docs/security.md embeds it; a test keeps them equal)."""
    perms = list(Permission)
    lines = ["| Role | " + " | ".join(f"`{p.value}`" for p in perms) + " |", "|---|" + "---|" * len(perms)]
    for role, granted in ROLE_PERMISSIONS.items():
        lines.append(f"| `{role.value}` | " + " | ".join("✓" if p in granted else "" for p in perms) + " |")
    return "\n".join(lines)
