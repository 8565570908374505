"""``yunying audit verify`` and ``yunying audit export``: the audit trail from the command line.

Both read the trail and are therefore audited themselves (actions ``audit-verify``, ``audit-read``;
actor ``cli:<operating-system user>``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from yunying.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    unknown = Settings.unknown_environment(dict(os.environ))
    if unknown:
        raise SystemExit(f"unknown setting(s) in the environment: {', '.join(unknown)} (see docs/operate.md)")
    return Settings(data_dir=args.data_dir) if args.data_dir else Settings()


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (containers)
        return f"cli:uid-{os.getuid()}"


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _anchor(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
        raise argparse.ArgumentTypeError(f"an anchor is SEQ:HASH (64 hex digits), not {text!r}")
    return int(seq), digest.lower()


def _moment(text: str) -> datetime:
    """ISO 8601 date or date-time; without a zone it is this machine's local time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or date-time: {text!r}") from exc
    return moment if moment.tzinfo is not None else moment.astimezone()


def cmd_verify(args: argparse.Namespace) -> int:
    from yunying.auth.audit import record
    from yunying.auth.audit_verify import verify_chain
    from yunying.compose import build_archive

    archive = build_archive(_settings(args))
    try:
        report = verify_chain(archive.sessions, anchors=dict(args.anchor or []))
        record(archive.sessions, actor=_operator(), action="audit-verify", subject="audit-trail",
               outcome="success" if report.ok else "broken", detail=report.describe()[:4000])
    finally:
        archive.close()
    _out(report.describe())
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from yunying.auth.audit import AuditFilter, count, iter_entries, record
    from yunying.auth.audit_export import MAX_XLSX_ROWS, csv_chunks, write_xlsx
    from yunying.compose import build_archive

    if args.format == "xlsx" and args.output in (None, "-"):
        raise SystemExit("an xlsx export needs -o FILE")
    flt = AuditFilter(args.start, args.end, args.actor, args.action, args.subject, args.outcome, args.institution)
    archive = build_archive(_settings(args))
    try:
        total = count(archive.sessions, flt)
        if args.format == "xlsx" and total > MAX_XLSX_ROWS:
            raise SystemExit(f"{total} entries match; a worksheet holds {MAX_XLSX_ROWS}: narrow the range or use csv")
        record(archive.sessions, actor=_operator(), action="audit-read", subject="audit-trail",
               detail=f"export {args.format} {flt.describe()}: {total}")
        entries = iter_entries(archive.sessions, flt)
        if args.format == "xlsx":
            with Path(args.output).open("wb") as target:
                write_xlsx(entries, target)
        elif args.output in (None, "-"):
            for chunk in csv_chunks(entries):
                sys.stdout.write(chunk)
            sys.stdout.flush()
        else:
            with Path(args.output).open("w", encoding="utf-8", newline="") as text:
                text.writelines(csv_chunks(entries))
    finally:
        archive.close()
    if args.output not in (None, "-"):
        _out(f"{total} entries written to {args.output}")
    return 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("audit", help="verify the audit trail's hash chain; export it for auditors")
    actions = parser.add_subparsers(dest="audit_action", required=True)

    verify = actions.add_parser("verify", help="check every entry's hash and link; exit 1 naming the first broken seq")
    verify.add_argument("--data-dir", dest="data_dir", type=Path)
    verify.add_argument("--anchor", action="append", type=_anchor, metavar="SEQ:HASH",
                        help="a head printed by an earlier run (kept outside the database); repeatable")
    verify.set_defaults(func=cmd_verify)

    export = actions.add_parser("export", help="entries as CSV or Excel, oldest first")
    export.add_argument("--data-dir", dest="data_dir", type=Path)
    export.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    export.add_argument("--from", dest="start", type=_moment, help="at or after (ISO 8601; local time without a zone)")
    export.add_argument("--to", dest="end", type=_moment, help="before (ISO 8601; local time without a zone)")
    export.add_argument("--actor")
    export.add_argument("--action")
    export.add_argument("--subject", help="a study UID or query description")
    export.add_argument("--outcome")
    export.add_argument("--institution", help="the actor's institution code")
    export.add_argument("-o", "--output", help="file to write (csv: default standard output)")
    export.set_defaults(func=cmd_export)
