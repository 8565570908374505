"""The web pages (``/ui/…``): sign-in, home, second-factor enrolment, study search, audit trail, static files;
the administration pages are in ``yunying.web.admin`` and included here.

Every page is in OpenAPI (tag ``web``) and in ``yunying.api.policy.ROUTE_POLICY`` like any route.
Sign-in uses the session module (cookie ``yy_session``); every form that changes something is a POST
carrying the session's ``csrf_token``, checked by ``yunying.api.deps`` before the handler runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import AfterValidator

from yunying.api.deps import ArchiveDep, CurrentUser, client_address, session_cookie, session_policy
from yunying.api.problems import ProblemError
from yunying.auth import audit, sessions, totp
from yunying.auth.access import Principal, scope_of
from yunying.auth.sessions import SessionView
from yunying.compose import Archive
from yunying.web import admin, feedback
from yunying.web.render import HOME, LOGIN, WebRoute, local_page, page, person_name, redirect

router = APIRouter(prefix="/ui", tags=["web"], route_class=WebRoute)
router.include_router(admin.router)
router.include_router(feedback.router)

PUBLIC_PAGES = frozenset({"/ui/login", "/ui/static/{name}"})  # no credentials needed (ROUTE_POLICY: PUBLIC)
PAGE_SIZE = 50
_SEE_OTHER: dict[int | str, dict[str, Any]] = {303: {"description": "done: see the page in Location"}}


def _iso_date(text: str) -> str:
    if text:
        datetime.strptime(text, "%Y-%m-%d")  # ValueError: not a calendar date (400)
    return text


DateText = Annotated[str, AfterValidator(_iso_date), Query(pattern=r"^(\d{4}-\d{2}-\d{2})?$",
                                                           description="YYYY-MM-DD, or empty")]


# --- static files: a fixed list, read once (no path from the request reaches the file system) ----------------

_MEDIA = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@cache
def _static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("yunying.web") / "static"
    return {item.name: (item.read_bytes(), _MEDIA[item.name[item.name.rfind("."):]])
            for item in folder.iterdir() if item.name[item.name.rfind("."):] in _MEDIA}


@router.get("/static/{name}", operation_id="ui_static", summary="Style sheet or script of the web pages (public)",
            response_class=Response, responses={200: {"content": {m: {} for m in _MEDIA.values()}}})
def static_file(name: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}\.(css|js)$")]) -> Response:
    found = _static_files().get(name)
    if found is None:
        raise ProblemError(404, "Not Found", "no such file")
    return Response(found[0], media_type=found[1], headers={"Cache-Control": "public, max-age=3600"})


# --- sign in and out ------------------------------------------------------------------------------------------


@router.get("/login", operation_id="ui_login", summary="Sign-in page (public)", response_class=HTMLResponse)
def login_page(request: Request, next_page: Annotated[str, Query(alias="next", max_length=2000)] = "",
               ended: Annotated[bool, Query()] = False) -> HTMLResponse:
    return page(request, "login.html", next=local_page(next_page), username="", totp=False,
                message="login.ended" if ended else "")


@router.post("/login", operation_id="ui_login_submit", summary="Sign in with the form (sets the session cookie)",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def login_submit(request: Request, archive: ArchiveDep,
                 username: Annotated[str, Form(max_length=64)] = "", password: Annotated[str, Form(max_length=1024)] = "",
                 totp_code: Annotated[str, Form(max_length=8)] = "",
                 next_page: Annotated[str, Form(alias="next", max_length=2000)] = "") -> Response:
    target = local_page(next_page)

    def again(message: str, status: int, totp_field: bool = False) -> HTMLResponse:
        answer = page(request, "login.html", status=status, next=target, username=username, totp=totp_field,
                      message=message)
        if status == 401:
            answer.headers["WWW-Authenticate"] = 'Bearer realm="yunying"'
        return answer

    if not username or not password:
        return again("login.missing", 400)
    try:
        new = sessions.login(archive.sessions, username, password, totp_code.strip(),
                             policy=session_policy(archive.settings), cipher=archive.fields,
                             source=client_address(request))
    except sessions.LoginRefused as refused:  # one message for every failure: no account enumeration
        if refused.reason == "second-factor-required":
            return again("login.second_factor", 401, totp_field=True)
        return again("login.failed", 401, totp_field=bool(totp_code))
    except totp.TotpUnavailable:
        return again("totp.unavailable", 503)
    if new.view.second_factor_required:  # an administrator without an authenticator app: enrol first
        target = "/ui/account/totp"
    answer = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    answer.headers.append("Set-Cookie", session_cookie(archive.settings, request, new.cookie))
    return answer


@router.post("/logout", operation_id="ui_logout", summary="Sign out (this session)", response_class=HTMLResponse,
             responses=_SEE_OTHER)
def logout(request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    sessions.logout(archive.sessions, user, client_address(request))
    answer = redirect(LOGIN, "logged-out")
    answer.headers.append("Set-Cookie", session_cookie(archive.settings, request, ""))
    return answer


# --- home and second factor -----------------------------------------------------------------------------------


def _view(request: Request) -> SessionView | None:
    view: SessionView | None = getattr(request.state, "session", None)
    return view


@router.get("/", operation_id="ui_home", summary="Home page: who am I, institution, roles, what I can do",
            response_class=HTMLResponse)
def home(request: Request, archive: ArchiveDep, user: CurrentUser) -> HTMLResponse:
    profile = sessions.profile(archive.sessions, user.user_id) if user.user_id is not None else None
    view = _view(request)
    return page(request, "home.html", profile=profile, roles=sorted(user.roles),
                pending=view is not None and view.second_factor_required)


@router.get("/account/totp", operation_id="ui_totp", summary="Second factor: status and enrolment",
            response_class=HTMLResponse)
def totp_page(request: Request, archive: ArchiveDep, user: CurrentUser) -> HTMLResponse:
    enabled = user.user_id is not None and sessions.profile(archive.sessions, user.user_id).totp_enabled
    return page(request, "totp.html", enabled=enabled, enrolment=None, message="")


@router.post("/account/totp/enroll", operation_id="ui_totp_enroll", summary="Second factor: a new secret, shown once",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def totp_enroll(request: Request, archive: ArchiveDep, user: CurrentUser) -> Response:
    try:
        enrolment = sessions.start_enrolment(archive.sessions, user, archive.fields, client_address(request))
    except totp.AlreadyEnrolled:
        return redirect("/ui/account/totp")
    except (totp.TotpUnavailable, ValueError):
        return page(request, "totp.html", status=503, enabled=False, enrolment=None, message="totp.unavailable")
    secret = " ".join(enrolment.secret[i:i + 4] for i in range(0, len(enrolment.secret), 4))
    return page(request, "totp.html", enabled=False, enrolment={"secret": secret, "uri": enrolment.uri}, message="")


@router.post("/account/totp/confirm", operation_id="ui_totp_confirm", summary="Second factor: confirm with a code",
             response_class=HTMLResponse, responses=_SEE_OTHER)
def totp_confirm(request: Request, archive: ArchiveDep, user: CurrentUser,
                 code: Annotated[str, Form(max_length=8)] = "") -> Response:
    try:
        confirmed = sessions.confirm_enrolment(archive.sessions, user, code.strip(), archive.fields,
                                               client_address(request))
    except totp.AlreadyEnrolled:
        return redirect("/ui/account/totp")
    except (totp.TotpUnavailable, ValueError):
        return page(request, "totp.html", status=503, enabled=False, enrolment=None, message="totp.unavailable")
    if not confirmed:
        return page(request, "totp.html", status=400, enabled=False, enrolment={"secret": "", "uri": ""},
                    message="totp.wrong_code")
    return redirect(HOME, "totp-enabled")


# --- studies --------------------------------------------------------------------------------------------------


def _first(row: dict[str, dict[str, Any]], tag: str) -> Any:
    values = row.get(tag, {}).get("Value") or [""]
    return values[0]


def _study_filters(patient_id: str, name: str, accession: str, modality: str, date_from: str, date_to: str) -> dict[str, str]:
    filters = {"PatientID": patient_id.strip(), "PatientName": name.strip(), "AccessionNumber": accession.strip(),
               "ModalitiesInStudy": modality}
    if date_from or date_to:
        filters["StudyDate"] = f"{date_from.replace('-', '')}-{date_to.replace('-', '')}"
    return {k: v for k, v in filters.items() if v}


def _audit_listing(archive: Archive, user: Principal, request: Request, uids: list[str], keys: list[str]) -> None:
    """The list shows each study's patient: every listed study is a subject (an empty search names the query)."""
    institution = audit.institution_code(archive.sessions, user.institution_id)
    detail = f"web study list: {len(uids)} result(s); keys {keys}"
    records = [audit.AuditRecord(user.username, "query", uid, client_address(request), "success", detail, institution,
                                 user.role) for uid in uids or ["web STUDY"]]
    audit.record_many(archive.sessions, records)


