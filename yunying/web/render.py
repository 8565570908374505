"""Rendering pages: one Jinja2 environment (autoescaping on, strict undefined), the context every page
gets, redirects, and the route class that turns authentication and permission failures into pages.

Data shown on a page (patient names, descriptions, user names, audit details) always passes through
autoescaping; no template marks anything ``|safe``. The CSP (``default-src 'self'``, set by
``yunying.api.security``) forbids inline scripts and styles as a second line: pages load
``/ui/static/app.css`` and ``app.js`` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined

from yunying.api.deps import SESSION_COOKIE
from yunying.api.policy import ROUTE_POLICY
from yunying.api.problems import ProblemError
from yunying.auth.access import Principal
from yunying.auth.sessions import SessionView
from yunying.web.i18n import LANGUAGES, MESSAGES, Translator, choose

LANG_COOKIE = "yy_lang"
HOME = "/ui/"
LOGIN = "/ui/login"

# The navigation: label, page, and the operation whose permission (ROUTE_POLICY) shows the link.
NAV: tuple[tuple[str, str, str], ...] = (
    ("nav.home", "/ui/", "ui_home"),
    ("nav.studies", "/ui/studies", "ui_studies"),
    ("nav.institutions", "/ui/admin/institutions", "ui_institutions"),
    ("nav.users", "/ui/admin/users", "ui_users"),
    ("nav.peers", "/ui/admin/peers", "ui_peers"),
    ("nav.grants", "/ui/admin/grants", "ui_grants"),
    ("nav.feedback", "/ui/admin/feedback", "ui_feedback"),
    ("nav.outbox", "/ui/admin/outbox", "ui_outbox"),
    ("nav.audit", "/ui/audit", "ui_audit"),
)

_CJK = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff·]+$")


def person_name(value: object) -> str:
    """A DICOM JSON Person Name as people read it: components spaced (joined for Chinese characters),
    component groups joined by ``=`` as in DICOM, e.g. ``Wang XiaoDong=王小东``."""
    if not isinstance(value, Mapping):
        return "" if value is None else str(value)
    shown = []
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        text = value.get(group)
        if isinstance(text, str) and text:
            parts = [p.strip() for p in text.split("^") if p.strip()]
            shown.append(("" if parts and all(_CJK.match(p) for p in parts) else " ").join(parts))
    return "=".join(shown)


def dicom_date(value: object) -> str:
    """``20240131`` → ``2024-01-31`` (other text unchanged)."""
    text = "" if value is None else str(value)
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if len(text) == 8 and text.isdigit() else text


def utc_time(value: datetime | None) -> str:
    if value is None:
        return ""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.strftime("%Y-%m-%d %H:%M:%S")


ENV = Environment(loader=PackageLoader("yunying.web", "templates"), autoescape=True, undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(pn=person_name, dicom_date=dicom_date, utc=utc_time)


def translator(request: Request) -> Translator:
    asked = request.query_params.get("lang")
    return Translator(choose(asked, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language", "")))


def principal_of(request: Request) -> Principal | None:
    found: Principal | None = getattr(request.state, "principal", None)
    return found


def csrf_of(request: Request) -> str:
    """The session's CSRF token for the hidden ``csrf_token`` field ("" for token callers: no cookie, no CSRF)."""
    view: SessionView | None = getattr(request.state, "session", None)
    return view.csrf_token if view is not None else ""


def nav_for(principal: Principal | None, current: str) -> list[tuple[str, str, bool]]:
    if principal is None:
        return []
    links = []
    for label, path, operation in NAV:
        needed = ROUTE_POLICY.get(operation)
        if needed is not None and principal.can(needed):
            links.append((label, path, path == current))
    return links


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the common context: ``t``, the caller, navigation, CSRF token."""
    t = translator(request)
    me = principal_of(request)
    notice = "done." + request.query_params.get("done", "")
    body = ENV.get_template(template).render(
        t=t, me=me, nav=nav_for(me, request.url.path), csrf=csrf_of(request), path=request.url.path,
        other_lang=next(lang for lang in LANGUAGES if lang != t.lang),
        notice=notice if notice in MESSAGES[t.lang] else "", **context)  # only known notices: nothing reflected
    response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        response.set_cookie(LANG_COOKIE, t.lang, max_age=365 * 24 * 3600, path="/ui", samesite="lax")
    return response


def redirect(path: str, done: str = "") -> RedirectResponse:
    """303 See Other after a change (post/redirect/get); ``done`` names an i18n ``done.*`` message."""
    return RedirectResponse(path + (f"?done={quote(done)}" if done else ""), status_code=303,
                            headers={"Cache-Control": "no-store"})


def local_page(target: str | None) -> str:
    """``target`` when it is one of our pages (``/ui/…``, ``/viewer``, ``/m/viewer``), else the home page: never an
    open redirect."""
    if not target or len(target) > 2000 or any(c in target for c in "\\\r\n\t\0"):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (parts.path.startswith("/ui/") or parts.path in ("/viewer", "/m/viewer")) or parts.path.startswith("//"):
        return HOME
    return target


def wants_html(request: Request) -> bool:
    """A browser navigating (``Accept: text/html…``); API clients keep problem documents."""
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    key = f"error.{status}" if status in (400, 401, 403, 404, 413, 429, 503) else "error.400"
    response = page(request, "error.html", status=status, message=key)
    for name, value in (headers or {}).items():
        if name.lower() in ("retry-after", "set-cookie", "www-authenticate"):
            response.headers.append(name, value)
    return response


def _to_login(request: Request, headers: Mapping[str, str] | None) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ended = "&ended=1" if SESSION_COOKIE in request.cookies else ""
    response = RedirectResponse(f"{LOGIN}?next={quote(local_page(target), safe='')}{ended}", status_code=303,
                                headers={"Cache-Control": "no-store"})
    for name, value in (headers or {}).items():
        if name.lower() == "set-cookie":  # the session is over: the browser forgets it
            response.headers.append(name, value)
    return response


class WebRoute(APIRoute):
    """For browsers (Accept text/html): no credentials on a page → 303 to the sign-in page with ``next``;
    other refusals and invalid input → an HTML error page with the same status. API clients still get
    the problem documents of ``yunying.api.problems`` (the authorization matrix test relies on them)."""

    def unauthenticated(self, request: Request, headers: Mapping[str, str] | None) -> Response:
        """What a browser gets for a page it may not open without credentials (a subclass may differ)."""
        return _to_login(request, headers)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def html_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except ProblemError as exc:
                if not wants_html(request):
                    raise
                if exc.status == 401 and request.method in ("GET", "HEAD"):
                    return self.unauthenticated(request, exc.headers)
                return error_page(request, exc.status, exc.headers)
            except RequestValidationError:
                if not wants_html(request):
                    raise
                return error_page(request, 400)

        return html_errors
