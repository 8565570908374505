"""Sensitive patient fields (resident ID card number, phone) encrypted at rest and hashed for matching.

Encryption is AES-256-GCM or SM4-GCM (GB/T 32907, GCM per RFC 8998) through ``cryptography``/OpenSSL —
no hand-written cryptography. A stored value is a versioned token::

    v1:<algorithm>:<base64(nonce (12 bytes) | ciphertext | tag (16 bytes))>

with a fresh random 96-bit nonce per value (NIST SP 800-38D §8.2.2). The associated data is
``"v1:<algorithm>:<context>"``, where the context names the column (``patient.id_card``), so a token
copied into another column, altered, or opened with another key fails to decrypt.

Matching never decrypts: :meth:`FieldCipher.blind_index` is an HMAC (SHA-256, or SM3 with SM4 — the
national suite goes together) under a separate key over the *normalised* value, bound to the context.

Keys come from configuration only (``YUNYING_FIELD_KEY``, ``YUNYING_FIELD_HASH_KEY``, hex); with no
field key the archive does not store these fields at all. Neither keys nor values are ever logged or
put into an error message or ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from typing import Literal, cast

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from yunying.dicom.parse import normalise_id_card, normalise_phone
from yunying.index.repository import ID_CARD_CONTEXT, PHONE_CONTEXT
from yunying.settings import Settings

FieldAlgorithm = Literal["aes-256-gcm", "sm4-gcm"]
HashAlgorithm = Literal["sha256", "sm3"]
VERSION = "v1"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES: dict[str, int] = {"aes-256-gcm": 32, "sm4-gcm": 16}
MIN_HASH_KEY_BYTES = 32
# The hash of the blind index follows the cipher: the national suite (SM4 + SM3) or the international one.
HASH_FOR_CIPHER: dict[str, HashAlgorithm] = {"aes-256-gcm": "sha256", "sm4-gcm": "sm3"}


def _strip_spaces(text: str) -> str:
    return re.sub(r"\s+", "", text)


# How a value is normalised before hashing, per context (column); other contexts only lose whitespace.
NORMALISERS: dict[str, Callable[[str], str]] = {
    ID_CARD_CONTEXT: normalise_id_card,  # spaces removed, trailing x upper-cased
    PHONE_CONTEXT: normalise_phone,  # digits only (China's +86 prefix of a mobile number dropped)
}


class FieldCryptError(ValueError):
    """A token cannot be decrypted (malformed, another algorithm, altered, wrong key or context) or a key is unusable."""


def aead_encrypt(algorithm: FieldAlgorithm, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """``ciphertext | tag`` of ``plaintext`` under ``key`` and ``nonce`` (the primitive every token uses)."""
    if algorithm == "aes-256-gcm":
        return AESGCM(key).encrypt(nonce, plaintext, aad)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag


def aead_decrypt(algorithm: FieldAlgorithm, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`aead_encrypt`; raises ``cryptography.exceptions.InvalidTag`` when authentication fails."""
    if algorithm == "aes-256-gcm":
        return AESGCM(key).decrypt(nonce, sealed, aad)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


def keyed_hash(algorithm: HashAlgorithm, key: bytes, message: bytes) -> str:
    """Hex HMAC (RFC 2104) of ``message`` with SHA-256 or SM3 (GB/T 32905), from the OpenSSL behind ``hashlib``."""
    return hmac.new(key, message, algorithm).hexdigest()


def _new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


