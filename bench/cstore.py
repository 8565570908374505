"""C-STORE ingest with dcmtk's storescu (Nagle off via TCP_NODELAY=1), 1 or N parallel associations."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.servers import HOST, Target
from bench.stow import IngestResult

STORESCU = "/usr/bin/storescu"  # dcmtk's, not pynetdicom's storescu in the venv


def split(files: list[Path], n: int) -> list[list[Path]]:
    """``n`` contiguous chunks of nearly equal size."""
    size, extra = divmod(len(files), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(files[start:end])
        start = end
    return [c for c in out if c]


def cstore(target: Target, files: list[Path], associations: int) -> IngestResult:
    """Send ``files`` over ``associations`` simultaneous storescu processes; wall time until the last one ends.

    ``-R`` proposes only each file's own transfer syntax, so storescu never converts on the fly.
    """
    env = {**os.environ, "TCP_NODELAY": "1"}
    procs = []
    start = time.perf_counter()
    for chunk in split(files, associations):
        cmd = [STORESCU, "-R", "-nh", "-aet", "BENCH", "-aec", target.ae_title, HOST, str(target.dicom_port),
               *map(str, chunk)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    errors = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            errors.append(err.decode(errors="replace")[-300:])
    seconds = time.perf_counter() - start
    if errors:
        print(f"    ! {target.product}/{target.db} storescu: {errors[:2]}", flush=True)
    return IngestResult(len(files), sum(f.stat().st_size for f in files), seconds, failed=len(errors))
