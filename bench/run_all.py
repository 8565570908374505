"""Yunying vs Orthanc, side by side on this machine, same data, same run.

    .venv/bin/python -m bench.run_all [--quick] [--db sqlite|postgresql|both]

Rows: C-STORE (dcmtk storescu, 1 and 4 associations), STOW-RS (httpx, batches of 50, 1 and 4
clients), STOW-RS of small instances, QIDO-RS study search p50/p95 over a large index, WADO-RS
retrieval of a 500-image CT series. Each with a SQLite and a PostgreSQL index on both sides.
Prints a Markdown table and writes it to bench/results/<timestamp>.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shutil
import signal
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import qido, wado
from bench.cstore import cstore
from bench.data import Series, fresh_copy, source_files, tiny_corpus
from bench.servers import Target, cpu_seconds, machine_info, orthanc, pg_drop, pg_exists, yunying
from bench.stow import IngestResult, stow

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "yunying-bench"
DB_TITLE = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class Cell:
    value: float  # the number the ratio is computed on
    text: str  # what the table shows
    detail: str = ""


@dataclass
class Row:
    key: str
    label: str
    higher_is_better: bool
    target: float | None  # the goal for Yunying ÷ Orthanc (advantage factor); None: an absolute goal
    target_text: str = ""
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)  # (db, product) → cell

    def advantage(self, db: str) -> float | None:
        y, o = self.cells.get((db, "Yunying")), self.cells.get((db, "Orthanc"))
        if not y or not o or not y.value or not o.value or math.isnan(y.value) or math.isnan(o.value):
            return None
        return y.value / o.value if self.higher_is_better else o.value / y.value


@dataclass
class Report:
    rows: dict[str, Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def row(self, key: str, label: str, higher_is_better: bool, target: float | None = 1.0, target_text: str = "") -> Row:
        if key not in self.rows:
            self.rows[key] = Row(key, label, higher_is_better, target, target_text)
        return self.rows[key]


@dataclass
class Config:
    quick: bool
    dbs: list[str]
    cache: Path
    work: Path
    ingest_source: str  # "synthetic" | "tcia"
    ingest_slices: int
    wado_slices: int
    wado_runs: int
    small_instances: int
    qido_instances: int
    qido_per_type: int
    fill_budget_s: float


# ------------------------------------------------------------------------------------------ helpers


def _measure(target: Target, fn: Callable[[], IngestResult]) -> tuple[IngestResult, float]:
    """Run ``fn`` and also return the server's CPU seconds spent meanwhile (own process only)."""
    before = cpu_seconds(target.pid)
    result = fn()
    return result, cpu_seconds(target.pid) - before


def _ingest_cell(r: IngestResult, cpu: float, expected_total: int, actual_total: int) -> Cell:
    ok = r.failed == 0 and actual_total == expected_total
    text = f"{r.rate:.1f}/s · {r.mb_s:.1f} MB/s" + ("" if ok else " ⚠")
    detail = (f"{r.instances} instances, {r.nbytes / 1e6:.1f} MB in {r.seconds:.2f} s; server CPU "
              f"{cpu * 1000 / max(r.instances, 1):.1f} ms/instance; failed {r.failed}; "
              f"index holds {actual_total} (expected {expected_total})")
    return Cell(r.rate, text, detail)


def _pair(y: Target, o: Target, i: int) -> list[Target]:
    """Alternate who goes first, so drifting background load does not always favour the same side."""
    return [y, o] if i % 2 == 0 else [o, y]


# ------------------------------------------------------------------------------- ingest + retrieval


