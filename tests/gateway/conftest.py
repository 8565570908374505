"""Fixtures for gateway tests: a fake hospital PACS (dcmtk's dcmqrscp via ../shared/peers/dcmqrscp.sh).

``pacs_factory(src, peers)`` starts one dcmqrscp on a free port, loaded from the DICOM files under
``src`` and knowing ``peers`` ({AE title: port on 127.0.0.1}) as C-MOVE destinations; ``pacs`` is one
started from a small default set (:func:`default_src`). Each is stopped after the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import data
from tests.support.gateway import GatewayProcess
from tests.support.server import ServerProcess, free_port
from yunying.gateway.pacs import PacsPeer

PEERS_DIR = Path(os.environ.get("YUNYING_SHARED_PEERS", data.SHARED.parent / "peers"))
DCMQRSCP_SH = PEERS_DIR / "dcmqrscp.sh"
PACS_AET = "HOSPITAL_PACS"
# Debian's dcmtk leaves Nagle on unless told otherwise (~40 ms per small PDU on loopback).
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
# A few small real studies (PCIR samples, 16x16 pixels): 4 studies, 2 patients, CR/CT/MR, 3 dates,
# studies with 1 to 3 series. Paths relative to the shared data set.
DEFAULT_FILES = (
    "dicomdir_media_pcir/77654033/CR1/6154",
    "dicomdir_media_pcir/77654033/CR2/6247",
    "dicomdir_media_pcir/77654033/CR3/6278",
    "dicomdir_media_pcir/77654033/CT2/17106",
    "dicomdir_media_pcir/77654033/CT2/17136",
    "dicomdir_media_pcir/77654033/CT2/17166",
    "dicomdir_media_pcir/98892001/CT2N/6293",
    "dicomdir_media_pcir/98892001/CT2N/6924",
    "dicomdir_media_pcir/98892001/CT5N/2062",
    "dicomdir_media_pcir/98892001/CT5N/2392",
    "dicomdir_media_pcir/98892001/CT5N/2693",
    "dicomdir_media_pcir/98892003/MR1/15820",
    "dicomdir_media_pcir/98892003/MR2/15970",
)

@dataclass
class RunningPacs:
    """A running dcmqrscp: ``peer`` to reach it, ``src`` it was loaded from, ``peers`` its move destinations."""

    peer: PacsPeer
    data_dir: Path
    src: Path
    peers: dict[str, int] = field(default_factory=dict)

    def _env(self) -> dict[str, str]:
        return {**DCMTK_ENV, "PACS_AET": self.peer.ae_title, "PACS_PORT": str(self.peer.port),
                "PACS_PEERS": " ".join(f"{ae}@127.0.0.1:{port}" for ae, port in self.peers.items())}

    def start(self) -> RunningPacs:
        run = subprocess.run([str(DCMQRSCP_SH), "start", str(self.data_dir), str(self.src)], env=self._env(),
                             capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise RuntimeError(f"dcmqrscp did not start:\n{run.stdout}\n{run.stderr}")
        return self

    def load(self, paths: Iterable[Path]) -> None:
        """Add DICOM files (or folders) to the running PACS."""
        run = subprocess.run([str(DCMQRSCP_SH), "load", str(self.data_dir), *map(str, paths)], env=self._env(),
                             capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise RuntimeError(f"dcmqrscp load failed:\n{run.stdout}\n{run.stderr}")

    def stop(self) -> None:
        """Stop the process group the script started (its pid file), without the script's slow polling."""
        pidfile = self.data_dir / "dcmqrscp.pid"
        if not pidfile.exists():
            return
        pid = int(pidfile.read_text().strip())
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pidfile.unlink(missing_ok=True)
            return
        deadline = time.monotonic() + 5
        while _listening(self.peer.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _listening(self.peer.port):
            os.killpg(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)

    @property
    def log(self) -> str:
        path = self.data_dir / "dcmqrscp.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def default_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a copy of :data:`DEFAULT_FILES` (the PACS scans its source folder recursively)."""
    src = tmp_path_factory.mktemp("pacs-src")
    for rel in DEFAULT_FILES:
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data.SHARED / rel, dst)
    return src


@pytest.fixture(scope="session")
def _loopback_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the script's LD_PRELOAD shim, once compiled, is kept so later starts skip gcc."""
    return tmp_path_factory.mktemp("pacs-shim") / "loopback_bind.so"


@pytest.fixture
def pacs_factory(tmp_path: Path, _loopback_shim: Path) -> Iterator[Callable[..., RunningPacs]]:
    """``start(src, peers={AE: port}, ae_title="HOSPITAL_PACS") -> RunningPacs``; all stopped afterwards."""
    if shutil.which("dcmqrscp") is None:
        pytest.skip("dcmtk is not installed (scripts/system-deps.sh)")
    started: list[RunningPacs] = []

    def start(src: Path, peers: dict[str, int] | None = None, ae_title: str = PACS_AET) -> RunningPacs:
        data_dir = tmp_path / f"pacs-{len(started)}"
        shim = data_dir / "lib" / "loopback_bind.so"
        if _loopback_shim.exists():
            shim.parent.mkdir(parents=True)
            shutil.copyfile(_loopback_shim, shim)
        # dcmqrscp needs at least one move destination in its config: by default one nobody listens on.
        running = RunningPacs(PacsPeer(ae_title, "127.0.0.1", free_port()), data_dir, src,
                              dict(peers) if peers else {"NOBODY_HOME": free_port()})
        started.append(running)
        running.start()
        if not _loopback_shim.exists() and shim.exists():
            shutil.copyfile(shim, _loopback_shim)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def pacs(pacs_factory: Callable[..., RunningPacs], default_src: Path) -> RunningPacs:
    """A running fake hospital PACS loaded with the default studies."""
    return pacs_factory(default_src)


@pytest.fixture
def cloud_factory(tmp_path: Path) -> Iterator[Callable[[], ServerProcess]]:
    """Cloud archives (SQLite; the archive's own suites cover PostgreSQL), started on demand."""
    made: list[ServerProcess] = []

    def make() -> ServerProcess:
        n = len(made)
        server = ServerProcess(tmp_path / f"cloud{n}", f"sqlite:///{tmp_path / f'cloud{n}.sqlite3'}")
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    made: list[GatewayProcess] = []

    def make(**config: object) -> GatewayProcess:
        gateway = GatewayProcess(tmp_path / f"gateway{len(made)}", dict(config))
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.stop()
