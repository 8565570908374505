"""The blob store contract: a handful of methods every back-end implements.

Keys are opaque, slash-separated ASCII paths chosen by the archive (see
:func:`content_key`). ``put`` returns only once the bytes are durable: fsynced
on a filesystem, acknowledged by the object store for S3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from yunying.errors import CorruptBlob, NotFound

CHECKSUM_ALGORITHM = "sha256"


def checksum(data: bytes | memoryview) -> str:
    """Hex SHA-256 of ``data`` (the checksum recorded for every stored object)."""
    return hashlib.sha256(data).hexdigest()


def content_key(digest: str, prefix: str = "dicom") -> str:
    """Content-addressed key for an object whose SHA-256 is ``digest``.

    Fan-out by the first two bytes keeps directories and S3 prefixes small.
    """
    return f"{prefix}/{digest[0:2]}/{digest[2:4]}/{digest}"


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: float | None = None  # seconds since the epoch, when the back-end knows it


@runtime_checkable
class BlobStore(Protocol):
    """Durable key → bytes storage."""

    name: str

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; durable when this returns."""

    def get(self, key: str) -> bytes:
        """Return the bytes under ``key``; raise :class:`NotFound` if absent."""

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if absent."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""

    def iter_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every stored key under ``prefix``, with its size."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path to the bytes if the back-end has one (zero-copy serving)."""


def get_verified(store: BlobStore, key: str, expected: str) -> bytes:
    """Read ``key`` and check it against its recorded checksum.

    Raises
    ------
    CorruptBlob
        The bytes no longer hash to ``expected``.
    NotFound
        The blob is missing.
    """
    try:
        data = store.get(key)
    except NotFound as exc:  # the index says it exists: that is damage, not an unknown resource
        raise CorruptBlob(f"blob {key} of an indexed instance is missing") from exc
    actual = checksum(data)
    if actual != expected:
        raise CorruptBlob(f"blob {key} is damaged: checksum {actual[:12]}… != recorded {expected[:12]}…")
    return data


__all__ = [
    "CHECKSUM_ALGORITHM",
    "BlobInfo",
    "BlobStore",
    "CorruptBlob",
    "NotFound",
    "checksum",
    "content_key",
    "get_verified",
]
