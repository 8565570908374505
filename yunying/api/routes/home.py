"""The landing page at ``/`` (public, static: no patient data). The web viewer replaces it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from yunying import __version__

router = APIRouter(tags=["home"])

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>云影 Yunying</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:3rem auto;padding:0 1rem;color:#222}}
code{{background:#f3f3f3;padding:0 .3em}}</style></head>
<body><h1>云影 Yunying <small>{version}</small></h1>
<p>区域医学影像云 · 影像归档服务已运行。Regional imaging cloud — the archive is running.</p>
<ul>
<li>DICOMweb: <code>/dicom-web</code> (QIDO-RS, WADO-RS, STOW-RS) · WADO-URI: <code>/wado</code></li>
<li><a href="/docs">API 文档 / API documentation (OpenAPI)</a></li>
<li>健康检查 / health: <a href="/healthz">/healthz</a></li>
</ul>
<p><a href="/ui/login">登录 / sign in</a> — DICOMweb clients: HTTP Basic or a bearer token
(<code>yunying token create</code>).</p>
</body></html>"""


@router.get("/", operation_id="home", summary="Landing page (public, no patient data)", response_class=HTMLResponse)
def home() -> HTMLResponse:
    return HTMLResponse(_PAGE.format(version=__version__))
