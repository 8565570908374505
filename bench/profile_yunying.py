"""Where does a Yunying server spend its time? py-spy on a live ``yunying serve`` for each workload.

    .venv/bin/python -m bench.profile_yunying [--db sqlite|postgresql] [--py-spy PATH]

py-spy is not a project dependency: install it anywhere (``python3 -m venv /tmp/pyspy &&
/tmp/pyspy/bin/pip install py-spy``) and pass ``--py-spy /tmp/pyspy/bin/py-spy``.

Two samplings per workload: ``--gil`` (only the thread holding the GIL: Python CPU, the resource a
single uvicorn process is bound by) and active threads (also time in SQLite/psycopg, fsync, hashing,
which run without the GIL). The report lists, per workload, the share of samples in which each
Yunying function is on the stack (inclusive) and the hottest leaf functions, plus "GIL busy": GIL
samples ÷ (rate × seconds), i.e. how much of the wall time one core was running Python for the server.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import qido, wado
from bench.cstore import cstore
from bench.data import fresh_copy, source_files, tiny_corpus
from bench.run_all import DEFAULT_CACHE, RESULTS
from bench.servers import Target, yunying
from bench.stow import stow

RATE = 200  # samples per second


def _frame(raw: str) -> tuple[str, str]:
    """'func (path/to/file.py:12)' → ('func', 'path/to/file.py')."""
    name, _, rest = raw.partition(" (")
    return name, rest.rsplit(":", 1)[0]


# (category, test on the stack of frames (name, file) from root to leaf); the first match wins
CATEGORIES: list[tuple[str, Callable[[list[tuple[str, str]]], bool]]] = [
    ("SHA-256 (checksum)", lambda st: any(n == "checksum" and f.startswith("yunying/") for n, f in st)),
    ("blob write + fsync", lambda st: any(n == "FilesystemBlobStore.put" for n, _ in st)),
    ("blob read", lambda st: any(n == "FilesystemBlobStore.get" for n, _ in st)),
    ("DICOM parse (pydicom)", lambda st: any(f.startswith("pydicom/") for _, f in st)),
    ("SQL driver (sqlite3 / psycopg: execute, commit)", lambda st: st[-1][0].startswith(
        ("DefaultDialect.do_", "Cursor.", "Connection.commit")) or any(f.startswith("psycopg/") for _, f in st)),
    ("SQLAlchemy in Python (statements, compile, ORM)", lambda st: any(f.startswith("sqlalchemy/") for _, f in st)),
    ("DIMSE (pynetdicom)", lambda st: any(f.startswith("pynetdicom/") for _, f in st)),
    ("multipart", lambda st: any("multipart" in f for _, f in st)),
    ("JSON", lambda st: any(f.startswith("json/") for _, f in st)),
    ("idle: event loop select / worker threads waiting", lambda st: st[-1][0] in (
        "Runner.run", "Condition.wait", "_PollLikeSelector.select", "BaseSelector.select", "EpollSelector.select",
        "Semaphore.acquire", "Event.wait")),
    ("HTTP + ASGI stack (uvicorn, starlette, fastapi, anyio)", lambda st: any(
        f.startswith(("uvicorn/", "starlette/", "fastapi/", "anyio/", "h11/", "httptools/")) for _, f in st)),
]


def _yunying_file(file: str) -> str | None:
    if "site-packages" in file:
        return None
    if file.startswith("yunying/"):
        return file
    if "/yunying/yunying/" in file or "/main/yunying/" in file:
        return "yunying/" + file.rsplit("/yunying/", 1)[1]
    return None


def aggregate(path: Path, top: int = 12) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]], list[tuple[str, float]]]:
    """(samples, category shares, inclusive shares of yunying/ functions, self shares of leaf functions)."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    category: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        seen = set()
        for name, file in frames:
            mine = _yunying_file(file)
            if mine:
                key = f"{mine.removeprefix('yunying/')}:{name}"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
        leaf[f"{Path(frames[-1][1]).name}:{frames[-1][0]}"] += count
        category[next((label for label, test in CATEGORIES if test(frames)), "other")] += count

    def share(c: collections.Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in c.most_common(n)] if total else []

    return total, share(category, len(CATEGORIES) + 1), share(inclusive, top), share(leaf, top)


