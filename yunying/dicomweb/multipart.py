"""multipart/related (RFC 2387) for DICOMweb: build responses, parse STOW-RS requests incrementally."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser


def new_boundary() -> str:
    return "yunying-" + secrets.token_hex(16)


def related_content_type(part_type: str, boundary: str, transfer_syntax: str | None = None) -> str:
    inner = f'{part_type}; transfer-syntax={transfer_syntax}' if transfer_syntax else part_type
    return f'multipart/related; type="{inner}"; boundary={boundary}'


def encode_part(boundary: str, content_type: str, body: bytes, location: str | None = None) -> Iterator[bytes]:
    head = f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    if location:
        head += f"Content-Location: {location}\r\n"
    yield (head + "\r\n").encode()
    yield body
    yield b"\r\n"


def close(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode()


def encode_all(boundary: str, parts: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    for content_type, body in parts:
        yield from encode_part(boundary, content_type, body)
    yield close(boundary)


def parse_media_params(header: str) -> tuple[str, dict[str, str]]:
    """``'multipart/related; type="application/dicom"; boundary=x'`` → (media type, params)."""
    pieces = _split_params(header)
    media = pieces[0].strip().lower() if pieces else ""
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, _, value = piece.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params[name.strip().lower()] = value
    return media, params


def _split_params(header: str) -> list[str]:
    out: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return out


@dataclass
class Part:
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class PartTooLarge(Exception):
    pass


class RelatedParser:
    """Feed body chunks; completed parts are collected in ``ready`` (drain it as you go)."""

    def __init__(self, boundary: str, max_part_bytes: int) -> None:
        self.ready: list[Part] = []
        self.max_part_bytes = max_part_bytes
        self._part: Part | None = None
        self._field = bytearray()
        self._value = bytearray()
        self.too_large = False
        callbacks = {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
        }
        self._parser = MultipartParser(boundary, callbacks, max_header_count=32, max_header_size=16384)  # type: ignore[arg-type]

    def _begin(self) -> None:
        self._part = Part()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part is None:
            return
        if len(self._part.body) + (end - start) > self.max_part_bytes:
            self.too_large = True
            self._part.body = bytearray()
            self._part.headers["x-too-large"] = "1"
            return
        if "x-too-large" not in self._part.headers:
            self._part.body.extend(data[start:end])

    def _header_end(self) -> None:
        if self._part is not None:
            self._part.headers[self._field.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _end(self) -> None:
        if self._part is not None:
            self.ready.append(self._part)
        self._part = None

    def feed(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def finish(self) -> None:
        self._parser.finalize()
