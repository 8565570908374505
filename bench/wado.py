"""WADO-RS retrieval of a whole series in its original transfer syntax, timed with curl (no Python in the way)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.servers import Target

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@dataclass(frozen=True)
class Retrieval:
    seconds: float
    nbytes: int
    ttfb: float  # time to first byte

    @property
    def mb_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds else 0.0


def _curl(target: Target, url: str, output: str, limit_rate: int | None = None) -> tuple[int, Retrieval, str]:
    cmd = ["curl", "-sS", "--noproxy", "*", "-o", output, "-H", f"Accept: {ACCEPT}",
           "-w", "%{http_code} %{time_total} %{time_starttransfer} %{size_download} %{content_type}"]
    for name, value in target.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    if limit_rate:
        cmd += ["--limit-rate", str(limit_rate)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=600, check=True).stdout.split(" ", 4)
    code, total, ttfb, size = int(out[0]), float(out[1]), float(out[2]), int(out[3])
    return code, Retrieval(total, size, ttfb), out[4] if len(out) > 4 else ""


def series_url(target: Target, study: str, series: str) -> str:
    return f"{target.dicomweb}/studies/{study}/series/{series}"


def verify(target: Target, study: str, series: str, expected: int) -> str:
    """Retrieve once into a file and check the part count and transfer syntax; '' if fine, else the problem."""
    with tempfile.NamedTemporaryFile(suffix=".multipart") as tmp:
        code, _, ctype = _curl(target, series_url(target, study, series), tmp.name)
        if code != 200:
            return f"HTTP {code}"
        match = re.search(r'boundary="?([^";]+)"?', ctype)
        if not match:
            return f"no boundary in {ctype!r}"
        body = Path(tmp.name).read_bytes()
        parts = body.count(b"--" + match.group(1).encode() + b"\r\n")
        if parts != expected:
            return f"{parts} parts instead of {expected}"
    return ""


GIGABIT = 125_000_000  # bytes/s on a 1 Gbit/s link (before TCP/IP overhead)


def retrieve(target: Target, study: str, series: str, limit_rate: int | None = None) -> Retrieval:
    """One timed retrieval of the series, body discarded; ``limit_rate`` (bytes/s) throttles the client like a slow link."""
    code, result, _ = _curl(target, series_url(target, study, series), "/dev/null", limit_rate)
    if code != 200:
        raise RuntimeError(f"{target.product} WADO-RS: HTTP {code}")
    return result
