"""Local filesystem blob store: write to a temporary file, fsync, rename, fsync the directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from yunying.errors import NotFound
from yunying.storage.base import BlobInfo

_TMP_SUFFIX = ".partial"


class FilesystemBlobStore:
    """Blobs as files under ``root``; ``put`` is atomic and durable (fsync before return)."""

    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        directory = path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".", suffix=_TMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {key} is missing") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def iter_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for dirpath, _dirs, files in os.walk(base):
            for filename in files:
                full = Path(dirpath) / filename
                key = full.relative_to(self.root).as_posix()
                stat = full.stat()
                yield BlobInfo(key=key, size=stat.st_size, modified=stat.st_mtime)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def leftover_partials(self) -> list[Path]:
        """Temporary files left by a crash mid-write (never referenced by the index)."""
        return [p for p in self.root.rglob(f".*{_TMP_SUFFIX}")]
