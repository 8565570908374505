"""``yunying`` command line: serve, migrate, load, fsck, user, token."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

from yunying.settings import Settings

ADMIN = "admin"
DEMO_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "dicom"


def _settings(args: argparse.Namespace) -> Settings:
    unknown = Settings.unknown_environment(dict(os.environ))
    if unknown:
        raise SystemExit(f"unknown setting(s) in the environment: {', '.join(unknown)} (see docs/operate.md)")
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "http_port", "dicom_port", "http_host", "dicom_host", "ae_title", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _ensure_admin(settings: Settings) -> str | None:
    """Create the first admin with a random password; return the password if created now."""
    from yunying.auth.credentials import create_user, user_exists
    from yunying.compose import build_archive

    archive = build_archive(settings)
    try:
        if user_exists(archive.sessions, ADMIN):
            return None
        password = os.environ.get("YUNYING_ADMIN_PASSWORD_INIT") or secrets.token_urlsafe(12)
        create_user(archive.sessions, ADMIN, password, role="admin")
        path = settings.data_dir / "admin-password.txt"
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password
    finally:
        archive.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    from yunying.index.migrate import upgrade

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    _out("index schema is up to date")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from yunying.archive.importer import import_paths
    from yunying.compose import build_archive
    from yunying.index.migrate import upgrade

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    archive = build_archive(settings)
    try:
        summary = import_paths(archive.ingest, [Path(p) for p in args.paths])
    finally:
        archive.close()
    _out(summary.describe())
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    from yunying.archive.fsck import fsck
    from yunying.compose import build_archive
    from yunying.storage.filesystem import FilesystemBlobStore

    archive = build_archive(_settings(args))
    copy = FilesystemBlobStore(Path(args.copy_from)) if args.copy_from else None
    try:
        report = fsck(archive.sessions, archive.blobs, repair=args.repair, copy_from=copy, grace_seconds=args.grace)
    finally:
        archive.close()
    for f in report.findings:
        _out(f"{f.kind:8} {'repaired' if f.repaired else 'FOUND':9} {f.key}  — {f.detail}")
    _out(f"checked {report.instances_checked} instance(s), {report.blobs_seen} blob(s); "
         f"{len(report.findings)} finding(s), {len(report.unrepaired())} unrepaired")
    damaged = report.unrepaired("corrupt") + report.unrepaired("missing") + report.unrepaired("counter")
    return 1 if damaged else 0


def cmd_user(args: argparse.Namespace) -> int:
    from yunying.auth.credentials import create_user, set_password
    from yunying.compose import build_archive

    archive = build_archive(_settings(args))
    password = args.password or os.environ.get("YUNYING_NEW_PASSWORD") or secrets.token_urlsafe(12)
    try:
        if args.action == "create":
            create_user(archive.sessions, args.username, password, role=args.role)
        else:
            set_password(archive.sessions, args.username, password)
    finally:
        archive.close()
    _out(f"user {args.username}: password {password}" if not args.password else f"user {args.username}: done")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from yunying.auth.credentials import create_token, revoke_token
    from yunying.compose import build_archive

    archive = build_archive(_settings(args))
    try:
        if args.action == "create":
            _out(create_token(archive.sessions, args.user, args.name, days=args.days))
        else:
            _out(f"revoked {revoke_token(archive.sessions, args.name)} token(s)")
    finally:
        archive.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from yunying.api.app import create_app
    from yunying.compose import build_archive
    from yunying.dimse.server import start_dimse
    from yunying.index.migrate import upgrade
    from yunying.logging import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    password = _ensure_admin(settings)
    archive = build_archive(settings)
    if args.demo:
        from yunying.archive.importer import import_paths

        source = Path(args.demo_dir) if args.demo_dir else DEMO_DATA
        if source.is_dir():
            _out(f"loading demo data from {source} …")
            _out(import_paths(archive.ingest, [source]).describe())
        else:
            _out(f"demo data folder {source} not found; starting empty")
    dimse = None if args.no_dimse else start_dimse(archive)
    url = settings.effective_public_url
    _out(f"Yunying archive is up: web {url}/  DICOMweb {url}/dicom-web  API docs {url}/docs")
    if dimse is not None:
        _out(f"DICOM: AE {settings.ae_title} at {settings.dicom_host}:{settings.dicom_port}")
    if password:
        _out(f"login: {ADMIN} / {password}   (saved in {settings.data_dir / 'admin-password.txt'})")
    else:
        _out(f"login: {ADMIN} (password in {settings.data_dir / 'admin-password.txt'} or set with `yunying user passwd admin`)")
    if settings.workers > 1:
        return _serve_workers(settings, archive, dimse)
    config = uvicorn.Config(create_app(archive), host=settings.http_host, port=settings.http_port,
                            log_level="warning", access_log=False, timeout_graceful_shutdown=5, **_tls(settings))
    server = uvicorn.Server(config)
    def _terminate(*_: Any) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _terminate)
    try:
        server.run()
    finally:
        if dimse is not None:
            dimse.shutdown()
        archive.close()
    return 0


def _tls(settings: Settings) -> dict[str, Any]:
    if not settings.tls_cert_file:
        return {}
    return {"ssl_certfile": settings.tls_cert_file, "ssl_keyfile": settings.tls_key_file}


def _export(settings: Settings) -> None:
    """Put the effective settings into the environment, for worker processes that rebuild them."""
    for name, value in settings.model_dump(mode="json").items():
        os.environ[f"YUNYING_{name.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)


def _dimse_worker() -> None:
    """An extra DIMSE process sharing the port (SO_REUSEPORT); exits with its parent."""
    from yunying.compose import build_archive
    from yunying.dimse.server import start_dimse
    from yunying.logging import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    start_dimse(build_archive(settings))
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)


def _serve_workers(settings: Settings, archive: Any, dimse: Any) -> int:
    import multiprocessing

    import uvicorn

    _export(settings)
    extra = []
    if dimse is not None:
        spawn = multiprocessing.get_context("spawn")
        for _ in range(settings.workers - 1):
            proc = spawn.Process(target=_dimse_worker, daemon=True)
            proc.start()
            extra.append(proc)
    try:
        uvicorn.run("yunying.api.asgi:create_app_from_env", factory=True, host=settings.http_host,
                    port=settings.http_port, workers=settings.workers, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=5, **_tls(settings))
    finally:
        for proc in extra:
            proc.terminate()
        if dimse is not None:
            dimse.shutdown()
        archive.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yunying", description="Yunying (云影) regional imaging cloud")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", dest="data_dir", type=Path, help="data folder (index, blobs)")

    serve = sub.add_parser("serve", help="run the archive: HTTP (web, DICOMweb) and DICOM")
    common(serve)
    serve.add_argument("--http-host", dest="http_host")
    serve.add_argument("--http-port", dest="http_port", type=int)
    serve.add_argument("--dicom-host", dest="dicom_host")
    serve.add_argument("--dicom-port", dest="dicom_port", type=int)
    serve.add_argument("--ae-title", dest="ae_title")
    serve.add_argument("--demo", action="store_true", help="load the demo data (../shared/dicom) before serving")
    serve.add_argument("--demo-dir", dest="demo_dir", help="another folder of DICOM files to load with --demo")
    serve.add_argument("--no-dimse", action="store_true", help="HTTP only (extra API nodes behind a load balancer)")
    serve.add_argument("--workers", dest="workers", type=int,
                       help="processes for HTTP and DICOM (default 1; e.g. the number of cores)")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="create or upgrade the index schema")
    common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    load = sub.add_parser("load", help="import DICOM files or folders through the ingest path")
    common(load)
    load.add_argument("paths", nargs="+")
    load.set_defaults(func=cmd_load)

    check = sub.add_parser("fsck", help="verify every stored object against the index; --repair to fix")
    common(check)
    check.add_argument("--repair", action="store_true")
    check.add_argument("--copy-from", dest="copy_from", help="a blob tree (backup/mirror) to restore damaged blobs from")
    check.add_argument("--grace", type=float, default=3600.0, help="seconds before an orphan may be deleted")
    check.set_defaults(func=cmd_fsck)

    user = sub.add_parser("user", help="manage users")
    common(user)
    user.add_argument("action", choices=["create", "passwd"])
    user.add_argument("username")
    user.add_argument("--role", default="admin")
    user.add_argument("--password")
    user.set_defaults(func=cmd_user)

    token = sub.add_parser("token", help="API tokens for DICOMweb clients and integrations")
    common(token)
    token.add_argument("action", choices=["create", "revoke"])
    token.add_argument("--user", default=ADMIN)
    token.add_argument("--name", required=True)
    token.add_argument("--days", type=int, default=365)
    token.set_defaults(func=cmd_token)

    from yunying.gateway.commands import add_parser as add_gateway_parser

    add_gateway_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from yunying.logging import configure_logging

    configure_logging("WARNING" if args.command not in ("serve", "gateway") else "INFO")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
