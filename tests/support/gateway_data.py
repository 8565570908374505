"""Test corpora for the gateway: real CT slices re-identified into new studies, and a cutting proxy."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from tests.support.data import ct_series


@dataclass
class Study:
    study_uid: str
    files: list[Path] = field(default_factory=list)
    sop_uids: list[str] = field(default_factory=list)


def make_study(out: Path, n: int, *, accession: str, series: int = 1, source: list[Path] | None = None) -> Study:
    """``n`` instances of real CT pixel data in a new study (new UIDs), ``series`` series."""
    slices = source or ct_series()
    study = Study(generate_uid())
    series_uids = [generate_uid() for _ in range(series)]
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ds = pydicom.dcmread(slices[i % len(slices)])
        ds.StudyInstanceUID = study.study_uid
        ds.SeriesInstanceUID = series_uids[i % series]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.AccessionNumber = accession
        ds.InstanceNumber = i + 1
        path = out / f"{accession}-{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        study.files.append(path)
        study.sop_uids.append(str(ds.SOPInstanceUID))
    return study


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(pydicom.dcmread(BytesIO(data)).pixel_array)


class CuttingProxy:
    """TCP proxy to ``upstream``; ``cut_after(n)`` drops every open connection once ``n`` more bytes went up."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.bytes_up = 0
        self.cuts = 0
        self._cut_at: int | None = None
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, nbytes: int) -> None:
        with self._lock:
            self._cut_at = self.bytes_up + nbytes

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._conns += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if upward:
                    with self._lock:
                        self.bytes_up += len(chunk)
                        cut = self._cut_at is not None and self.bytes_up >= self._cut_at
                        if cut:
                            self._cut_at = None
                            self.cuts += 1
                    if cut:
                        self._drop_all()
                        return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        self._drop_all()
