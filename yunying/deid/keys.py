"""The master key of UID replacement: from ``deid_key``, else one random key kept in the blob store.

The key must be the same on every node (a share visitor's requests land anywhere) and secret from
visitors (with it, a replaced UID could be matched to the original). A configured ``deid_key`` wins;
otherwise the first node to need one stores 32 random bytes under ``keys/deid-uid.key`` beside the
data (never served: no route reads ``keys/``).
"""

from __future__ import annotations

import secrets
import threading

from yunying.errors import NotFound
from yunying.storage.base import BlobStore

KEY_BLOB = "keys/deid-uid.key"
_KEY_BYTES = 32
_cache: dict[tuple[int, str], bytes] = {}
_lock = threading.Lock()


def master_key(configured_hex: str, blobs: BlobStore) -> bytes:
    """The master key (configured hex, else the blob store's, created on first use)."""
    if configured_hex:
        key = bytes.fromhex(configured_hex)
        if len(key) < _KEY_BYTES:
            raise ValueError("deid_key must be at least 32 bytes (64 hex digits)")
        return key
    cache_key = (id(blobs), blobs.name)
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None:
            return cached
        try:
            key = blobs.get(KEY_BLOB)
        except NotFound:
            blobs.put(KEY_BLOB, secrets.token_bytes(_KEY_BYTES))
            key = blobs.get(KEY_BLOB)  # read back: the stored key is the one every node uses
        _cache[cache_key] = key
        return key
