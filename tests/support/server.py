"""Run a real ``yunying serve`` process for interoperability and fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

YUNYING = str(Path(sys.executable).parent / "yunying")
ADMIN_PASSWORD = "Yy-test-Pass-0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    data_dir: Path
    database_url: str
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    ae_title: str = "YUNYING"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    open_dicom: bool = True  # register "any AE title on 127.0.0.1" as a peer of the default institution
    admin_token: str = ""

    @property
    def tls(self) -> bool:
        return bool(self.env.get("YUNYING_TLS_CERT_FILE"))

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return self.url + "/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        """HTTP Basic of the first account: a password alone, so without its administrative roles."""
        return ("admin", ADMIN_PASSWORD)

    @property
    def admin_headers(self) -> dict[str, str]:
        """A bearer token of the first account: every role, administration included."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUNYING_")}
        env.update({"YUNYING_DATABASE_URL": self.database_url, "YUNYING_ADMIN_PASSWORD_INIT": ADMIN_PASSWORD,
                    "YUNYING_LOG_LEVEL": "INFO"})
        env.update(self.env)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        if self.open_dicom and not self.admin_token:
            added = self.cli("peer", "add", "*", "--host", "127.0.0.1", "--institution", "default")
            if added.returncode != 0 and "UNIQUE" not in added.stderr + added.stdout and "unique" not in added.stderr:
                raise RuntimeError(f"peer add failed: {added.stderr}")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [YUNYING, "serve", "--data-dir", str(self.data_dir), "--http-port", str(self.http_port),
             "--dicom-port", str(self.dicom_port), "--ae-title", self.ae_title],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                healthy = httpx.get(self.url + "/healthz", timeout=1, verify=not self.tls).status_code == 200
                if healthy and self._dicom_up():
                    if not self.admin_token:
                        made = self.cli("token", "create", "--user", "admin", "--name", "test-admin")
                        if made.returncode != 0:
                            raise RuntimeError(f"token create failed: {made.stderr}")
                        self.admin_token = made.stdout.strip().splitlines()[-1]
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not come up:\n{self.log()}")

    def _dicom_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1):
                return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up (crash simulation)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUNYING_")}
        env["YUNYING_DATABASE_URL"] = self.database_url
        return subprocess.run([YUNYING, *args, "--data-dir", str(self.data_dir)], capture_output=True, text=True,
                              env=env, timeout=600)