def ingest_and_retrieve(cfg: Config, db: str, report: Report) -> None:
    """Fresh servers; C-STORE ×1/×4, STOW-RS ×1/×4, small-instance STOW, then WADO-RS of the 500-image series."""
    src = source_files(cfg.ingest_source, cfg.cache, cfg.ingest_slices)
    tag = f"{cfg.ingest_source}{len(src)}"
    copies = {name: fresh_copy(src, cfg.cache, f"{tag}-{name}") for name in ("cstore1", "cstore4", "stow1", "stow4")}
    wado_series: Series = copies["cstore1"]
    extra_wado = cfg.ingest_source != "synthetic" or cfg.ingest_slices != cfg.wado_slices
    if extra_wado:
        wado_series = fresh_copy(source_files("synthetic", cfg.cache, cfg.wado_slices), cfg.cache,
                                 f"synthetic{cfg.wado_slices}-wado")
    small = tiny_corpus(cfg.small_instances, seed=99).instances[:cfg.small_instances]
    what = f"{len(src)}-slice {'TCIA' if cfg.ingest_source == 'tcia' else 'synthetic'} CT"
    stow_bodies = {name: copies[name].read_all() for name in ("stow1", "stow4")}

    rows = [
        ("cstore1", f"C-STORE {what}, 1 association (storescu)", lambda t: cstore(t, copies["cstore1"].files, 1)),
        ("cstore4", f"C-STORE {what}, 4 parallel associations", lambda t: cstore(t, copies["cstore4"].files, 4)),
        ("stow1", f"STOW-RS {what}, 1 client, 50/request", lambda t: stow(t, stow_bodies["stow1"], 50, 1)),
        ("stow4", f"STOW-RS {what}, 4 clients, 50/request", lambda t: stow(t, stow_bodies["stow4"], 50, 4)),
        ("stow_small", f"STOW-RS {cfg.small_instances:,} small instances (1 KB, 8×8), 4 clients, 100/request",
         lambda t: stow(t, small, 100, 4)),
    ]
    ws = cfg.work / db
    with yunying(ws / "yunying", db) as y, orthanc(ws / "orthanc", db) as o:
        expected = {"Yunying": 0, "Orthanc": 0}
        for i, (key, label, fn) in enumerate(rows):
            row = report.row(key, label, higher_is_better=True, target=2.0 if key.startswith("stow") else 1.0)
            for t in _pair(y, o, i):
                result, cpu = _measure(t, lambda t=t, fn=fn: fn(t))  # type: ignore[misc]
                expected[t.product] += result.instances
                actual = t.instance_count()
                row.cells[(db, t.product)] = _ingest_cell(result, cpu, expected[t.product], actual)
                print(f"  {DB_TITLE[db]:10} {t.product:7} {key:10} {row.cells[(db, t.product)].text}", flush=True)
        if extra_wado:
            for t in (y, o):
                stow(t, wado_series.read_all(), 50, 4)
        retrieve_series(cfg, db, report, y, o, wado_series)


def retrieve_series(cfg: Config, db: str, report: Report, y: Target, o: Target, series: Series) -> None:
    n = len(series.files)
    row = report.row("wado", f"WADO-RS {n}-image CT series ({series.nbytes / 1e6:.0f} MB), as stored, "
                             f"median of {cfg.wado_runs}", higher_is_better=False, target=2.0)
    for t in (y, o):
        problem = wado.verify(t, series.study_uid, series.series_uid, n)
        if problem:
            report.notes.append(f"{t.product}/{db}: WADO-RS check failed: {problem}")
    runs: dict[str, list[wado.Retrieval]] = {"Yunying": [], "Orthanc": []}
    cpu = {"Yunying": 0.0, "Orthanc": 0.0}
    for i in range(cfg.wado_runs):
        for t in _pair(y, o, i):
            before = cpu_seconds(t.pid)
            runs[t.product].append(wado.retrieve(t, series.study_uid, series.series_uid))
            cpu[t.product] += cpu_seconds(t.pid) - before
    # the goal: the series "well under 6 s on 1 Gbit/s"; one run each with curl throttled to 1 Gbit/s
    slow = report.row("wado_1g", f"WADO-RS same series, client throttled to 1 Gbit/s ({wado.GIGABIT / 1e6:.0f} MB/s), 1 run",
                      higher_is_better=False, target=None, target_text="< 6 s")
    for t in (y, o):
        r = wado.retrieve(t, series.study_uid, series.series_uid, limit_rate=wado.GIGABIT)
        slow.cells[(db, t.product)] = Cell(r.seconds, f"{r.seconds:.2f} s {'✓' if r.seconds < 6 else '✗'}")
    for product, values in runs.items():
        secs = statistics.median(r.seconds for r in values)
        mb_s = statistics.median(r.mb_s for r in values)
        ttfb = statistics.median(r.ttfb for r in values)
        row.cells[(db, product)] = Cell(secs, f"{secs:.2f} s · {mb_s:.0f} MB/s", (
            f"runs {', '.join(f'{r.seconds:.2f}' for r in values)} s; first byte after {ttfb * 1000:.0f} ms (median); "
            f"{values[0].nbytes / 1e6:.1f} MB per run; server CPU {cpu[product] / len(values):.2f} s per run"))
        print(f"  {DB_TITLE[db]:10} {product:7} wado       {row.cells[(db, product)].text}", flush=True)


