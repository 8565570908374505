"""``yunying`` command line: serve, worker, migrate, load, fsck, user, token."""

from __future__ import annotations

import argparse
import contextlib
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
DEFAULT_INSTITUTION = "default"  # created by the schema migration; holds data loaded without an institution
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


def _generated_password() -> str:
    """A random password that meets the policy (three character classes, 16+ characters)."""
    return "Yy-" + secrets.token_urlsafe(12) + "9a"


def _ensure_admin(settings: Settings) -> str | None:
    """Create the first admin with a random password; return the password if created now."""
    from yunying.auth.credentials import create_user, institution_id, user_exists
    from yunying.compose import build_archive

    archive = build_archive(settings)
    try:
        if user_exists(archive.sessions, ADMIN):
            return None
        password = os.environ.get("YUNYING_ADMIN_PASSWORD_INIT") or _generated_password()
        # The first account can do everything (a demo and bootstrap convenience; split the duties with
        # separate accounts in production: docs/security.md).
        create_user(archive.sessions, ADMIN, password, "platform-admin,hospital-admin,radiologist,auditor",
                    institution=institution_id(archive.sessions, DEFAULT_INSTITUTION))
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
        summary = import_paths(archive.ingest, [Path(p) for p in args.paths],
                               _institution(archive, args.institution))
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


def cmd_downloads_purge(args: argparse.Namespace) -> int:
    """Delete the parts of expired downloads (also done whenever a download is made)."""
    from yunying.api.routes.downloads import service
    from yunying.compose import build_archive

    archive = build_archive(_settings(args))
    try:
        purged = service(archive).purge()
    finally:
        archive.close()
    _out(f"purged {purged} expired download(s)")
    return 0


def _institution(archive: Any, code: str) -> int:
    from yunying.auth.credentials import institution_id

    try:
        return institution_id(archive.sessions, code)
    except LookupError as exc:
        raise SystemExit(str(exc)) from exc


def cmd_user(args: argparse.Namespace) -> int:
    from yunying.auth.credentials import create_user, set_password
    from yunying.compose import build_archive

    archive = build_archive(_settings(args))
    password = args.password or os.environ.get("YUNYING_NEW_PASSWORD") or _generated_password()
    try:
        if args.action == "create":
            create_user(archive.sessions, args.username, password, args.roles,
                        institution=_institution(archive, args.institution), display_name=args.display_name or "")
        else:
            set_password(archive.sessions, args.username, password)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
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
            from yunying.auth.access import Permission

            scopes = [Permission(s.strip()) for s in args.scopes.split(",") if s.strip()] if args.scopes else None
            _out(create_token(archive.sessions, args.user, args.name, days=args.days, scopes=scopes))
        else:
            _out(f"revoked {revoke_token(archive.sessions, args.name)} token(s)")
    finally:
        archive.close()
    return 0


