"""QIDO-RS study search latency over a large index, and the cached fill that makes the index large.

Fill: tiny 8×8 instances (``bench.data.tiny_corpus``), the same bytes to both servers, sent by
STOW-RS in parallel batches. Filling 100,000 instances costs minutes per server, so the filled
servers (data folders and PostgreSQL databases) are kept in the cache folder and topped up
run after run: ``state.json`` records how many instances of the deterministic corpus each one
has received. Every fill chunk is timed, which gives a "STOW-RS of tiny instances" rate too.

Query mix (limit=100, study level): PatientID exact, PatientName prefix wildcard, a one-month
StudyDate range, ModalitiesInStudy. Each query goes to both servers back to back (alternating
which goes first) so load from other users of the machine hits both alike.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from bench.data import MODALITIES, SURNAMES, TinyCorpus
from bench.servers import Target
from bench.stow import IngestResult, stow

QUERY_TYPES = ("PatientID exact", "PatientName prefix*", "StudyDate 1-month range", "ModalitiesInStudy")
# Wildcards and ranges go unencoded: Orthanc 1.10 takes a percent-encoded "*" (%2A) or "-" (%2D)
# literally and then finds nothing, which would make it look fast.
QUERY_SAFE = "*-^,"
FILL_BATCH = 100
FILL_CLIENTS = 4


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ------------------------------------------------------------------------------------------ fill


@dataclass
class FillState:
    path: Path
    sent: int = 0
    seed: int = 7

    @classmethod
    def load(cls, path: Path, seed: int) -> FillState:
        if path.exists():
            raw = json.loads(path.read_text())
            if raw.get("seed") == seed:
                return cls(path, int(raw["sent"]), seed)
        return cls(path, 0, seed)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"sent": self.sent, "seed": self.seed}) + "\n")


def top_up(target: Target, corpus: TinyCorpus, state: FillState, wanted: int, budget_s: float) -> IngestResult | None:
    """Send the next corpus instances until ``wanted`` are stored or ``budget_s`` is spent; None if nothing to do."""
    if state.sent >= wanted:
        return None
    deadline = time.monotonic() + budget_s
    chunk = FILL_BATCH * FILL_CLIENTS * 10  # ~4,000 instances per timed chunk, then the budget is checked
    total = IngestResult(0, 0, 0.0)
    while state.sent < wanted and time.monotonic() < deadline:
        part = corpus.instances[state.sent:min(wanted, state.sent + chunk)]
        result = stow(target, part, FILL_BATCH, FILL_CLIENTS)
        state.sent += len(part)
        state.save()
        total = IngestResult(total.instances + result.instances, total.nbytes + result.nbytes,
                             total.seconds + result.seconds, total.failed + result.failed)
        print(f"    fill {target.product}/{target.db}: {state.sent:,}/{wanted:,} sent "
              f"({result.rate:.0f} inst/s this chunk)", flush=True)
    return total


# --------------------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    kind: str
    params: dict[str, str]


def query_mix(corpus: TinyCorpus, filled: int, per_type: int, seed: int = 11) -> list[Query]:
    """``per_type`` queries of each kind, shuffled; patient IDs only from the first ``filled`` instances."""
    rng = random.Random(seed)
    known = [pid for pid, first in corpus.patients if first < filled] or [corpus.patients[0][0]]
    out = []
    for _ in range(per_type):
        month = f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}"
        out += [
            Query(QUERY_TYPES[0], {"PatientID": rng.choice(known)}),
            Query(QUERY_TYPES[1], {"PatientName": rng.choice(SURNAMES)[:3] + "*"}),
            Query(QUERY_TYPES[2], {"StudyDate": f"{month}01-{month}28"}),
            Query(QUERY_TYPES[3], {"ModalitiesInStudy": rng.choice(MODALITIES)}),
        ]
    rng.shuffle(out)
    return out


@dataclass
class Latencies:
    by_kind: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in QUERY_TYPES})
    counts: list[int] = field(default_factory=list)
    errors: int = 0

    def all(self) -> list[float]:
        return [v for values in self.by_kind.values() for v in values]


def run_queries(targets: list[Target], queries: list[Query], warmup: int = 12) -> tuple[dict[str, Latencies], int]:
    """Latency (ms) of every query on every target; returns the latencies and the number of result-count mismatches."""
    results = {t.product: Latencies() for t in targets}
    clients = {t.product: t.client(timeout=120) for t in targets}
    mismatches = 0
    try:
        for i, q in enumerate(queries[:warmup] + queries):
            order = targets if i % 2 == 0 else targets[::-1]
            counts = {}
            for t in order:
                url = t.dicomweb + "/studies?" + urlencode({**q.params, "limit": "100"}, safe=QUERY_SAFE)
                start = time.perf_counter()
                r = clients[t.product].get(url, headers={"Accept": "application/dicom+json"})
                elapsed = (time.perf_counter() - start) * 1000
                ok = r.status_code in (200, 204)
                counts[t.product] = len(r.json()) if r.status_code == 200 and r.content else 0
                if i < warmup:
                    continue
                lat = results[t.product]
                if not ok:
                    lat.errors += 1
                    continue
                lat.by_kind[q.kind].append(elapsed)
                lat.counts.append(counts[t.product])
            if i >= warmup and len(set(counts.values())) > 1:
                mismatches += 1
    finally:
        for c in clients.values():
            c.close()
    return results, mismatches


def summary(lat: Latencies) -> dict[str, float]:
    values = lat.all()
    return {"p50": statistics.median(values) if values else float("nan"), "p95": percentile(values, 0.95),
            "n": float(len(values)), "mean_results": statistics.mean(lat.counts) if lat.counts else 0.0}
