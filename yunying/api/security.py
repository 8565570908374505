"""Web defences as ASGI middleware, listed once in :func:`install` (outermost first):

1. :class:`SecurityHeaders` — CSP, ``nosniff``, no referrer, no framing, HSTS over TLS, on every answer.
2. CORS — only when ``cors_origins`` lists origins; by default no ``Access-Control-*`` header at all.
3. :class:`OriginGuard` — a state-changing request a browser sends from another origin is refused (403),
   whatever its credentials (cookies, but also Basic credentials a browser remembers).
4. :class:`BodyLimit` — JSON and form bodies above ``max_json_bytes`` answer 413 before the app reads
   them (STOW-RS multipart bodies have their own limit, ``max_request_bytes``; the few JSON routes in
   :data:`LARGER_BODIES` theirs).

CSRF tokens of cookie sessions and rate limits need the session and the route, so they live with
authentication in ``yunying.api.deps``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yunying.api.problems import problem
from yunying.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSP = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
# Swagger UI loads its bundle from jsDelivr and starts with an inline script; allowed on its pages only.
_DOCS_CSP = (CSP + "; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net;"
             " style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com")
# The viewer: WebAssembly codecs, module workers, canvases exported as data:/blob: URLs, styles set by Cornerstone.
VIEWER_CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:;"
              " img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self' data: blob:;"
              " frame-ancestors 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")
CSP_BY_PATH: dict[str, str] = {
    "/viewer": VIEWER_CSP,
    "/m/viewer": VIEWER_CSP,  # the phone viewer (same build, same assets)
    "/docs": _DOCS_CSP,
    "/docs/oauth2-redirect": _DOCS_CSP,
    "/": CSP + "; style-src 'self' 'unsafe-inline'",  # the static landing page's inline <style>; no scripts
}
HSTS = "max-age=31536000"
_BODY_LIMITED = ("application/json", "application/x-www-form-urlencoded", "text/")
# JSON routes that carry more than ``max_json_bytes``: path → limit (a feedback ticket's 2 MB screenshot in base64).
LARGER_BODIES: dict[str, int] = {"/api/feedback": 3 * 1024 * 1024}


def is_https(settings: Settings, scope: Scope) -> bool:
    """TLS here (``tls_cert_file``), at a proxy in front (``public_url`` https), or this request's scheme."""
    return bool(settings.tls_cert_file) or settings.public_url.startswith("https://") or scope.get("scheme") == "https"


# Paths under these prefixes carry the viewer's policy: its workers and codecs (a worker runs under the policy
# of its own script's response) and the phone pages built from the same project (yunying.web.mobile).
VIEWER_PREFIXES = ("/viewer/assets/", "/m/", "/s/")


def csp_for(path: str) -> str:
    """The page's policy: the viewer's for the viewer, its assets and the phone pages, else the strict one."""
    if path == "/m" or path.startswith(VIEWER_PREFIXES):
        return VIEWER_CSP
    return CSP_BY_PATH.get(path, CSP)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"content-security-policy", csp_for(scope["path"]).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),  # no-referrer makes browsers send "Origin: null" on our own forms
            (b"x-frame-options", b"DENY"),
        ]
        if is_https(self.settings, scope):
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                message["headers"] = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names] + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class OriginGuard:
    """Refuse unsafe methods whose ``Origin`` (sent by browsers) is neither this site nor an allowed origin."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.allowed = {_origin_of(o) for o in [*settings.cors_origins, settings.public_url] if o}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not self._same_site(origin, scope):
                response = problem(403, "Forbidden", "cross-origin request refused")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _same_site(self, origin: str, scope: Scope) -> bool:
        # Either scheme for our own host: behind a proxy that terminates TLS without telling
        # (no trusted X-Forwarded-Proto), the page is https while this request arrives as http.
        host = Headers(scope=scope).get("host", "")
        own = {_origin_of(f"{scheme}://{host}") for scheme in ("http", "https")}
        return origin != "null" and _origin_of(origin) in own | self.allowed


class BodyLimit:
    """413 for JSON, form and text bodies over ``limit`` bytes: declared (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app, self.default, self.larger = app, limit, larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = max(self.default, self.larger.get(scope["path"], 0))
        headers = Headers(scope=scope)
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media and not media.startswith(_BODY_LIMITED) and not media.endswith("+json"):
            await self.app(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(limit)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a body without (or lying about) its length
                    raise HTTPException(413, "Content Too Large")
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    def _too_large(limit: int) -> ASGIApp:
        return problem(413, "Content Too Large", f"the body exceeds {limit} bytes")


def _cors(origins: Iterable[str]) -> dict[str, object]:
    return {"allow_origins": list(origins), "allow_credentials": True,
            "allow_methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            "allow_headers": ["Authorization", "Content-Type", "Accept", "X-CSRF-Token"], "max_age": 600}


def install(app: FastAPI, settings: Settings) -> None:
    """Add the defences; Starlette runs the middleware added last first."""
    app.add_middleware(BodyLimit, limit=settings.max_json_bytes, larger=LARGER_BODIES)
    app.add_middleware(OriginGuard, settings=settings)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, **_cors(settings.cors_origins))  # type: ignore[arg-type]
    app.add_middleware(SecurityHeaders, settings=settings)