# -------------------------------------------------------------------------------------------- QIDO


def qido_pg_name(cfg: Config, product: str) -> str:
    """The cached QIDO database of ``product``: bench_qido_yunying / bench_qido_orthanc for the default
    cache folder, with a suffix derived from the folder for any other (so caches never share a database)."""
    folder = cfg.cache.resolve()
    suffix = "" if folder == DEFAULT_CACHE.resolve() else "_" + hashlib.sha1(str(folder).encode()).hexdigest()[:8]
    return f"bench_qido_{product.lower()}{suffix}"


def qido_dirs(cfg: Config, product: str, db: str) -> tuple[Path, Path]:
    base = cfg.cache / "qido"
    return base / f"{product.lower()}-{db}", base / f"{product.lower()}-{db}.json"


def reset_qido(cfg: Config, db: str) -> None:
    for product in ("Yunying", "Orthanc"):
        data, state = qido_dirs(cfg, product, db)
        shutil.rmtree(data, ignore_errors=True)
        state.unlink(missing_ok=True)
        if db == "postgresql":
            pg_drop(qido_pg_name(cfg, product))


def _cached_state(cfg: Config, product: str, db: str, pg_name: str | None) -> qido.FillState:
    """The fill state of a cached QIDO server; a partial cache (folder, state or database missing) starts over."""
    data, state_path = qido_dirs(cfg, product, db)
    state = qido.FillState.load(state_path, seed=7)
    complete = data.exists() and state_path.exists() and (pg_name is None or pg_exists(pg_name))
    if not complete or state.sent == 0:
        shutil.rmtree(data, ignore_errors=True)
        if pg_name:
            pg_drop(pg_name)
        state = qido.FillState(state_path, 0, 7)
    return state


