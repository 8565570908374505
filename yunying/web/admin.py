"""Administration pages (``/ui/admin/…``): institutions, users, DICOM peers, grants, the outbox of messages.

Each resource has a list page with a creation form (GET), a creation POST, and a POST on one item
whose ``action`` field says what to do (disable a user, remove a peer, revoke a grant …), so a stray
request without a form changes nothing. The use cases (``yunying.web.directory``,
``yunying.web.peers_grants``) decide reach and audit every change; this module maps their outcomes:
a form to correct → the page again with the message (400); not allowed / not found → 403 / 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.auth.access import Principal
from yunying.auth.access import Permission
from yunying.compose import Archive
from yunying.notify import service as notify
from yunying.web import directory, peers_grants
from yunying.web.directory import Actor, Reach, Refused
from yunying.web.render import WebRoute, page, redirect

router = APIRouter(prefix="/admin", route_class=WebRoute)

_SEE_OTHER: dict[int | str, dict[str, Any]] = {
    303: {"description": "done: see the list page in Location"},
              400: {"description": "the form again, with what to correct", "content": {"text/html": {}}}}
_TITLES = {403: ("Forbidden", "you are not allowed to do this"), 404: ("Not Found", "no such item")}
Text = Annotated[str, Form(max_length=200)]
LongText = Annotated[str, Form(max_length=500)]
Roles = Annotated[list[str], Form()]
ItemId = Annotated[int, Path(ge=1, le=2**53)]


def _actor(archive: Archive, user: Principal, request: Request) -> Actor:
    return Actor.of(archive.sessions, user, client_address(request))


def _apply(change: Callable[[], str], back: str, again: Callable[[str], HTMLResponse]) -> Response:
    """Run ``change``; redirect to ``back`` with its notice, or show the form again, or refuse."""
    try:
        done = change()
    except Refused as refused:
        if refused.status == 400:
            return again(refused.reason)
        raise ProblemError(refused.status, *_TITLES[refused.status]) from None
    return redirect(back, done)


# --- institutions ---------------------------------------------------------------------------------------------


def _institutions_page(request: Request, archive: Archive, error: str = "", form: dict[str, str] | None = None,
                       status: int = 200) -> HTMLResponse:
    return page(request, "institutions.html", status=status, institutions=directory.list_institutions(archive.sessions),
                error=error, form=form or dict.fromkeys(("code", "name", "level", "kind", "region"), ""))


@router.get("/institutions", operation_id="ui_institutions", summary="Institutions (platform administrators)",
            response_class=HTMLResponse)
def institutions(request: Request, archive: ArchiveDep, _user: CurrentUser) -> HTMLResponse:
    return _institutions_page(request, archive)


@router.post("/institutions", operation_id="ui_institution_create", summary="Create an institution",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def institution_create(request: Request, archive: ArchiveDep, user: CurrentUser,
                       code: Annotated[str, Form(max_length=32)] = "", name: Annotated[str, Form(max_length=128)] = "",
                       level: Text = "", kind: Text = "", region: Text = "") -> Response:
    form = {"code": code, "name": name, "level": level, "kind": kind, "region": region}

    def change() -> str:
        directory.create_institution(archive.sessions, _actor(archive, user, request), code=code.strip(),
                                     name=name.strip(), level=level.strip(), kind=kind.strip(), region=region.strip())
        return "institution-created"

    return _apply(change, "/ui/admin/institutions", lambda e: _institutions_page(request, archive, e, form, 400))


# --- users ----------------------------------------------------------------------------------------------------


def _users_page(request: Request, archive: Archive, user: Principal, *, q: str = "", offset: int = 0, error: str = "",
                form: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    reach = Reach.of(user)
    users, total = directory.list_users(archive.sessions, reach, q, offset=offset)
    choices = directory.list_institutions(archive.sessions) if reach.everything else []
    return page(request, "users.html", status=status, users=users, total=total, q=q, offset=offset, page_size=200,
                query=urlencode({"q": q}) + "&", roles=[r.value for r in reach.assignable_roles()], institutions=choices,
                error=error, form=form or {"username": "", "display_name": "", "roles": [], "institution": ""},
                self_id=user.user_id)


@router.get("/users", operation_id="ui_users", summary="Users of the institutions the caller administers",
            response_class=HTMLResponse)
def users(request: Request, archive: ArchiveDep, user: CurrentUser, q: Annotated[str, Query(max_length=64)] = "",
          offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    return _users_page(request, archive, user, q=q.strip(), offset=offset)


@router.post("/users", operation_id="ui_user_create", summary="Create a user (own institution; platform admin: any)",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def user_create(request: Request, archive: ArchiveDep, user: CurrentUser,
                username: Annotated[str, Form(max_length=64)] = "", display_name: Annotated[str, Form(max_length=128)] = "",
                password: Annotated[str, Form(max_length=1024)] = "", roles: Roles = [],  # noqa: B006 - FastAPI copies defaults
                institution: Annotated[str, Form(max_length=32)] = "") -> Response:
    form = {"username": username, "display_name": display_name, "roles": roles, "institution": institution}

    def change() -> str:
        directory.create_user(archive.sessions, _actor(archive, user, request), Reach.of(user), username=username.strip(),
                              display_name=display_name.strip(), password=password, roles=roles,
                              institution=institution.strip())
        return "user-created"

    return _apply(change, "/ui/admin/users", lambda e: _users_page(request, archive, user, error=e, form=form, status=400))


@router.post("/users/{user_id}", operation_id="ui_user_update",
             summary="Act on a user: disable, enable, reset-password, reset-totp, revoke-tokens",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def user_update(request: Request, archive: ArchiveDep, user: CurrentUser, user_id: ItemId,
                action: Annotated[str, Form(max_length=32)] = "",
                password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    def change() -> str:
        return directory.act_on_user(archive.sessions, _actor(archive, user, request), Reach.of(user), user_id,
                                     action, password)

    return _apply(change, "/ui/admin/users", lambda e: _users_page(request, archive, user, error=e, status=400))


# --- DICOM peers ----------------------------------------------------------------------------------------------


def _peers_page(request: Request, archive: Archive, user: Principal, error: str = "",
                form: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    reach = Reach.of(user)
    choices = directory.list_institutions(archive.sessions) if reach.everything else []
    return page(request, "peers.html", status=status, peers=peers_grants.list_peers(archive.sessions, reach),
                roles=[r.value for r in peers_grants.PEER_ROLES], institutions=choices, error=error,
                form=form or {"ae_title": "", "host": "", "port": "", "roles": ["technician"], "institution": ""})


@router.get("/peers", operation_id="ui_peers", summary="DICOM peers (AE title + address) of the caller's institution",
            response_class=HTMLResponse)
def peers(request: Request, archive: ArchiveDep, user: CurrentUser) -> HTMLResponse:
    return _peers_page(request, archive, user)


@router.post("/peers", operation_id="ui_peer_add", summary="Allow a DICOM peer", response_class=HTMLResponse,
             responses=_SEE_OTHER)
def peer_add(request: Request, archive: ArchiveDep, user: CurrentUser, ae_title: Annotated[str, Form(max_length=16)] = "",
             host: Annotated[str, Form(max_length=64)] = "", port: Annotated[str, Form(max_length=5)] = "",
             roles: Roles = [], institution: Annotated[str, Form(max_length=32)] = "") -> Response:  # noqa: B006
    form = {"ae_title": ae_title, "host": host, "port": port, "roles": roles, "institution": institution}

    def change() -> str:
        peers_grants.add_peer(archive.sessions, _actor(archive, user, request), Reach.of(user), ae_title=ae_title.strip(),
                              host=host.strip(), port=port.strip(), roles=roles, institution=institution.strip())
        return "peer-added"

    return _apply(change, "/ui/admin/peers", lambda e: _peers_page(request, archive, user, e, form, 400))


@router.post("/peers/{peer_id}", operation_id="ui_peer_remove", summary="Remove a DICOM peer (action=remove)",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def peer_remove(request: Request, archive: ArchiveDep, user: CurrentUser, peer_id: ItemId,
                action: Annotated[str, Form(max_length=32)] = "") -> Response:
    def change() -> str:
        if action != "remove":
            raise Refused("form.unknown_action")
        peers_grants.remove_peer(archive.sessions, _actor(archive, user, request), Reach.of(user), peer_id)
        return "peer-removed"

    return _apply(change, "/ui/admin/peers", lambda e: _peers_page(request, archive, user, e, status=400))


# --- grants ---------------------------------------------------------------------------------------------------


def _grants_page(request: Request, archive: Archive, user: Principal, error: str = "",
                 form: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    return page(request, "grants.html", status=status, grants=peers_grants.list_grants(archive.sessions, user.institution_id),
                kinds=peers_grants.GRANT_KINDS, institutions=directory.list_institutions(archive.sessions), error=error,
                form=form or {"study_uid": "", "kind": "consultation", "to_user": "", "to_institution": "", "days": "",
                              "reason": ""})


@router.get("/grants", operation_id="ui_grants", summary="Grants on the caller's institution's studies",
            response_class=HTMLResponse)
def grants(request: Request, archive: ArchiveDep, user: CurrentUser) -> HTMLResponse:
    return _grants_page(request, archive, user)


@router.post("/grants", operation_id="ui_grant_create", summary="Grant a user or institution one study",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def grant_create(request: Request, archive: ArchiveDep, user: CurrentUser,
                 study_uid: Annotated[str, Form(max_length=64)] = "", kind: Annotated[str, Form(max_length=32)] = "",
                 to_user: Annotated[str, Form(max_length=64)] = "", to_institution: Annotated[str, Form(max_length=32)] = "",
                 days: Annotated[str, Form(max_length=5)] = "", reason: LongText = "") -> Response:
    form = {"study_uid": study_uid, "kind": kind, "to_user": to_user, "to_institution": to_institution, "days": days,
            "reason": reason}

    def change() -> str:
        peers_grants.create_grant(archive.sessions, _actor(archive, user, request), study_uid=study_uid.strip(), kind=kind,
                                  to_user=to_user.strip(), to_institution=to_institution.strip(), days=days.strip(),
                                  reason=reason.strip())
        return "grant-created"

    return _apply(change, "/ui/admin/grants", lambda e: _grants_page(request, archive, user, e, form, 400))


@router.post("/grants/{grant_id}", operation_id="ui_grant_revoke", summary="Revoke a grant (action=revoke)",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def grant_revoke(request: Request, archive: ArchiveDep, user: CurrentUser, grant_id: ItemId,
                 action: Annotated[str, Form(max_length=32)] = "") -> Response:
    def change() -> str:
        if action != "revoke":
            raise Refused("form.unknown_action")
        peers_grants.revoke_grant(archive.sessions, _actor(archive, user, request), grant_id)
        return "grant-revoked"

    return _apply(change, "/ui/admin/grants", lambda e: _grants_page(request, archive, user, e, status=400))


# --- outbox of messages (SMS, e-mail; yunying.notify) ---------------------------------------------------------


@router.get("/outbox", operation_id="ui_outbox", summary="Messages (SMS, e-mail) of the caller's institution",
            response_class=HTMLResponse)
def outbox(request: Request, archive: ArchiveDep, user: CurrentUser) -> HTMLResponse:
    messages = notify.list_messages(archive.sessions, user.institution_id,
                                    everything=user.can(Permission.INSTITUTION_MANAGE), limit=200)
    return page(request, "outbox.html", messages=messages)
