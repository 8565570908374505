"""Yunying's ingest path in-process, without HTTP or DIMSE: CPU per instance, by phase, and SQL per instance.

    .venv/bin/python -m bench.ingest_breakdown [--db sqlite|postgresql] [-n 300]

Calls ``Ingest.store_instance`` (the one durable ingest path) directly, on a fresh archive, for CT
slices and for 1 KB instances; counts SQL statements and transactions with SQLAlchemy events and
times the phases with cProfile (parse, SHA-256, blob put + fsync, index transaction). Read-only use of
the yunying package: nothing in it is changed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.data import fresh_copy, source_files, tiny_corpus
from bench.run_all import DEFAULT_CACHE
from bench.servers import fresh_pg_name, pg_create, pg_drop, pg_url
from yunying.auth.credentials import institution_id
from yunying.compose import build_archive
from yunying.index.migrate import upgrade
from yunying.settings import Settings

# phases: label → cumulative time computed from cProfile totals of (function, file suffix)
PHASES = [
    "parse + validate (pydicom)",
    "duplicate check before the write (find_instance in its own session)",
    "SHA-256 of the received bytes",
    "blob put (temporary file, write, fsync, rename, fsync directory)",
    "index transaction (BEGIN, find_instance, add_instance, COMMIT)",
    "  of which add_instance (SQLAlchemy statements)",
]


def _cumtime(stats: pstats.Stats, name: str, suffix: str) -> float:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    return sum(v[3] for (file, _line, func), v in raw.items() if func == name and file.endswith(suffix))


def run(db: str, instances: list[bytes], label: str) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="yunying-breakdown-"))
    pg_name = fresh_pg_name("bench_breakdown") if db == "postgresql" else None
    try:
        url = ""
        if pg_name:
            pg_create(pg_name)
            url = pg_url(pg_name).replace("postgresql://", "postgresql+psycopg://", 1)
        settings = Settings(data_dir=work, database_url=url)
        upgrade(settings.effective_database_url)
        archive = build_archive(settings)
        counts = {"statements": 0, "commits": 0, "rollbacks": 0}

        @event.listens_for(archive.engine, "before_cursor_execute")
        def _stmt(*_: Any) -> None:
            counts["statements"] += 1

        @event.listens_for(archive.engine, "commit")
        def _commit(*_: Any) -> None:
            counts["commits"] += 1

        @event.listens_for(archive.engine, "rollback")
        def _rollback(*_: Any) -> None:
            counts["rollbacks"] += 1

        institution = institution_id(archive.sessions, "default")
        archive.ingest.store_instance(instances[0], origin="bench", institution_id=institution)  # creates patient/study/series
        for k in counts:
            counts[k] = 0
        n = len(instances) - 1
        half = 1 + n // 2
        start_cpu, start = time.process_time(), time.perf_counter()
        for data in instances[1:half]:  # unprofiled: the real cost
            result = archive.ingest.store_instance(data, origin="bench", institution_id=institution)
            assert result.ok, result.reason
        cpu, wall = (time.process_time() - start_cpu) / (half - 1), (time.perf_counter() - start) / (half - 1)
        profiler = cProfile.Profile()
        profiler.enable()
        for data in instances[half:]:  # profiled: where it goes (cProfile inflates Python-heavy phases)
            result = archive.ingest.store_instance(data, origin="bench", institution_id=institution)
            assert result.ok, result.reason
        profiler.disable()
        stats = pstats.Stats(profiler)
        archive.close()
        size = sum(map(len, instances[1:])) / n / 1024
        lines = [f"### {label}, {db} — {n} instances of {size:.0f} KiB", "",
                 f"- unprofiled: wall {wall * 1000:.2f} ms/instance ({1 / wall:.0f} instances/s on one thread, no HTTP or "
                 f"DIMSE), process CPU {cpu * 1000:.2f} ms/instance",
                 f"- SQL per instance: {counts['statements'] / n:.1f} statements (incl. BEGIN on SQLite), "
                 f"{counts['commits'] / n:.1f} commits, {counts['rollbacks'] / n:.1f} rollbacks (read-only sessions end "
                 "in a rollback)", "",
                 "| phase | share of store_instance (cProfile) | ≈ ms/instance (share × unprofiled wall) |", "|---|---|---|"]
        cum = {(f, sfx): _cumtime(stats, f, sfx) for f, sfx in (
            ("store_instance", "archive/ingest.py"), ("parse_instance", "dicom/parse.py"), ("_persist", "archive/ingest.py"),
            ("checksum", "storage/base.py"), ("put", "storage/filesystem.py"), ("add_instance", "index/repository.py"))}
        total = cum[("store_instance", "archive/ingest.py")]
        persist = cum[("_persist", "archive/ingest.py")]
        values = [
            cum[("parse_instance", "dicom/parse.py")],
            total - cum[("parse_instance", "dicom/parse.py")] - persist,
            cum[("checksum", "storage/base.py")],
            cum[("put", "storage/filesystem.py")],
            persist - cum[("checksum", "storage/base.py")] - cum[("put", "storage/filesystem.py")],
            cum[("add_instance", "index/repository.py")],
        ]
        for phase, value in zip(PHASES, values, strict=True):
            lines.append(f"| {phase} | {value / total:.0%} | {value / total * wall * 1000:.2f} |")
        lines.append("")
        return lines
    finally:
        if pg_name:
            pg_drop(pg_name)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest_breakdown", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("-n", type=int, default=300, help="instances per case (default 300)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = p.parse_args(argv)
    ct = [f.read_bytes() for f in fresh_copy(source_files("synthetic", args.cache_dir, 500), args.cache_dir,
                                             "synthetic500-breakdown").files[:args.n + 1]]
    small = tiny_corpus(args.n + 1, seed=97).instances[:args.n + 1]
    lines = ["## Ingest path in-process (Ingest.store_instance)", ""]
    for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        lines += run(db, ct, "CT slice")
        lines += run(db, small, "1 KB instance")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