@router.get("/studies", operation_id="ui_studies", summary="Search the studies the caller may see (newest first)",
            response_class=HTMLResponse)
def studies(request: Request, archive: ArchiveDep, user: CurrentUser,
            patient_id: Annotated[str, Query(max_length=64)] = "", name: Annotated[str, Query(max_length=64)] = "",
            accession: Annotated[str, Query(max_length=16)] = "",
            modality: Annotated[str, Query(pattern=r"^([A-Z]{2,8})?$")] = "",
            date_from: DateText = "", date_to: DateText = "",
            offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> HTMLResponse:
    filters = _study_filters(patient_id, name, accession, modality, date_from, date_to)
    scope, fuzzy = scope_of(user), bool(filters.get("PatientName"))
    total = archive.query.count(scope, "STUDY", filters, fuzzy=fuzzy)
    # The index lists studies in arrival order; newest first is the end of that list, read backwards.
    end = max(total - offset, 0)
    start = max(end - PAGE_SIZE, 0)
    found = archive.query.find(scope, "STUDY", filters, fuzzy=fuzzy, limit=end - start, offset=start) if end else None
    rows = list(reversed(found.rows)) if found else []
    _audit_listing(archive, user, request, [str(_first(r, "0020000D")) for r in rows], sorted(filters))
    shown = [{"name": person_name(_first(r, "00100010")), "patient_id": _first(r, "00100020"),
              "date": _first(r, "00080020"), "modalities": r.get("00080061", {}).get("Value") or [],
              "description": _first(r, "00081030"), "accession": _first(r, "00080050"),
              "instances": _first(r, "00201208")} for r in rows]
    form = {"patient_id": patient_id, "name": name, "accession": accession, "modality": modality,
            "date_from": date_from, "date_to": date_to}
    return page(request, "studies.html", rows=shown, form=form, total=total, offset=offset, page_size=PAGE_SIZE,
                modalities=MODALITIES, query=urlencode(form) + "&")


MODALITIES = ("CT", "MR", "CR", "DX", "DR", "MG", "US", "XA", "RF", "NM", "PT", "OT", "SR")


# --- audit trail ----------------------------------------------------------------------------------------------

AuditText = Annotated[str, Query(max_length=200)]


def _day(text: str, after: int = 0) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=after) if text else None


