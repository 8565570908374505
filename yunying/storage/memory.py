"""In-memory blob store for unit tests of domain logic only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from yunying.errors import NotFound
from yunying.storage.base import BlobInfo


class MemoryBlobStore:
    name = "memory"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.blobs[key] = bytes(data)

    def get(self, key: str) -> bytes:
        try:
            return self.blobs[key]
        except KeyError as exc:
            raise NotFound(f"blob {key} is missing") from exc

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def iter_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        for key, data in list(self.blobs.items()):
            if key.startswith(prefix):
                yield BlobInfo(key=key, size=len(data))

    def local_path(self, key: str) -> Path | None:
        return None
