"""``yunying gateway [run|status|pull|backfill|reconcile|retry-failed]``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from yunying.gateway.settings import GatewaySettings


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def load_settings(args: argparse.Namespace) -> GatewaySettings:
    overrides = {name: getattr(args, name, None) for name in ("data_dir", "dicom_port", "ae_title", "name")}
    try:
        return GatewaySettings.load(args.config, dict(os.environ), **overrides)
    except ValueError as exc:
        raise SystemExit(f"gateway configuration: {exc}") from exc


def cmd_run(args: argparse.Namespace) -> int:
    from yunying.gateway.service import Gateway
    from yunying.logging import configure_logging

    settings = load_settings(args)
    configure_logging(settings.log_level)
    gateway = Gateway(settings)
    stopping = False

    def _terminate(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    gateway.start()
    status_server = None
    if settings.status_port:
        from yunying.gateway.statuspage import serve_status

        status_server = serve_status(gateway, settings.status_port)
    _out(f"Yunying gateway {settings.name}: DICOM AE {settings.ae_title} at {settings.dicom_host}:{settings.dicom_port}"
         + (f", status http://127.0.0.1:{settings.status_port}/" if settings.status_port else ""))
    try:
        while not stopping:
            time.sleep(0.5)
    finally:
        if status_server is not None:
            status_server.should_exit = True
        gateway.stop()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from yunying.gateway.status import read_status, render_text

    settings = load_settings(args)
    try:
        status = read_status(settings)
    except FileNotFoundError as exc:
        _out(str(exc))
        return 1
    _out(json.dumps(status, ensure_ascii=False, indent=2) if args.json else render_text(status))
    return 0


def _submit(args: argparse.Namespace, kind: str, job_args: dict[str, Any]) -> int:
    """Hand a job to the running gateway (through its queue database) and wait for the result."""
    from yunying.gateway.spool import Spool

    settings = load_settings(args)
    spool = Spool(settings.queue_db, settings.spool_dir, budget_bytes=settings.disk_budget_bytes)
    try:
        job_id = spool.submit_job(kind, json.dumps(job_args))
        if not args.wait:
            _out(f"job {job_id} submitted")
            return 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            state = spool.job(job_id)
            if state and state[0] in ("done", "error"):
                _out(state[1] or "")
                return 0 if state[0] == "done" else 1
            time.sleep(0.5)
        _out(f"job {job_id} still running (is the gateway running?)")
        return 2
    finally:
        spool.close()


def cmd_pull(args: argparse.Namespace) -> int:
    return _submit(args, "pull", {"days": args.days, "accessions": args.accession or [], "modalities": args.modality or [],
                                  "all": args.all})


def cmd_backfill(args: argparse.Namespace) -> int:
    return _submit(args, "backfill", {"from": args.date_from.isoformat(), "to": args.date_to.isoformat()})


def cmd_reconcile(args: argparse.Namespace) -> int:
    return _submit(args, "reconcile", {"days": args.days, "until": args.until.isoformat() if args.until else None})


def cmd_retry_failed(args: argparse.Namespace) -> int:
    return _submit(args, "retry-failed", {})


def add_parser(sub: Any) -> None:
    gateway = sub.add_parser("gateway", help="the edge gateway (前置机): receive at the hospital, upload to the cloud")

    def common(p: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
        # Actions take the same options; SUPPRESS keeps an action's parser from overwriting a value given
        # before the action (``yunying gateway --config F status``).
        p.add_argument("--config", type=Path, default=default, help="gateway TOML file (keys as in docs/gateway.md)")
        p.add_argument("--data-dir", dest="data_dir", type=Path, default=default)
        p.add_argument("--name", dest="name", default=default, help="gateway id seen by the cloud")

    common(gateway, default=None)
    gateway.add_argument("--dicom-port", dest="dicom_port", type=int)
    gateway.add_argument("--ae-title", dest="ae_title")
    gateway.set_defaults(func=cmd_run)
    actions = gateway.add_subparsers(dest="action")

    run = actions.add_parser("run", help="run the gateway (the default)")
    common(run)
    run.add_argument("--dicom-port", dest="dicom_port", type=int, default=argparse.SUPPRESS)
    run.add_argument("--ae-title", dest="ae_title", default=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    status = actions.add_parser("status", help="queue depth per lane, oldest item, throughput, errors, disk")
    common(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    def job(p: argparse.ArgumentParser) -> None:
        common(p)
        p.add_argument("--no-wait", dest="wait", action="store_false", help="submit and return")
        p.add_argument("--timeout", type=float, default=3600.0)

    pull = actions.add_parser("pull", help="pull recent exams or accession numbers from the PACS")
    job(pull)
    pull.add_argument("--days", type=int, default=1)
    pull.add_argument("--accession", action="append")
    pull.add_argument("--modality", action="append")
    pull.add_argument("--all", action="store_true", help="every study the PACS has (a universal C-FIND)")
    pull.set_defaults(func=cmd_pull)

    backfill = actions.add_parser("backfill", help="backfill history day by day inside backfill_window")
    job(backfill)
    backfill.add_argument("--from", dest="date_from", type=date.fromisoformat, required=True)
    backfill.add_argument("--to", dest="date_to", type=date.fromisoformat, required=True)
    backfill.set_defaults(func=cmd_backfill)

    reconcile = actions.add_parser("reconcile", help="compare PACS and cloud per day; re-send what is missing")
    job(reconcile)
    reconcile.add_argument("--days", type=int, default=7)
    reconcile.add_argument("--until", type=date.fromisoformat, help="last day to check (default today)")
    reconcile.set_defaults(func=cmd_reconcile)

    retry = actions.add_parser("retry-failed", help="queue again what the cloud refused")
    job(retry)
    retry.set_defaults(func=cmd_retry_failed)
