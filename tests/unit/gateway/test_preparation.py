"""Preparation in worker processes: parallel compression that does not crash, and survives a worker's death."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.support.data import SHARED, ct_series
from yunying.gateway.compress import Codec
from yunying.gateway.preparation import PrepareConfig, PreparePool


def _sources() -> list[bytes]:
    mr = sorted(p for p in (SHARED / "mr_brain_ge_pioneer_study").rglob("*") if p.is_file() and p.suffix != ".md")
    return [p.read_bytes() for p in ct_series()[:4] + mr[:4]]


@pytest.fixture(scope="module")
def pool() -> Iterator[PreparePool]:
    pool = PreparePool(PrepareConfig(Codec.AUTO), workers=2)
    yield pool
    pool.close()


def _same_pixels(a: bytes, b: bytes) -> bool:
    return bool(np.array_equal(pydicom.dcmread(BytesIO(a)).pixel_array, pydicom.dcmread(BytesIO(b)).pixel_array))


def test_parallel_streams_mixing_codecs_stay_up_and_exact(pool: PreparePool) -> None:
    """Four threads, JPEG-LS and JPEG 2000 chosen per kind: in one process this crashed the interpreter."""
    sources = _sources()
    results: list[tuple[bytes, bytes]] = []
    lock = threading.Lock()

    def stream(offset: int) -> None:
        for i in range(12):
            data = sources[(offset + i) % len(sources)]
            out = pool(data)
            with lock:
                results.append((data, out.data))

    threads = [threading.Thread(target=stream, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == 48
    assert all(_same_pixels(a, b) for a, b in results)
    figures = pool.figures()
    assert sum(f["instances"] for f in figures.values()) >= 48
    assert sum(f["sent_bytes"] for f in figures.values()) < sum(f["original_bytes"] for f in figures.values())


def test_a_dying_worker_costs_compression_not_the_instance(tmp_path: Path) -> None:
    pool = PreparePool(PrepareConfig(Codec.JPEG_2000), workers=1)
    try:
        data = ct_series()[0].read_bytes()
        assert pool(data).codec is Codec.JPEG_2000  # the worker is up
        for pid in list(pool._pool._processes):
            os.kill(pid, signal.SIGKILL)
        out = pool(data)
        assert out.codec is Codec.NONE and out.data == data  # sent as received: still lossless
        assert pool(data).codec is Codec.JPEG_2000  # a new pool took over
    finally:
        pool.close()
