"""Sensitive-field encryption and blind index: published known-answer vectors, tokens, tampering, keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

import pytest

from yunying.auth import fieldcrypt
from yunying.auth.fieldcrypt import FieldAlgorithm, FieldCipher, FieldCryptError, aead_decrypt, aead_encrypt, keyed_hash
from yunying.index.repository import ID_CARD_CONTEXT, PHONE_CONTEXT
from yunying.settings import Settings

# AES-256-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)" (the spec submitted to NIST),
# Appendix B, Test Case 16 (256-bit key, 96-bit IV, 60-byte plaintext, 20-byte AAD).
AES_KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
AES_IV = bytes.fromhex("cafebabefacedbaddecaf888")
AES_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
AES_PT = bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                       "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
AES_CT = bytes.fromhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                       "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
AES_TAG = bytes.fromhex("76fc6ece0f4e1768cddf8853bb2d551b")

# SM4-GCM: RFC 8998 (ShangMi cipher suites for TLS 1.3), Appendix A.1, "SM4-GCM Test Vectors".
SM4_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
SM4_IV = bytes.fromhex("00001234567800000000ABCD")
SM4_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
SM4_PT = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                       "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
SM4_CT = bytes.fromhex("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
                       "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D")
SM4_TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")

KAT: dict[str, tuple[bytes, bytes, bytes, bytes, bytes, bytes]] = {
    "aes-256-gcm": (AES_KEY, AES_IV, AES_AAD, AES_PT, AES_CT, AES_TAG),
    "sm4-gcm": (SM4_KEY, SM4_IV, SM4_AAD, SM4_PT, SM4_CT, SM4_TAG),
}
ALGORITHMS: list[FieldAlgorithm] = ["aes-256-gcm", "sm4-gcm"]
HASH_KEY = bytes(range(32, 64))
TOKEN_RE = re.compile(r"^v1:(aes-256-gcm|sm4-gcm):[A-Za-z0-9+/]+=*$")
ID_CARD = "11010519491231002X"  # the example number of GB 11643-1999


def cipher(algorithm: FieldAlgorithm = "aes-256-gcm", hash_algorithm: str = "sha256") -> FieldCipher:
    return FieldCipher(algorithm, os.urandom(fieldcrypt.KEY_BYTES[algorithm]), HASH_KEY, hash_algorithm)


# --- known answers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_known_answer_encrypt(algorithm: FieldAlgorithm) -> None:
    key, iv, aad, pt, ct, tag = KAT[algorithm]
    assert aead_encrypt(algorithm, key, iv, pt, aad) == ct + tag


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_known_answer_decrypt(algorithm: FieldAlgorithm) -> None:
    key, iv, aad, pt, ct, tag = KAT[algorithm]
    assert aead_decrypt(algorithm, key, iv, ct + tag, aad) == pt


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_token_is_the_known_primitive_over_nonce_and_context(algorithm: FieldAlgorithm,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    key, iv, _, pt, _, _ = KAT[algorithm]
    monkeypatch.setattr(fieldcrypt, "_new_nonce", lambda: iv)
    token = FieldCipher(algorithm, key, HASH_KEY).encrypt(pt.decode("latin-1"), "patient.phone")
    expected = iv + aead_encrypt(algorithm, key, iv, pt.decode("latin-1").encode(), f"v1:{algorithm}:patient.phone".encode())
    assert token == f"v1:{algorithm}:" + base64.b64encode(expected).decode()


def test_sm3_known_answers() -> None:
    # GB/T 32905-2016 Appendix A, examples 1 and 2
    assert hashlib.new("sm3", b"abc").hexdigest() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert hashlib.new("sm3", b"abcd" * 16).hexdigest() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_hmac_sha256_known_answer() -> None:
    # RFC 4231 §4.3, test case 2
    assert keyed_hash("sha256", b"Jefe", b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_hmac_sm3_is_rfc2104_over_sm3() -> None:
    key, message = b"\x0b" * 20, b"Hi There"
    block = key.ljust(64, b"\x00")  # SM3 block size is 64 bytes
    inner = hashlib.new("sm3", bytes(b ^ 0x36 for b in block) + message).digest()
    outer = hashlib.new("sm3", bytes(b ^ 0x5C for b in block) + inner).hexdigest()
    assert keyed_hash("sm3", key, message) == outer


# --- tokens ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("text", ["", ID_CARD, "+86 138 0013 8000", "张三 13800138000"])
def test_round_trip(algorithm: FieldAlgorithm, text: str) -> None:
    c = cipher(algorithm)
    token = c.encrypt(text, ID_CARD_CONTEXT)
    assert TOKEN_RE.match(token)
    assert not text or text not in token
    assert c.decrypt(token, ID_CARD_CONTEXT) == text


def test_each_encryption_has_a_fresh_nonce() -> None:
    c = cipher()
    assert c.encrypt(ID_CARD, ID_CARD_CONTEXT) != c.encrypt(ID_CARD, ID_CARD_CONTEXT)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tampered_token_wrong_key_or_context_fail(algorithm: FieldAlgorithm) -> None:
    c = cipher(algorithm)
    token = c.encrypt(ID_CARD, ID_CARD_CONTEXT)
    prefix, payload = token.rsplit(":", 1)
    raw = bytearray(base64.b64decode(payload))
    for position in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        altered = bytearray(raw)
        altered[position] ^= 0x01
        with pytest.raises(FieldCryptError, match="altered, or wrong key or context"):
            c.decrypt(f"{prefix}:{base64.b64encode(bytes(altered)).decode()}", ID_CARD_CONTEXT)
    with pytest.raises(FieldCryptError, match="wrong key or context"):
        c.decrypt(token, PHONE_CONTEXT)  # moved to another column
    with pytest.raises(FieldCryptError, match="wrong key or context"):
        cipher(algorithm).decrypt(token, ID_CARD_CONTEXT)  # another key


@pytest.mark.parametrize("token", ["", "11010519491231002X", "v2:aes-256-gcm:AAAA", "v1:aes-256-gcm:",
                                   "v1:aes-256-gcm:not base64!", "v1:aes-256-gcm:AAAA", "v1:sm4-gcm:" + "A" * 40])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(FieldCryptError):
        cipher().decrypt(token, ID_CARD_CONTEXT)


# --- blind index -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hash_algorithm", ["sha256", "sm3"])
def test_blind_index_is_hmac_of_context_and_normalised_value(hash_algorithm: str) -> None:
    c = cipher(hash_algorithm=hash_algorithm)
    expected = hmac.new(HASH_KEY, ID_CARD_CONTEXT.encode() + b"\x00" + ID_CARD.encode(), hash_algorithm).hexdigest()
    assert c.blind_index(ID_CARD, ID_CARD_CONTEXT) == expected and len(expected) == 64


def test_blind_index_normalises_id_card_and_phone() -> None:
    c = cipher()
    same_card = [ID_CARD, ID_CARD.lower(), " 110105 19491231 002x ", "１１０１０５１９４９１２３１００２Ｘ"]
    assert len({c.blind_index(v, ID_CARD_CONTEXT) for v in same_card}) == 1
    same_phone = ["13800138000", "138-0013-8000", "+86 138 0013 8000", "0086 13800138000", "(138) 0013 8000"]
    assert len({c.blind_index(v, PHONE_CONTEXT) for v in same_phone}) == 1
    assert c.blind_index("010-6512 3456", PHONE_CONTEXT) == c.blind_index("01065123456", PHONE_CONTEXT)
    assert c.blind_index("13800138001", PHONE_CONTEXT) != c.blind_index("13800138000", PHONE_CONTEXT)


def test_blind_index_depends_on_context_and_hash_key() -> None:
    c = cipher()
    assert c.blind_index("13800138000", PHONE_CONTEXT) != c.blind_index("13800138000", ID_CARD_CONTEXT)
    other = FieldCipher("aes-256-gcm", os.urandom(32), os.urandom(32))
    assert other.blind_index(ID_CARD, ID_CARD_CONTEXT) != c.blind_index(ID_CARD, ID_CARD_CONTEXT)


# --- keys and settings -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (("des-cbc", os.urandom(32), HASH_KEY), "unknown field cipher"),
    (("aes-256-gcm", os.urandom(16), HASH_KEY), "needs a 32-byte field key, got 16"),
    (("sm4-gcm", os.urandom(32), HASH_KEY), "needs a 16-byte field key, got 32"),
    (("aes-256-gcm", os.urandom(32), os.urandom(16)), "at least 32 bytes"),
    (("aes-256-gcm", HASH_KEY, HASH_KEY), "must differ"),
    (("aes-256-gcm", os.urandom(32), HASH_KEY, "md5"), "unknown field hash"),
])
def test_unusable_keys_are_refused_clearly(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(FieldCryptError, match=message):
        FieldCipher(*args)  # type: ignore[arg-type]


def test_from_settings() -> None:
    assert FieldCipher.from_settings(Settings(field_key="")) is None
    aes = FieldCipher.from_settings(Settings(field_key=os.urandom(32).hex(), field_hash_key=os.urandom(32).hex()))
    assert aes is not None and (aes.algorithm, aes.hash_algorithm) == ("aes-256-gcm", "sha256")
    sm4 = FieldCipher.from_settings(Settings(field_cipher="sm4-gcm", field_key=os.urandom(16).hex(),
                                             field_hash_key=os.urandom(32).hex()))
    assert sm4 is not None and (sm4.algorithm, sm4.hash_algorithm) == ("sm4-gcm", "sm3")


@pytest.mark.parametrize(("field_key", "hash_key", "message"), [
    ("zz" + "ab" * 31, "cd" * 32, "YUNYING_FIELD_KEY is not hexadecimal"),
    ("ab" * 32, "", "YUNYING_FIELD_HASH_KEY is required"),
    ("ab" * 32, "not-hex-secret", "YUNYING_FIELD_HASH_KEY is not hexadecimal"),
    ("ab" * 16, "cd" * 32, "needs a 32-byte field key"),
])
def test_bad_settings_fail_without_echoing_keys(field_key: str, hash_key: str, message: str) -> None:
    with pytest.raises(FieldCryptError, match=message) as info:
        FieldCipher.from_settings(Settings(field_key=field_key, field_hash_key=hash_key))
    assert field_key not in str(info.value) and (not hash_key or hash_key not in str(info.value))


def test_repr_shows_no_key() -> None:
    key = os.urandom(32)
    c = FieldCipher("aes-256-gcm", key, HASH_KEY)
    assert key.hex() not in repr(c) and HASH_KEY.hex() not in repr(c) and "aes-256-gcm" in repr(c)
