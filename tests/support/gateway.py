"""Run a real ``yunying gateway`` process for integration and fault tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.server import YUNYING, free_port


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


@dataclass
class GatewayProcess:
    data_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    dicom_port: int = field(default_factory=free_port)
    ae_title: str = "CLOUD_GW"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.toml"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-gateway.log"

    def write_config(self) -> None:
        values = {"data_dir": str(self.data_dir), "dicom_port": self.dicom_port, "ae_title": self.ae_title,
                  "heartbeat_interval_s": 1.0, "retry_base_s": 0.2, "retry_max_s": 2.0, **self.config}
        self.config_path.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items()))

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUNYING_")}
        env["TCP_NODELAY"] = "1"
        return env

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        self.write_config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([YUNYING, "gateway", "--config", str(self.config_path)], stdout=log,
                                     stderr=subprocess.STDOUT, env=self._env(), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway did not come up:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        self.write_config()
        return subprocess.run([YUNYING, "gateway", *args, "--config", str(self.config_path)], capture_output=True,
                              text=True, env=self._env(), timeout=timeout)

    def status(self) -> dict[str, Any]:
        done = self.cli("status", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def queued(self) -> int:
        return sum(int(lane["depth"]) for lane in self.status()["lanes"].values())

    def wait_drained(self, timeout: float = 120.0) -> dict[str, Any]:
        """Until nothing is queued (everything confirmed or refused by the cloud)."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status()
            if sum(int(lane["depth"]) for lane in status["lanes"].values()) == 0:
                return status
            time.sleep(0.3)
        raise AssertionError(f"gateway queue not drained: {status}\n{self.log()[-3000:]}")
