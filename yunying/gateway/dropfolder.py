"""A drop folder: files copied into it are spooled, then removed (or set aside with a reason).

A file is taken once its size and modification time have not changed for ``settle_s`` (so a
copy in progress is never read half-written). Files that are not valid instances move to
``.rejected/`` beside a ``.reason.txt``; with the disk budget full, files simply stay until there
is room — nothing is deleted before it is durable in the spool.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from yunying.gateway.intake import Intake, InvalidInstance
from yunying.gateway.spool import SpoolFull

log = logging.getLogger(__name__)
REJECTED = ".rejected"


class DropFolder:
    def __init__(self, root: Path, intake: Intake, *, settle_s: float = 2.0) -> None:
        self.root = root
        self.intake = intake
        self.settle_s = settle_s
        self.root.mkdir(parents=True, exist_ok=True)

    def scan_once(self) -> int:
        """Spool every settled file; returns how many were taken."""
        taken = 0
        now = time.time()
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                if now - stat.st_mtime < self.settle_s:
                    continue
                try:
                    self.intake.accept(path.read_bytes(), "drop-folder")
                except InvalidInstance as exc:
                    self._reject(path, str(exc))
                    continue
                except SpoolFull:
                    log.error("drop folder paused: gateway disk budget full")
                    return taken
                path.unlink()
                taken += 1
        return taken

    def _reject(self, path: Path, reason: str) -> None:
        target_dir = self.root / REJECTED
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        n = 1
        while target.exists():
            target = target_dir / f"{path.name}.{n}"
            n += 1
        path.rename(target)
        target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
        log.warning("drop folder: %s set aside: %s", target.name, reason)
