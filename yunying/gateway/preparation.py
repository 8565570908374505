"""Preparing instances for upload (identity protection, then lossless compression) in worker processes.

The codecs are native libraries. Called from several threads of one process at once they are not
safe: JPEG-LS and JPEG 2000 encoding in parallel threads crashed the interpreter (segmentation
fault in libpython, reproduced in isolation). So preparation runs in a small pool of processes:
true parallelism on every core, and a crash costs one worker, not the gateway. If the pool
breaks, the affected instances are sent uncompressed (still lossless) and the pool is rebuilt.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from yunying.gateway.compress import Codec, CodecChooser, Compressed, compress_lossless
from yunying.gateway.protect import Protector, parse_rules

log = logging.getLogger(__name__)
PREPARE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class PrepareConfig:
    codec: Codec
    protection_rules: tuple[str, ...] = ()
    protection_secret: bytes = b""
    protection_hash: str = "sha256"

    def protector(self) -> Protector | None:
        if not self.protection_rules:
            return None
        return Protector(parse_rules(self.protection_rules), self.protection_secret, self.protection_hash)


# -- in the worker process -----------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(config: PrepareConfig) -> None:
    from yunying.logging import configure_logging

    configure_logging("WARNING")
    _worker["config"] = config
    _worker["protector"] = config.protector()
    _worker["chooser"] = CodecChooser()


def _prepare_in_worker(data: bytes) -> Compressed:
    protector: Protector | None = _worker["protector"]
    if protector is not None and protector.active:
        data = protector.apply(data)
    config: PrepareConfig = _worker["config"]
    return compress_lossless(data, config.codec, _worker["chooser"])


# -- in the gateway ------------------------------------------------------------------------------
class PreparePool:
    """``pool(data) -> Compressed``: thread-safe, callable from every upload stream."""

    def __init__(self, config: PrepareConfig, workers: int = 0) -> None:
        self.config = config
        self.workers = workers or os.cpu_count() or 1
        self._protector = config.protector()
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self._figures: dict[str, dict[str, int]] = {}

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.config,))

    def __call__(self, data: bytes) -> Compressed:
        if self.config.codec is Codec.NONE and self._protector is None:
            return compress_lossless(data, Codec.NONE)
        with self._lock:
            pool = self._pool
        try:
            result = pool.submit(_prepare_in_worker, data).result(timeout=PREPARE_TIMEOUT_S)
        except BrokenProcessPool:
            log.error("a compression worker died; this instance goes uncompressed and the pool is rebuilt")
            with self._lock:
                if self._pool is pool:
                    self._pool = self._new_pool()
            result = self._fallback(data)
        except TimeoutError:
            log.error("compression took longer than %.0f s; this instance goes uncompressed", PREPARE_TIMEOUT_S)
            result = self._fallback(data)
        self._count(result)
        return result

    def _fallback(self, data: bytes) -> Compressed:
        if self._protector is not None and self._protector.active:
            data = self._protector.apply(data)
        return compress_lossless(data, Codec.NONE)

    def _count(self, result: Compressed) -> None:
        with self._lock:
            figures = self._figures.setdefault(result.codec.value, {"instances": 0, "original_bytes": 0, "sent_bytes": 0})
            figures["instances"] += 1
            figures["original_bytes"] += result.original_size
            figures["sent_bytes"] += len(result.data)

    def figures(self) -> dict[str, dict[str, int]]:
        """Per codec since start: instances, bytes before and after (for the status page)."""
        with self._lock:
            return {codec: dict(values) for codec, values in self._figures.items()}

    def close(self) -> None:
        with self._lock:
            self._pool.shutdown(wait=False, cancel_futures=True)

