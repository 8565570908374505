"""RFC 9457 problem details for every error the HTTP API returns."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from yunying.errors import CannotDecode, CorruptBlob, InvalidDicom, NotAcceptable, NotFound

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str = "", headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class JsonApiRoute(APIRoute):
    """The platform JSON API convention (docs/api.md): a request that parses but breaks the schema → 422;
    a body that is not JSON → 400. (DICOMweb routes keep PS3.18's 400 for every invalid request.)"""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def validating_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
                if any(e.get("type") == "json_invalid" for e in exc.errors()):
                    return problem(400, "Invalid request", "the body is not JSON", errors=errors)
                return problem(422, "Invalid request", "one or more parameters are invalid", errors=errors)

        return validating_handler


class ProblemError(Exception):
    """Raise from an adapter to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str = "", headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers
        self.extra = extra  # extension members of the problem document (RFC 9457 §3.2)


_DOMAIN: dict[type[Exception], tuple[int, str]] = {
    NotFound: (404, "Not Found"),
    InvalidDicom: (400, "Invalid DICOM data"),
    NotAcceptable: (406, "Not Acceptable"),
    CannotDecode: (422, "Cannot decode pixel data"),
}


def install(app: FastAPI) -> None:
    """Map domain errors and framework errors to problem documents."""

    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.headers, **exc.extra)

    for error_type, (code, title) in _DOMAIN.items():
        def _make(code: int = code, title: str = title) -> Any:
            async def handler(_request: Request, exc: Exception) -> JSONResponse:
                return problem(code, title, str(exc))
            return handler
        app.add_exception_handler(error_type, _make())

    @app.exception_handler(CorruptBlob)
    async def _corrupt(_request: Request, exc: CorruptBlob) -> JSONResponse:
        log.critical("integrity failure: %s", exc)
        return problem(500, "Stored object failed its integrity check", "run `yunying fsck --repair`; the incident was logged")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail) if exc.detail else "Error", headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", "")} for e in exc.errors()]
        return problem(400, "Invalid request", "one or more parameters are invalid", errors=errors)