def record(py_spy: str, target: Target, out: Path, gil: bool, work: Callable[[], object]) -> float:
    """Sample ``target`` while ``work`` runs; returns the wall time of ``work``."""
    cmd = [py_spy, "record", "-p", str(target.pid), "-r", str(RATE), "-f", "raw", "-o", str(out), "--nonblocking"]
    if gil:
        cmd.append("--gil")
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # let py-spy attach
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_yunying", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--py-spy", default=shutil.which("py-spy"), help="path to py-spy (default: on PATH)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not args.py_spy:
        p.error("py-spy not found: python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy, "
                "then pass --py-spy /tmp/pyspy/bin/py-spy")
    src = source_files("synthetic", args.cache_dir, 500)
    modes = {True: "gil", False: "active"}
    copies = {(m, k): fresh_copy(src, args.cache_dir, f"synthetic500-profile-{m}-{k}")
              for m in modes.values() for k in ("cstore", "stow1", "stow4")}
    small = tiny_corpus(6000, seed=98).instances[:6000]
    queries = qido.query_mix(tiny_corpus(6000, seed=98), 6000, 50)
    work = Path(tempfile.mkdtemp(prefix="yunying-profile-"))
    lines = [f"# Yunying profile ({args.db}) — {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", "",
             "Categories: each sample goes to the first category of the list that its stack matches.", ""]
    try:
        with yunying(work / "y", args.db) as y:
            workloads: list[tuple[str, bool, Callable[[], object]]] = []
            for gil, m in modes.items():
                workloads += [
                    ("C-STORE 500 CT slices, 1 association", gil, lambda m=m: cstore(y, copies[(m, "cstore")].files, 1)),
                    ("STOW-RS 500 CT slices, 1 client, 50/request", gil,
                     lambda m=m: stow(y, copies[(m, "stow1")].read_all(), 50, 1)),
                    ("STOW-RS 500 CT slices, 4 clients, 50/request", gil,
                     lambda m=m: stow(y, copies[(m, "stow4")].read_all(), 50, 4)),
                    ("STOW-RS 3,000 small instances, 4 clients, 100/request", gil,
                     lambda gil=gil: stow(y, small[:3000] if gil else small[3000:], 100, 4)),
                ]
            series = copies[("gil", "cstore")]
            for gil in modes:
                workloads += [
                    ("WADO-RS 500-image series ×3", gil,
                     lambda: [wado.retrieve(y, series.study_uid, series.series_uid) for _ in range(3)]),
                    ("QIDO-RS 200 study searches (6,000-instance index)", gil,
                     lambda: qido.run_queries([y], queries, warmup=0)),
                ]
            # ingest first: WADO and QIDO need the data
            order = sorted(range(len(workloads)), key=lambda i: "WADO" in workloads[i][0] or "QIDO" in workloads[i][0])
            for i in order:
                label, gil, fn = workloads[i]
                out = work / f"profile-{i}.txt"
                seconds = record(args.py_spy, y, out, gil, fn)
                total, categories, inclusive, leaf = aggregate(out) if out.exists() else (0, [], [], [])
                mode = "GIL holder (Python CPU)" if gil else "active threads"
                lines.append(f"## {label} — {mode}")
                lines.append("")
                busy = f"; GIL busy {total / (RATE * seconds):.0%} of wall time" if gil else ""
                lines.append(f"{seconds:.2f} s wall, {total} samples at {RATE} Hz{busy}")
                lines.append("")
                lines.append("| category | share | | Yunying function (inclusive) | share | "
                             "| leaf function (self) | share |")
                lines.append("|---|---|---|---|---|---|---|---|")
                for j in range(max(len(categories), len(inclusive), len(leaf))):
                    a, b, c = (x[j] if j < len(x) else ("", None) for x in (categories, inclusive, leaf))
                    cells = [f"{k} | {v:.0%}" if v is not None else " | " for k, v in (a, b, c)]
                    lines.append("| " + " | | ".join(cells) + " |")
                lines.append("")
                print(f"{label} [{mode}]: {seconds:.1f} s, {total} samples", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"profile-{args.db}-{time.strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(text)
    print(text)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
