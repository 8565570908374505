"""STOW-RS ingest: multipart/related batches posted by 1 or N parallel httpx clients."""

from __future__ import annotations

import queue
import secrets
import threading
import time
from dataclasses import dataclass

from bench.servers import Target


@dataclass(frozen=True)
class IngestResult:
    instances: int
    nbytes: int
    seconds: float
    failed: int = 0

    @property
    def rate(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0

    @property
    def mb_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds else 0.0


def multipart_body(instances: list[bytes]) -> tuple[bytes, str]:
    """(body, content type) of one STOW-RS request."""
    boundary = "bench-" + secrets.token_hex(12)
    parts = []
    for data in instances:
        parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\nContent-Length: {len(data)}\r\n\r\n".encode())
        parts.append(data)
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f'multipart/related; type="application/dicom"; boundary={boundary}'


def batches_of(instances: list[bytes], size: int) -> list[list[bytes]]:
    return [instances[i:i + size] for i in range(0, len(instances), size)]


def _failures(response_json: object, expected: int) -> int:
    """Instances the server says it did not store (Failed SOP Sequence 0008,1198)."""
    if not isinstance(response_json, dict):
        return expected
    failed = response_json.get("00081198", {}).get("Value", [])
    return len(failed)


def stow(target: Target, instances: list[bytes], batch: int, clients: int) -> IngestResult:
    """Post ``instances`` in batches of ``batch`` over ``clients`` parallel connections; wall time of the whole."""
    bodies = [(multipart_body(b), len(b)) for b in batches_of(instances, batch)]  # built before the clock starts
    work: queue.SimpleQueue[tuple[tuple[bytes, str], int]] = queue.SimpleQueue()
    for item in bodies:
        work.put(item)
    failed = [0]
    errors: list[str] = []
    lock = threading.Lock()
    url = target.dicomweb + "/studies"

    def worker() -> None:
        with target.client() as client:
            while True:
                try:
                    (body, ctype), count = work.get_nowait()
                except queue.Empty:
                    return
                r = client.post(url, content=body, headers={"Content-Type": ctype, "Accept": "application/dicom+json"})
                with lock:
                    if r.status_code not in (200, 202):
                        failed[0] += count
                        errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                    else:
                        failed[0] += _failures(r.json(), count)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        print(f"    ! {target.product}/{target.db} STOW-RS errors: {errors[:3]}", flush=True)
    return IngestResult(len(instances), sum(len(i) for i in instances), seconds, failed[0])
