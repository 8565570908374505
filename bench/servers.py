"""Start Yunying and Orthanc side by side on loopback, each with a SQLite or a PostgreSQL index."""

from __future__ import annotations

import base64
import os
import platform
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from tests.support.server import ServerProcess, free_port

ORTHANC_SH = Path("/work/shared/peers/orthanc.sh")
PG_ADMIN = os.environ.get("YUNYING_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
HOST = "127.0.0.1"


@dataclass
class Target:
    """One running archive as the benchmarks see it."""

    product: str  # "Yunying" | "Orthanc"
    db: str  # "sqlite" | "postgresql"
    http: str  # base URL
    dicomweb: str  # DICOMweb root, no trailing slash
    dicom_port: int
    ae_title: str
    headers: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    pid: int | None = None

    def client(self, timeout: float = 600.0) -> httpx.Client:
        return httpx.Client(headers=self.headers, timeout=timeout)

    def instance_count(self) -> int:
        """Instances in the index (Orthanc: /statistics; Yunying: sum of study counters over QIDO)."""
        with self.client() as c:
            if self.product == "Orthanc":
                return int(c.get(self.http + "/statistics").json()["CountInstances"])
            total, offset = 0, 0
            while True:
                page = c.get(self.dicomweb + "/studies", params={"limit": 1000, "offset": offset,
                                                                 "includefield": "00201208"}).json()
                total += sum(int(s.get("00201208", {}).get("Value", [0])[0]) for s in page)
                if len(page) < 1000:
                    return total
                offset += 1000


def pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def pg_exists(name: str) -> bool:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def pg_create(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_pg_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@contextmanager
def yunying(data: Path, db: str, *, pg_name: str | None = None, keep: bool = False) -> Iterator[Target]:
    """``yunying serve`` on ``data`` (SQLite inside it, or the PostgreSQL database ``pg_name``).

    ``keep=False``: a new, empty archive, removed afterwards. ``keep=True``: a cached archive that
    survives (created on first use).
    """
    if not keep:
        shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True, exist_ok=True)
    url = ""
    if db == "postgresql":
        pg_name = pg_name or fresh_pg_name("bench_yunying")
        if not pg_exists(pg_name):
            pg_create(pg_name)
        url = pg_url(pg_name).replace("postgresql://", "postgresql+psycopg://", 1)
    # BENCH_YUNYING_WORKERS (set by run_all --workers): processes for HTTP and DICOM (SO_REUSEPORT)
    server = ServerProcess(data, url, env={"YUNYING_LOG_LEVEL": "WARNING",
                                           "YUNYING_WORKERS": os.environ.get("BENCH_YUNYING_WORKERS", "1")})
    try:
        server.start(timeout=180)
        assert server.proc is not None
        user, password = server.auth
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        yield Target("Yunying", db, server.url, server.dicomweb, server.dicom_port, server.ae_title,
                     headers={"Authorization": basic}, data_dir=data, pid=server.proc.pid)
    finally:
        server.stop()
        if not keep:
            if pg_name:
                pg_drop(pg_name)
            shutil.rmtree(data, ignore_errors=True)


@contextmanager
def orthanc(data: Path, db: str, *, pg_name: str | None = None, keep: bool = False) -> Iterator[Target]:
    """Orthanc 1.10 + DICOMweb via /work/shared/peers/orthanc.sh on ``data``: its default SQLite index or
    the PostgreSQL index plugin on ``pg_name``. ``keep`` as for :func:`yunying`."""
    if not keep:
        shutil.rmtree(data, ignore_errors=True)
    http_port, dicom_port = free_port(), free_port()
    env = {**os.environ, "ORTHANC_HTTP_PORT": str(http_port), "ORTHANC_DICOM_PORT": str(dicom_port),
           "ORTHANC_AET": "ORTHANC"}
    env.pop("ORTHANC_PG_URI", None)
    if db == "postgresql":
        pg_name = pg_name or fresh_pg_name("bench_orthanc")
        if not pg_exists(pg_name):
            pg_create(pg_name)
        env["ORTHANC_PG_URI"] = pg_url(pg_name)
    try:
        subprocess.run(["bash", str(ORTHANC_SH), "start", str(data)], env=env, check=True, stdout=subprocess.DEVNULL)
        base = f"http://{HOST}:{http_port}"
        pid = int((data / "orthanc.pid").read_text())
        yield Target("Orthanc", db, base, base + "/dicom-web", dicom_port, "ORTHANC", data_dir=data, pid=pid)
    finally:
        subprocess.run(["bash", str(ORTHANC_SH), "stop", str(data)], env=env, check=False, stdout=subprocess.DEVNULL)
        if not keep:
            if pg_name:
                pg_drop(pg_name)
            shutil.rmtree(data, ignore_errors=True)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` and its reaped children (0 if unknown)."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_info() -> dict[str, str]:
    """Where the numbers come from."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024**2:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for name, cmd in (("dcmtk", ["/usr/bin/storescu", "--version"]),
                      ("postgresql", ["psql", "-h", HOST, "-U", "postgres", "-Atc", "show server_version"])):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
            versions[name] = out[0] if out else "?"
        except (OSError, subprocess.TimeoutExpired):
            versions[name] = "?"
    commit = "?"
    repo = Path(__file__).resolve().parent.parent
    try:  # read-only git commands only
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=repo).stdout.strip() or "?"
        changed = subprocess.run(["git", "diff", "--name-only", "HEAD", "--", "yunying"], capture_output=True,
                                 text=True, timeout=10, cwd=repo).stdout.split()
        if changed:
            commit += f" + uncommitted changes in {len(changed)} file(s) of yunying/"
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "yunying commit": commit,
        "orthanc": _dpkg_version("orthanc") + " + dicomweb " + _dpkg_version("orthanc-dicomweb")
        + " + postgresql " + _dpkg_version("orthanc-postgresql"),
        "dcmtk": versions["dcmtk"],
        "postgresql server": versions["postgresql"],
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _dpkg_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"