def cmd_institution(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from yunying.compose import build_archive
    from yunying.index.migrate import upgrade
    from yunying.index.models import Institution

    settings = _settings(args)
    upgrade(settings.effective_database_url)
    archive = build_archive(settings)
    try:
        with archive.sessions() as session:
            if args.action == "create":
                session.add(Institution(code=args.code, name=args.name or args.code, level=args.level or "",
                                        kind=args.kind or "", region=args.region or ""))
                session.commit()
                _out(f"institution {args.code} created")
            else:
                for inst in session.execute(select(Institution).order_by(Institution.code)).scalars():
                    _out(f"{inst.code}\t{inst.name}\t{inst.level}\t{inst.region}")
    finally:
        archive.close()
    return 0


def cmd_peer(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from yunying.auth.peers import add_peer, remove_peer
    from yunying.compose import build_archive
    from yunying.index.migrate import upgrade
    from yunying.index.models import DicomPeer

    settings = _settings(args)
    upgrade(settings.effective_database_url)
    archive = build_archive(settings)
    try:
        if args.action == "add":
            add_peer(archive.sessions, args.ae_title, args.host, _institution(archive, args.institution), args.roles,
                     port=args.port)
            _out(f"peer {args.ae_title}@{args.host} added")
        elif args.action == "remove":
            _out(f"removed {remove_peer(archive.sessions, args.ae_title, args.host)} peer(s)")
        else:
            with archive.sessions() as session:
                for peer in session.execute(select(DicomPeer).order_by(DicomPeer.ae_title)).scalars():
                    _out(f"{peer.ae_title}\t{peer.host}\t{peer.institution_fk}\t{peer.roles}")
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    finally:
        archive.close()
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from yunying.auth.audit import record
    from yunying.auth.grants import grant_study, revoke_grant
    from yunying.compose import build_archive
    from yunying.index.models import User

    archive = build_archive(_settings(args))
    try:
        if args.action == "create":
            to_user = None
            if args.to_user:
                with archive.sessions() as session:
                    to_user = session.execute(select(User.id).where(User.username == args.to_user)).scalar_one()
            to_institution = _institution(archive, args.to_institution) if args.to_institution else None
            grant_id = grant_study(archive.sessions, kind=args.kind, study_uid=args.study, granted_by=None,
                                   to_user=to_user, to_institution=to_institution, days=args.days, reason=args.reason or "")
            record(archive.sessions, actor="cli", action="grant", subject=args.study,
                   detail=f"grant {grant_id} ({args.kind}) to {args.to_user or args.to_institution}")
            _out(f"grant {grant_id}")
        else:
            ok = revoke_grant(archive.sessions, args.grant_id)
            record(archive.sessions, actor="cli", action="revoke-grant", subject=str(args.grant_id),
                   outcome="success" if ok else "not-found")
            _out("revoked" if ok else "no such active grant")
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    finally:
        archive.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from yunying.api.app import create_app
    from yunying.compose import build_archive, start_job_workers, stop_job_workers
    from yunying.dimse.server import start_dimse
    from yunying.index.migrate import upgrade
    from yunying.logging import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.demo:
        _demo_keys(settings)
        _demo_hl7(settings)
    upgrade(settings.effective_database_url)
    password = _ensure_admin(settings)
    archive = build_archive(settings)
    if args.demo:
        from yunying.archive.importer import import_paths

        source = Path(args.demo_dir) if args.demo_dir else DEMO_DATA
        if source.is_dir():
            _out(f"loading demo data from {source} …")
            _out(import_paths(archive.ingest, [source], _institution(archive, DEFAULT_INSTITUTION)).describe())
        else:
            _out(f"demo data folder {source} not found; starting empty")
    if args.demo:
        _demo_peer(archive)
    dimse = None if args.no_dimse else start_dimse(archive)
    hl7 = None if args.no_dimse else _start_hl7(archive, demo=args.demo)
    jobs = start_job_workers(archive)  # film sheets and other background work (0 with YUNYING_JOB_WORKERS=0)
    notifications = _start_notifications(archive)
    url = settings.effective_public_url
    _out(f"Yunying archive is up: web {url}/  viewer {url}/viewer  DICOMweb {url}/dicom-web  API docs {url}/docs")
    if dimse is not None:
        _out(f"DICOM: AE {settings.ae_title} at {settings.dicom_host}:{settings.dicom_port}")
    if hl7 is not None:
        _out(f"HL7: ORU^R01 over MLLP at {settings.hl7_host}:{hl7.port}")
    if password:
        _out(f"login: {ADMIN} / {password}   (saved in {settings.data_dir / 'admin-password.txt'})")
    else:
        _out(f"login: {ADMIN} (password in {settings.data_dir / 'admin-password.txt'} or set with `yunying user passwd admin`)")
    if settings.workers > 1:
        try:
            return _serve_workers(settings, archive, dimse)
        finally:
            stop_job_workers(jobs)
    config = uvicorn.Config(create_app(archive), host=settings.http_host, port=settings.http_port,
                            log_level="warning", access_log=False, timeout_graceful_shutdown=5, **_tls(settings))
    server = uvicorn.Server(config)
    def _terminate(*_: Any) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _terminate)
    try:
        server.run()
    finally:
        stop_job_workers(jobs)
        if notifications is not None:
            notifications.stop()
        if hl7 is not None:
            hl7.stop()
        if dimse is not None:
            with contextlib.suppress(ValueError):  # pynetdicom may have forgotten the server already
                dimse.shutdown()
        archive.close()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run background jobs only (film sheets, …): for a separate process or node; several may run at once."""
    from yunying.compose import build_archive, start_job_workers, stop_job_workers
    from yunying.logging import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level)
    archive = build_archive(settings)
    count = args.threads if args.threads is not None else max(settings.job_workers, 1)
    stopping = {"now": False}

    def _terminate(*_: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    workers = start_job_workers(archive, count)
    _out(f"job worker: {count} thread(s)")
    try:
        while not stopping["now"]:
            time.sleep(0.5)
    finally:
        stop_job_workers(workers)
        archive.close()
    return 0
def _start_notifications(archive: Any) -> Any:
    """The thread delivering queued SMS / e-mail (yunying.notify); none without a field key (no recipients)."""
    from yunying.notify.service import NotificationWorker

    if archive.fields is None or archive.notifiers is None:
        return None
    return NotificationWorker(archive.sessions, archive.notifiers, archive.fields).start()


def _demo_keys(settings: Settings) -> None:
    """Demo only: field-encryption keys generated once into the data folder (mode 0600), so TOTP
    enrolment and encrypted patient fields work out of the box. Production keys come from the
    environment or a secret store (docs/security.md), never from a file beside the data."""
    if settings.field_key:
        return
    path = settings.data_dir / "demo-keys.json"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(json.dumps({"field_key": secrets.token_hex(32), "field_hash_key": secrets.token_hex(32)}))
    keys = json.loads(path.read_text())
    settings.field_key, settings.field_hash_key = keys["field_key"], keys["field_hash_key"]
    _out(f"demo: field-encryption keys from {path} (set YUNYING_FIELD_KEY / YUNYING_FIELD_HASH_KEY in production)")


def _demo_hl7(settings: Settings) -> None:
    """Demo only: the HL7 listener on 2575 taking reports from any sending facility for the default institution."""
    if not settings.hl7_port:
        settings.hl7_port = 2575
    if not settings.hl7_facilities:
        settings.hl7_facilities = {"*": DEFAULT_INSTITUTION}


def _start_hl7(archive: Any, *, demo: bool) -> Any:
    """The HL7 MLLP listener when ``hl7_port`` is set; a port in use fails start-up (demo: a warning)."""
    from yunying.reports.mllp import Hl7Listener

    settings = archive.settings
    if not settings.hl7_port:
        return None
    try:
        return Hl7Listener(archive.sessions, settings.hl7_facilities, settings.hl7_host, settings.hl7_port).start()
    except OSError as exc:
        if not demo:
            raise SystemExit(f"HL7 listener: cannot listen on {settings.hl7_host}:{settings.hl7_port}: {exc}") from exc
        _out(f"demo: HL7 listener not started ({settings.hl7_host}:{settings.hl7_port}: {exc.strerror})")
        return None


def _demo_peer(archive: Any) -> None:
    """Demo only: let any AE title on this machine store and query as the default institution."""
    from sqlalchemy import select

    from yunying.auth.peers import add_peer
    from yunying.index.models import DicomPeer

    with archive.sessions() as session:
        if session.execute(select(DicomPeer.id).limit(1)).first() is not None:
            return
    add_peer(archive.sessions, "*", "127.0.0.1", _institution(archive, DEFAULT_INSTITUTION), "technician")
    _out("demo: DICOM peers on 127.0.0.1 (any AE title) act for the default institution (yunying peer list)")


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

    worker = sub.add_parser("worker", help="run background jobs (film sheets, …) without serving")
    common(worker)
    worker.add_argument("--threads", type=int, help="worker threads (default: YUNYING_JOB_WORKERS, at least 1)")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="create or upgrade the index schema")
    common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    load = sub.add_parser("load", help="import DICOM files or folders through the ingest path")
    common(load)
    load.add_argument("paths", nargs="+")
    load.add_argument("--institution", default=DEFAULT_INSTITUTION, help="code of the institution the data belongs to")
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
    user.add_argument("--roles", default="radiologist", help="comma-separated: " + ", ".join(
        ["platform-admin", "hospital-admin", "radiologist", "reviewing-radiologist", "clinician", "technician",
         "consultation-coordinator", "expert", "auditor", "gateway", "integration"]))
    user.add_argument("--institution", default=DEFAULT_INSTITUTION, help="institution code")
    user.add_argument("--display-name", dest="display_name")
    user.add_argument("--password")
    user.set_defaults(func=cmd_user)

    token = sub.add_parser("token", help="API tokens for DICOMweb clients and integrations")
    common(token)
    token.add_argument("action", choices=["create", "revoke"])
    token.add_argument("--user", default=ADMIN)
    token.add_argument("--name", required=True)
    token.add_argument("--days", type=int, default=365)
    token.add_argument("--scopes", help="comma-separated permissions the token is limited to (e.g. study:store,gateway:report)")
    token.set_defaults(func=cmd_token)

    institution = sub.add_parser("institution", help="hospitals and other institutions (data owners)")
    common(institution)
    institution.add_argument("action", choices=["create", "list"])
    institution.add_argument("code", nargs="?")
    institution.add_argument("--name")
    institution.add_argument("--level")
    institution.add_argument("--kind")
    institution.add_argument("--region")
    institution.set_defaults(func=cmd_institution)

    peer = sub.add_parser("peer", help="DICOM peers (AE title + address) allowed to associate, per institution")
    common(peer)
    peer.add_argument("action", choices=["add", "remove", "list"])
    peer.add_argument("ae_title", nargs="?", help="AE title, or * for any title from the host")
    peer.add_argument("--host", default="127.0.0.1", help="address or CIDR network")
    peer.add_argument("--institution", default=DEFAULT_INSTITUTION)
    peer.add_argument("--roles", default="technician")
    peer.add_argument("--port", type=int)
    peer.set_defaults(func=cmd_peer)

    grant = sub.add_parser("grant", help="explicit cross-institution access to a study")
    common(grant)
    grant.add_argument("action", choices=["create", "revoke"])
    grant.add_argument("--kind", default="consultation")
    grant.add_argument("--study", help="Study Instance UID")
    grant.add_argument("--to-user", dest="to_user")
    grant.add_argument("--to-institution", dest="to_institution")
    grant.add_argument("--days", type=float)
    grant.add_argument("--reason")
    grant.add_argument("--id", dest="grant_id", type=int)
    grant.set_defaults(func=cmd_grant)

    downloads = sub.add_parser("downloads", help="study downloads (encrypted ZIP parts)")
    downloads_sub = downloads.add_subparsers(dest="downloads_command", required=True)
    purge = downloads_sub.add_parser("purge", help="delete the parts of expired downloads (run periodically, e.g. hourly)")
    purge.add_argument("--data-dir", dest="data_dir", type=Path)
    purge.set_defaults(func=cmd_downloads_purge)

    from yunying.gateway.commands import add_parser as add_gateway_parser

    add_gateway_parser(sub)
    from yunying.audit_commands import add_parser as add_audit_parser

    add_audit_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from yunying.logging import configure_logging

    configure_logging("WARNING" if args.command not in ("serve", "gateway", "worker") else "INFO")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
