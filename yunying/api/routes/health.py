"""Liveness/readiness: deliberately public, reveals no patient data."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from yunying import __version__
from yunying.api.deps import ArchiveDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    database: str
    storage: str


@router.get("/healthz", operation_id="healthz", summary="Health check (public)", response_model=Health)
def healthz(archive: ArchiveDep) -> Health:
    with archive.sessions() as session:
        session.execute(text("SELECT 1"))
    archive.blobs.exists("healthz-probe")
    return Health(status="ok", version=__version__, database=archive.engine.dialect.name, storage=archive.blobs.name)
