"""Fixtures shared by every test layer: databases (SQLite and PostgreSQL), archives, servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import ServerProcess
from yunying.compose import Archive, build_archive
from yunying.index.migrate import upgrade
from yunying.settings import Settings


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once for SQLite and once for PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def archive(db_url: str, tmp_path: Path) -> Iterator[Archive]:
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(db_url)
    built = build_archive(settings)
    yield built
    built.close()


@pytest.fixture
def server_factory(db_url: str, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``yunying serve`` processes (HTTP + DICOM on free ports) with extra ``YUNYING_*`` env."""
    started: list[ServerProcess] = []

    def start(name: str = "server", open_dicom: bool = True, **env: str) -> ServerProcess:
        proc = ServerProcess(tmp_path / name, db_url, env=dict(env), open_dicom=open_dicom)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """A running archive on each database."""
    return server_factory()
