"""In-process archive apps for session and web-defence tests: one database, any number of "nodes"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from yunying.api.app import create_app
from yunying.auth.access import Role
from yunying.auth.credentials import create_token, create_user, institution_id
from yunying.compose import Archive, build_archive
from yunying.index.migrate import upgrade
from yunying.settings import Settings

FIELD_KEYS = {"field_key": "11" * 32, "field_hash_key": "22" * 32}  # test keys: TOTP secrets are stored encrypted
RADIOLOGIST = ("rad-li", "Rad-pass-word-42")
ADMIN = ("boss-wang", "Adm-pass-word-42")
CSRF = "X-CSRF-Token"


@dataclass
class Site:
    """The archive of one database with users, and test clients (browsers) talking to its app."""

    db_url: str
    data_dir: Path
    nodes: list[Archive] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def archive(self) -> Archive:
        return self.nodes[0]

    def node(self, **settings: Any) -> Archive:
        """Another API node on the same database (its own settings, its own process state)."""
        built = build_archive(Settings(data_dir=self.data_dir, database_url=self.db_url, **{**FIELD_KEYS, **settings}))
        self.nodes.append(built)
        return built

    def browser(self, archive: Archive | None = None, **kwargs: Any) -> TestClient:
        return TestClient(create_app(archive or self.archive), **kwargs)

    def login(self, client: TestClient, who: tuple[str, str] = RADIOLOGIST, code: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"username": who[0], "password": who[1]}
        if code is not None:
            body["totp_code"] = code
        answer = client.post("/api/session", json=body)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        client.headers[CSRF] = result["csrf_token"]
        return result


@contextmanager
def site(db_url: str, tmp_path: Path, **settings: Any) -> Iterator[Site]:
    upgrade(db_url)
    built = Site(db_url, tmp_path / "data")
    built.data_dir.mkdir(parents=True, exist_ok=True)
    archive = built.node(**{"login_rate_per_minute": 1000, **settings})
    default = institution_id(archive.sessions, "default")
    create_user(archive.sessions, RADIOLOGIST[0], RADIOLOGIST[1], [Role.RADIOLOGIST], institution=default,
                display_name="Li Radiologist")
    create_user(archive.sessions, ADMIN[0], ADMIN[1], [Role.HOSPITAL_ADMIN], institution=default)
    built.tokens[RADIOLOGIST[0]] = create_token(archive.sessions, RADIOLOGIST[0], "rad-script")
    try:
        yield built
    finally:
        for node in built.nodes:
            node.close()
