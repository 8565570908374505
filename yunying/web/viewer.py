"""The diagnostic web viewer (``/viewer``): the page and the assets built from ``viewer/`` by Vite.

The page needs a signed-in user who may read studies (no session → the sign-in page, which comes back
here); the assets are code, not patient data, and are public. Asset names are the fixed set found in
the build folder, read once; no path from the request reaches the file system. Compressible assets are
kept gzip-compressed as well and sent so when the browser accepts it.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from yunying.api.deps import ArchiveDep, CurrentUser, client_address
from yunying.api.problems import ProblemError
from yunying.auth import audit
from yunying.web.render import WebRoute

router = APIRouter(prefix="/viewer", tags=["viewer"], route_class=WebRoute)

PUBLIC_PAGES = frozenset({"/viewer/assets/{name}"})
_MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".wasm": "application/wasm",
          ".svg": "image/svg+xml", ".png": "image/png", ".woff2": "font/woff2", ".json": "application/json"}
_COMPRESSIBLE = {".js", ".css", ".wasm", ".svg", ".json"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str


@dataclass(frozen=True)
class Build:
    index: bytes
    assets: dict[str, Asset]


@cache
def _load(folder: FsPath) -> Build | None:
    index = folder / "index.html"
    if not index.is_file():
        return None
    assets: dict[str, Asset] = {}
    for item in sorted((folder / "assets").iterdir()) if (folder / "assets").is_dir() else []:
        media = _MEDIA.get(item.suffix)
        if media is None or not item.is_file():
            continue
        body = item.read_bytes()
        packed = gzip.compress(body, 6, mtime=0) if item.suffix in _COMPRESSIBLE and len(body) > 1024 else None
        assets[item.name] = Asset(body, packed, media)
    return Build(index.read_bytes(), assets)


def _build(archive: ArchiveDep) -> Build:
    found = _load(archive.settings.viewer_dist.resolve())
    if found is None:
        raise ProblemError(503, "Viewer not built", "the web viewer is not built: run the set-up (make setup)")
    return found


@router.get("", operation_id="viewer_page", summary="The web viewer: study list, or a study with ?study=<StudyInstanceUID>",
            response_class=Response, responses={200: {"content": {"text/html": {}}}})
def viewer_page(request: Request, archive: ArchiveDep, user: CurrentUser,
                study: Annotated[str | None, Query(max_length=64, description="StudyInstanceUID to open")] = None) -> Response:
    # Opening the viewer on a study is itself recorded (the images it then reads are audited by DICOMweb).
    audit.record(archive.sessions, actor=user.username, action="view", subject=study or "viewer study list",
                 source=client_address(request), detail="web viewer opened",
                 institution=audit.institution_code(archive.sessions, user.institution_id), role=user.role)
    return Response(_build(archive).index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/assets/{name}", operation_id="viewer_asset", summary="Script, style, worker or codec of the web viewer (public)",
            response_class=Response, responses={200: {"content": {m: {} for m in sorted(set(_MEDIA.values()))}}})
def viewer_asset(request: Request, archive: ArchiveDep,
                 name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,120}$")]) -> Response:
    asset = _build(archive).assets.get(name)
    if asset is None:
        raise ProblemError(404, "Not Found", "no such file")
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "Vary": "Accept-Encoding"}
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
