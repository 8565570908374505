"""Optional encryption of the gateway's spool files at rest: AES-256-GCM or SM4-GCM (GB/T 32907), via ``cryptography``.

A sealed file is ``b"YYS1" | algorithm id (1 byte) | nonce (12 bytes) | ciphertext | tag (16 bytes)``.
The caller's ``aad`` (the spool passes the SOP Instance UID) is authenticated but not stored, so a file
moved to another instance's name, altered, or opened with another key fails to open.
"""

from __future__ import annotations

import os
from typing import Literal, Protocol, cast

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"YYS1"
NONCE_BYTES = 12  # 96-bit GCM nonce (NIST SP 800-38D §8.2.2, random construction)
TAG_BYTES = 16
AeadAlgorithm = Literal["aes-256-gcm", "sm4-gcm"]
ALGORITHM_IDS: dict[str, int] = {"aes-256-gcm": 1, "sm4-gcm": 2}
KEY_BYTES: dict[str, int] = {"aes-256-gcm": 32, "sm4-gcm": 16}
HEADER_BYTES = len(MAGIC) + 1 + NONCE_BYTES


class SealError(Exception):
    """A sealed file cannot be opened: not sealed, another algorithm, altered, or wrong key or context."""


class Sealer(Protocol):
    name: str

    def seal(self, data: bytes, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, aad: bytes) -> bytes: ...


class NoSeal:
    """Files stored as they are. Refuses to hand back a sealed file as if it were plain."""

    name: str = "none"

    def seal(self, data: bytes, aad: bytes) -> bytes:
        return data

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if blob[:len(MAGIC)] == MAGIC and len(blob) > len(MAGIC) and blob[len(MAGIC)] in ALGORITHM_IDS.values():
            raise SealError("this file is sealed but spool encryption is off: configure the key that sealed it")
        return blob


def _new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


class AeadSealer:
    """Authenticated encryption with a fresh random 96-bit nonce per file."""

    def __init__(self, algorithm: AeadAlgorithm, key: bytes) -> None:
        if algorithm not in ALGORITHM_IDS:
            raise ValueError(f"unknown spool encryption {algorithm!r} (aes-256-gcm, sm4-gcm)")
        if len(key) != KEY_BYTES[algorithm]:
            raise ValueError(f"{algorithm} needs a {KEY_BYTES[algorithm]}-byte key, got {len(key)} bytes")
        self.name: str = algorithm
        self._id = ALGORITHM_IDS[algorithm]
        self._key = key
        try:
            self.open(self.seal(b"", b"self-test"), b"self-test")
        except UnsupportedAlgorithm as exc:
            raise ValueError(f"{algorithm} is not available in this OpenSSL build used by cryptography") from exc

    def seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = _new_nonce()
        if self.name == "aes-256-gcm":
            sealed = AESGCM(self._key).encrypt(nonce, data, aad)
        else:
            encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
            encryptor.authenticate_additional_data(aad)
            sealed = encryptor.update(data) + encryptor.finalize() + encryptor.tag
        return MAGIC + bytes([self._id]) + nonce + sealed

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < HEADER_BYTES + TAG_BYTES or blob[:len(MAGIC)] != MAGIC:
            raise SealError("not a sealed spool file")
        if blob[len(MAGIC)] != self._id:
            raise SealError(f"sealed with another algorithm (id {blob[len(MAGIC)]}), not {self.name}")
        nonce, sealed = blob[len(MAGIC) + 1:HEADER_BYTES], blob[HEADER_BYTES:]
        try:
            if self.name == "aes-256-gcm":
                return AESGCM(self._key).decrypt(nonce, sealed, aad)
            ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
            decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
            decryptor.authenticate_additional_data(aad)
            return decryptor.update(ciphertext) + decryptor.finalize()
        except InvalidTag:
            raise SealError("sealed file altered, or wrong key or context") from None


def make_sealer(algorithm: str, key_hex: str) -> Sealer:
    """The sealer for the gateway settings (``spool_encryption``, ``spool_key``); "none" ignores the key."""
    if algorithm == "none":
        return NoSeal()
    if algorithm not in ALGORITHM_IDS:
        raise ValueError(f"unknown spool encryption {algorithm!r} (none, aes-256-gcm, sm4-gcm)")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise ValueError("spool_key is not hexadecimal") from None  # never echo the key
    return AeadSealer(cast(AeadAlgorithm, algorithm), key)  # checked against ALGORITHM_IDS above
