"""ASGI entry point for multi-process serving: each worker builds its archive from ``YUNYING_*``."""

from __future__ import annotations

from fastapi import FastAPI

from yunying.api.app import create_app
from yunying.compose import build_archive
from yunying.logging import configure_logging
from yunying.settings import Settings


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory yunying.api.asgi:create_app_from_env`` (one per worker process)."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(build_archive(settings))