def search(cfg: Config, db: str, report: Report, *, fill_only: bool = False) -> None:
    """Cached servers with the tiny corpus; top both up to the same count; then the query mix."""
    corpus = tiny_corpus(cfg.qido_instances)
    pg = {p: qido_pg_name(cfg, p) if db == "postgresql" else None for p in ("Yunying", "Orthanc")}
    ystate, ostate = (_cached_state(cfg, product, db, pg[product]) for product in ("Yunying", "Orthanc"))
    ydata, odata = qido_dirs(cfg, "Yunying", db)[0], qido_dirs(cfg, "Orthanc", db)[0]
    with yunying(ydata, db, pg_name=pg["Yunying"], keep=True) as y, orthanc(odata, db, pg_name=pg["Orthanc"], keep=True) as o:
        # Yunying first; Orthanc never gets more than Yunying has, so both indexes hold the same instances
        ys = qido.top_up(y, corpus, ystate, cfg.qido_instances, cfg.fill_budget_s)
        os_ = qido.top_up(o, corpus, ostate, min(ystate.sent, cfg.qido_instances), cfg.fill_budget_s)
        for product, res in (("Yunying", ys), ("Orthanc", os_)):
            if res and res.instances:
                filled = report.row("fill", "STOW-RS fill of the QIDO index (1 KB instances, 4 clients, 100/request)", True, None)
                filled.cells[(db, product)] = Cell(res.rate, f"{res.rate:.0f}/s", f"{res.instances:,} instances this run")
        counts = {"Yunying": y.instance_count(), "Orthanc": o.instance_count()}
        print(f"  {DB_TITLE[db]:10} QIDO index: Yunying {counts['Yunying']:,} / Orthanc {counts['Orthanc']:,} instances",
              flush=True)
        if fill_only:
            return
        n = min(counts.values())
        short = "" if n >= 100_000 else " — fewer than the 100,000 target" + (" (--quick)" if cfg.quick else "")
        if counts["Yunying"] != counts["Orthanc"]:
            report.notes.append(f"{DB_TITLE[db]}: QIDO index sizes differ: Yunying {counts['Yunying']:,}, "
                                f"Orthanc {counts['Orthanc']:,} instances")
        queries = qido.query_mix(corpus, min(ystate.sent, ostate.sent), cfg.qido_per_type)
        lat, mismatches = qido.run_queries([y, o], queries)
    p50 = report.row("qido_p50", f"QIDO-RS study search p50, {len(queries)} queries, limit=100, index of "
                                 f"{n:,} instances", False)
    p95 = report.row("qido_p95", "QIDO-RS study search p95", False)
    # the label names the index size of the first back-end; say so in the cell when it differs or is short
    flag = " ⚠ < 100,000" if short else ""
    for product in ("Yunying", "Orthanc"):
        size = f" ({counts[product]:,} inst.)" if f"index of {counts[product]:,} " not in p50.label else ""
        s = qido.summary(lat[product])
        p50.cells[(db, product)] = Cell(s["p50"], f"{s['p50']:.1f} ms{size}{flag}", f"over {counts[product]:,} instances{short}")
        p95.cells[(db, product)] = Cell(s["p95"], f"{s['p95']:.1f} ms")
        kinds = "; ".join(f"{k}: {statistics.median(v):.1f}/{qido.percentile(v, 0.95):.1f} ms"
                          for k, v in lat[product].by_kind.items() if v)
        report.details.append(f"QIDO {DB_TITLE[db]} {product} (p50/p95 per query type): {kinds}; "
                              f"mean {s['mean_results']:.1f} results/query; errors {lat[product].errors}")
        print(f"  {DB_TITLE[db]:10} {product:7} qido       p50 {s['p50']:.1f} ms  p95 {s['p95']:.1f} ms", flush=True)
    report.details.append(f"QIDO {DB_TITLE[db]}: index of {counts['Yunying']:,} (Yunying) / {counts['Orthanc']:,} "
                          f"(Orthanc) instances; queries whose result counts differ between the two: {mismatches}")


# ------------------------------------------------------------------------------------------ output


