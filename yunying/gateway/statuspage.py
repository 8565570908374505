"""The gateway's local status page (loopback HTTP): HTML for people, JSON for monitoring."""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from yunying.gateway.status import render_text

if TYPE_CHECKING:
    from yunying.gateway.service import Gateway


def status_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="Yunying gateway status", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/status.json")
    def status_json() -> JSONResponse:
        return JSONResponse(gateway.status())

    @app.get("/", response_class=HTMLResponse)
    def status_html() -> str:
        text = html.escape(render_text(gateway.status()))
        return ("<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5>"
                f"<title>网关状态 Gateway status</title><pre>{text}</pre>")

    return app


def serve_status(gateway: Gateway, port: int) -> uvicorn.Server:
    """Serve on 127.0.0.1 only (no patient data on it; still not for the hospital LAN).

    uvicorn installs no signal handlers outside the main thread, so the gateway keeps its own."""
    server = uvicorn.Server(uvicorn.Config(status_app(gateway), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    threading.Thread(target=server.run, name="status-page", daemon=True).start()
    return server