class FieldCipher:
    """Encrypts, decrypts and blind-indexes sensitive values of one configured algorithm and key pair.

    Parameters
    ----------
    algorithm
        ``"aes-256-gcm"`` (32-byte key) or ``"sm4-gcm"`` (16-byte key).
    key
        The encryption key.
    hash_key
        The HMAC key of the blind index, at least 32 bytes and different from ``key``.
    hash_algorithm
        ``"sha256"`` or ``"sm3"``.
    """

    def __init__(self, algorithm: str, key: bytes, hash_key: bytes, hash_algorithm: str = "sha256") -> None:
        if algorithm not in KEY_BYTES:
            raise FieldCryptError(f"unknown field cipher {algorithm!r} (aes-256-gcm, sm4-gcm)")
        if len(key) != KEY_BYTES[algorithm]:
            raise FieldCryptError(f"{algorithm} needs a {KEY_BYTES[algorithm]}-byte field key, got {len(key)} bytes")
        if hash_algorithm not in ("sha256", "sm3"):
            raise FieldCryptError(f"unknown field hash {hash_algorithm!r} (sha256, sm3)")
        if len(hash_key) < MIN_HASH_KEY_BYTES:
            raise FieldCryptError(f"the field hash key needs at least {MIN_HASH_KEY_BYTES} bytes, got {len(hash_key)}")
        if hmac.compare_digest(hash_key, key):
            raise FieldCryptError("the field hash key must differ from the field key")
        self.algorithm = cast(FieldAlgorithm, algorithm)
        self.hash_algorithm = cast(HashAlgorithm, hash_algorithm)
        self._key = key
        self._hash_key = hash_key
        try:
            hashlib.new(hash_algorithm)
        except ValueError:
            raise FieldCryptError(f"{hash_algorithm} is not available in the OpenSSL used by Python's hashlib") from None
        try:
            self.decrypt(self.encrypt("self-test", "self-test"), "self-test")
        except UnsupportedAlgorithm:
            raise FieldCryptError(f"{algorithm} is not available in the OpenSSL used by cryptography") from None

    def __repr__(self) -> str:
        return f"FieldCipher({self.algorithm}, hash={self.hash_algorithm})"  # never the keys

    @classmethod
    def from_settings(cls, settings: Settings) -> FieldCipher | None:
        """The cipher of ``field_cipher``/``field_key``/``field_hash_key``; None when ``field_key`` is empty.

        Raises
        ------
        FieldCryptError
            With a sentence naming the setting at fault (never echoing a key).
        """
        if not settings.field_key:
            return None
        key = _hex_key(settings.field_key, "YUNYING_FIELD_KEY")
        if not settings.field_hash_key:
            raise FieldCryptError("YUNYING_FIELD_HASH_KEY is required when YUNYING_FIELD_KEY is set")
        hash_key = _hex_key(settings.field_hash_key, "YUNYING_FIELD_HASH_KEY")
        try:
            return cls(settings.field_cipher, key, hash_key, HASH_FOR_CIPHER[settings.field_cipher])
        except FieldCryptError as exc:
            raise FieldCryptError(f"YUNYING_FIELD_KEY / YUNYING_FIELD_HASH_KEY: {exc}") from None

    def _aad(self, algorithm: str, context: str) -> bytes:
        return f"{VERSION}:{algorithm}:{context}".encode()

    def encrypt(self, text: str, context: str) -> str:
        """A token ``v1:<alg>:<base64>`` of ``text``, bound to ``context`` (the column it is stored in)."""
        nonce = _new_nonce()
        sealed = aead_encrypt(self.algorithm, self._key, nonce, text.encode(), self._aad(self.algorithm, context))
        return f"{VERSION}:{self.algorithm}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, token: str, context: str) -> str:
        """The text of a token made by :meth:`encrypt` with the same key and ``context``.

        Raises
        ------
        FieldCryptError
            Not a token, another version or algorithm, altered, or wrong key or context.
        """
        version, _, rest = token.partition(":")
        algorithm, _, payload = rest.partition(":")
        if version != VERSION or not payload:
            raise FieldCryptError("not an encrypted field token (v1)")
        if algorithm != self.algorithm:
            raise FieldCryptError(f"field encrypted with {algorithm or '?'}, but the configured cipher is {self.algorithm}")
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise FieldCryptError("encrypted field token is not valid base64") from None
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise FieldCryptError("encrypted field token is too short")
        try:
            plain = aead_decrypt(self.algorithm, self._key, raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                 self._aad(algorithm, context))
        except InvalidTag:
            raise FieldCryptError("encrypted field altered, or wrong key or context") from None
        return plain.decode()

    def blind_index(self, text: str, context: str) -> str:
        """Hex HMAC of the normalised ``text`` under the hash key, bound to ``context``: equal values match."""
        normalise = NORMALISERS.get(context, _strip_spaces)
        message = context.encode() + b"\x00" + normalise(text).encode()
        return keyed_hash(self.hash_algorithm, self._hash_key, message)


def _hex_key(value: str, name: str) -> bytes:
    try:
        return bytes.fromhex(value.strip())
    except ValueError:
        raise FieldCryptError(f"{name} is not hexadecimal") from None  # never echo the key