@router.get("/audit", operation_id="ui_audit", summary="Search the audit trail (newest first, paged)",
            response_class=HTMLResponse)
def audit_trail(request: Request, archive: ArchiveDep, user: CurrentUser, date_from: DateText = "", date_to: DateText = "",
                actor: AuditText = "", action: AuditText = "", subject: AuditText = "", outcome: AuditText = "",
                institution: Annotated[str, Query(max_length=32)] = "",
                offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    flt = audit.AuditFilter(_day(date_from), _day(date_to, 1), actor.strip() or None, action.strip() or None,
                            subject.strip() or None, outcome.strip() or None, institution.strip() or None)
    found = audit.search(archive.sessions, flt, limit=PAGE_SIZE, offset=offset)
    audit.record(archive.sessions, actor=user.username, action="audit-read", subject="audit-trail",
                 source=client_address(request), detail=f"web search {flt.describe()} offset {offset}: "
                 f"{len(found.items)} of {found.total}", role=user.role,
                 institution=audit.institution_code(archive.sessions, user.institution_id))
    form = {"date_from": date_from, "date_to": date_to, "actor": actor, "action": action, "subject": subject,
            "outcome": outcome, "institution": institution}
    return page(request, "audit.html", entries=found.items, total=found.total, offset=offset, page_size=PAGE_SIZE,
                form=form, query=urlencode(form) + "&")