def render(cfg: Config, info: dict[str, str], report: Report, elapsed: float) -> str:
    lines = [f"# Yunying vs Orthanc — {info['date']}", ""]
    mode = "--quick" if cfg.quick else "full"
    lines.append(f"Mode: **{mode}**, databases: {', '.join(DB_TITLE[d] for d in cfg.dbs)}; run took {elapsed / 60:.1f} min.")
    lines.append("")
    lines.append("“Y÷O” is Yunying's advantage: its rate ÷ Orthanc's rate, or Orthanc's time ÷ Yunying's time "
                 "(> 1 means Yunying is better). ✓ meets the target of the issue, ✗ misses it.")
    lines.append("")
    header = ["Measurement"]
    for db in cfg.dbs:
        header += [f"{DB_TITLE[db]}: Yunying", f"{DB_TITLE[db]}: Orthanc", f"{DB_TITLE[db]}: Y÷O"]
    header.append("Target Y÷O")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    order = ["cstore1", "cstore4", "stow1", "stow4", "stow_small", "wado", "wado_1g", "qido_p50", "qido_p95", "fill"]
    for row in sorted(report.rows.values(), key=lambda r: order.index(r.key) if r.key in order else len(order)):
        cells = [row.label]
        for db in cfg.dbs:
            for product in ("Yunying", "Orthanc"):
                cell = row.cells.get((db, product))
                cells.append(cell.text if cell else "—")
            adv = row.advantage(db)
            mark = "" if row.target is None else " ✓" if adv is not None and adv >= row.target else " ✗"
            cells.append("—" if adv is None else f"{adv:.2f}×{mark}")
        cells.append(row.target_text or ("—" if row.target is None else f"≥ {row.target:g}×"))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Details", ""]
    for row in report.rows.values():
        for (db, product), cell in sorted(row.cells.items(), key=lambda kv: (cfg.dbs.index(kv[0][0]), kv[0][1] != "Yunying")):
            if cell.detail:
                lines.append(f"- {row.label} — {DB_TITLE[db]} {product}: {cell.detail}")
    lines += [f"- {d}" for d in report.details]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in info.items()]
    lines.append(f"- load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    lines += ["", "## Settings", ""]
    lines.append(f"- ingest series: {cfg.ingest_source} {cfg.ingest_slices if cfg.ingest_source == 'synthetic' else 134} "
                 f"slices; WADO series: synthetic {cfg.wado_slices} slices, {cfg.wado_runs} runs; small instances "
                 f"{cfg.small_instances:,}; QIDO target {cfg.qido_instances:,} instances, {cfg.qido_per_type} queries "
                 f"per type; fill budget {cfg.fill_budget_s:.0f} s per server and database")
    lines.append("- Yunying: `yunying serve`, filesystem blobs, HTTP Basic auth (cached after the first request); "
                 "Orthanc: /work/shared/peers/orthanc.sh (no auth, StorageCompression off). Both durable (fsync).")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=1, help="Yunying server processes (yunying serve --workers)")
    p.add_argument("--quick", action="store_true", help="smaller N: 134-slice TCIA series for ingest, 10k QIDO index")
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"generated data + QIDO index (default {DEFAULT_CACHE})")
    p.add_argument("--qido-instances", type=int, help="QIDO index size (default 100000; --quick 10000)")
    p.add_argument("--fill-budget", type=float, help="minutes per server and database to spend topping up the QIDO index "
                                                      "(default 2, --quick 1, --fill-only unlimited)")
    p.add_argument("--fill-only", action="store_true", help="only fill the cached QIDO index, no measurements")
    p.add_argument("--refill", action="store_true", help="throw the cached QIDO index away and start again")
    p.add_argument("--only", choices=["ingest", "qido"], help="run only one part")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for <timestamp>.md (default bench/results)")
    return p.parse_args(argv)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # stop cleanly (servers down, temporary databases dropped) on SIGTERM, and on SIGINT even when the
    # shell started us in the background with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = time.monotonic()
    os.environ["BENCH_YUNYING_WORKERS"] = str(args.workers)
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    work = Path(tempfile.mkdtemp(prefix="yunying-bench-"))
    default_budget = math.inf if args.fill_only else (1.0 if args.quick else 2.0)
    cfg = Config(
        quick=args.quick, dbs=dbs, cache=args.cache_dir, work=work,
        ingest_source="tcia" if args.quick else "synthetic", ingest_slices=500, wado_slices=500,
        wado_runs=5 if args.quick else 7, small_instances=1000 if args.quick else 2000,
        qido_instances=args.qido_instances or (10_000 if args.quick else 100_000),
        qido_per_type=25 if args.quick else 100,
        fill_budget_s=(args.fill_budget if args.fill_budget is not None else default_budget) * 60,
    )
    cfg.cache.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    print(f"Yunying vs Orthanc — {info['cpu']}, {info['nproc']} CPUs, load {info['load average at start']}", flush=True)
    report = Report()
    try:
        for db in dbs:
            if args.refill:
                reset_qido(cfg, db)
            print(f"[{DB_TITLE[db]}]", flush=True)
            for part, fn in (("ingest", ingest_and_retrieve), ("qido", search)):
                if (args.fill_only and part != "qido") or (args.only and args.only != part):
                    continue
                try:
                    if part == "qido":
                        search(cfg, db, report, fill_only=args.fill_only)
                    else:
                        fn(cfg, db, report)
                except Exception as exc:
                    traceback.print_exc()
                    report.notes.append(f"{DB_TITLE[db]} {part} failed: {type(exc).__name__}: {exc}")
                print(f"  … {(time.monotonic() - started) / 60:.1f} min so far", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.fill_only:
        return 0
    text = render(cfg, info, report, time.monotonic() - started)
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / (time.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "") + ".md")
    path.write_text(text)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
