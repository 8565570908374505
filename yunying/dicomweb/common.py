"""Shared bits of the DICOMweb adapter: media types, URLs, Accept negotiation, warnings."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from yunying.api.problems import ProblemError
from yunying.compose import Archive
from yunying.dicomweb.multipart import parse_media_params

DICOM_JSON = "application/dicom+json"
PREFIX = "/dicom-web"


def base_url(request: Request, archive: Archive) -> str:
    if archive.settings.public_url:
        return archive.settings.public_url.rstrip("/") + PREFIX
    return str(request.base_url).rstrip("/") + PREFIX


def retrieve_url(base: str, *uids: str) -> str:
    names = ("studies", "series", "instances")
    return base + "".join(f"/{names[i]}/{uid}" for i, uid in enumerate(uids))


def warning(text: str) -> str:
    return '299 yunying "' + text.replace('"', "'") + '"'


@dataclass(frozen=True)
class Accepted:
    media_type: str  # the part type for multipart, or the single-part media type
    transfer_syntax: str | None
    multipart: bool


def negotiate(accept_header: str, offered: list[str], default: str) -> list[Accepted]:
    """Parse ``Accept`` into acceptable choices among ``offered`` part/media types, in preference order.

    ``multipart/related; type="X"; transfer-syntax=Y`` and bare ``X`` are both understood;
    ``*/*``, ``multipart/related`` without type, or no header select ``default``; ``type/*``
    stands for every offered ``type/...``.
    """
    choices: list[tuple[float, int, Accepted]] = []
    for index, item in enumerate(_split_accept(accept_header or "*/*")):
        media, params = parse_media_params(item)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        ts = params.get("transfer-syntax")
        if media == "multipart/related":
            part = params.get("type", default).lower()
            multipart = True
        else:
            part, multipart = media, False
        if part in ("*/*", "*"):
            part = default
        if part in offered:
            choices.append((-q, index, Accepted(part, ts, multipart)))
        elif part.endswith("/*"):  # e.g. image/*: every offered type of that kind, in offered order
            prefix = part[:-1]
            choices.extend((-q, index, Accepted(o, ts, multipart)) for o in offered if o.startswith(prefix))
    if not choices:
        raise ProblemError(406, "Not Acceptable", f"supported media types: {', '.join(offered)}")
    return [c[2] for c in sorted(choices, key=lambda c: (c[0], c[1]))]


def _split_accept(header: str) -> list[str]:
    items: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    items.append("".join(buf).strip())
    return [i for i in items if i]
