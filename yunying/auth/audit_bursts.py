"""Coalescing of per-image audit entries.

A viewer reads a study image by image: 500 frame requests for one CT series. Recording each as its own audit
entry would add 500 appends to the one hash chain (which serialises on its head row) for a single act of
viewing. So for the per-image retrieval kinds (frames, rendered images, thumbnails, bulk data) the first request
of a burst is recorded, with the kind, and repeats of the same actor + study + kind within ``window`` seconds
are not. Whole-study/series/instance retrievals, metadata, queries and stores are always recorded.

The memory is per process: with several API nodes behind a load balancer each records the first request it
serves, so a burst may leave one entry per node — more entries, never fewer. Nothing here affects scale-out.
"""

from __future__ import annotations

import threading
import time

_MAX_KEYS = 50_000


class AuditBursts:
    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._last: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def first_of_burst(self, *key: str) -> bool:
        """True when ``key`` was not seen in the last ``window`` seconds (then it is remembered from now)."""
        if self.window <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            seen = self._last.get(key)
            if seen is not None and now - seen < self.window:
                return False
            if len(self._last) >= _MAX_KEYS:
                cutoff = now - self.window
                self._last = {k: t for k, t in self._last.items() if t >= cutoff}
            self._last[key] = now
            return True
