"""De-identification (PS3.15 Annex E basic profile) for anonymous shares and their downloads.

Routes ask :func:`for_principal` once per request: ``None`` means "show the data as it is"; a
:class:`Deidentifier` means the caller is the visitor of an anonymous share, and every dataset,
metadata item, rendered image and text they receive goes through it (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from yunying.deid.keys import master_key
from yunying.deid.profile import BurnedInAnnotation, Deidentifier
from yunying.settings import Settings
from yunying.storage.base import BlobStore

__all__ = ["BurnedInAnnotation", "Deidentifier", "context_of", "for_principal", "is_anonymous"]


class HasExtra(Protocol):
    """What de-identification needs of a principal (``yunying.auth.access.Principal`` fits)."""

    @property
    def via(self) -> str: ...

    @property
    def extra(self) -> Mapping[str, str]: ...


def is_anonymous(principal: HasExtra) -> bool:
    """The visitor of an anonymous share (decision 0010: ``extra["anonymous"] == "1"``)."""
    return principal.extra.get("anonymous") == "1"


def context_of(principal: HasExtra) -> str:
    """The context whose UIDs stay consistent: the share (every visitor of one share sees the same UIDs)."""
    share = principal.extra.get("share")
    return f"share:{share}" if share else f"via:{principal.via}"


def for_principal(principal: HasExtra, settings: Settings, blobs: BlobStore) -> Deidentifier | None:
    """The de-identifier for ``principal``'s requests, or ``None`` when it sees identified data."""
    if not is_anonymous(principal):
        return None
    return Deidentifier.for_context(master_key(settings.deid_key, blobs), context_of(principal))
