"""Spool files sealed at rest: AES-256-GCM and SM4-GCM, with published known-answer vectors."""

from __future__ import annotations

import os

import pytest

from yunying.gateway import sealing
from yunying.gateway.sealing import MAGIC, AeadAlgorithm, AeadSealer, NoSeal, Sealer, SealError, make_sealer

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

KAT: dict[str, tuple[bytes, bytes, bytes, bytes, bytes, bytes, int]] = {
    "aes-256-gcm": (AES_KEY, AES_IV, AES_AAD, AES_PT, AES_CT, AES_TAG, 1),
    "sm4-gcm": (SM4_KEY, SM4_IV, SM4_AAD, SM4_PT, SM4_CT, SM4_TAG, 2),
}
ALGORITHMS: list[AeadAlgorithm] = ["aes-256-gcm", "sm4-gcm"]
AAD = b"1.2.826.0.1.3680043.8.498.1"


def sealer(algorithm: AeadAlgorithm) -> AeadSealer:
    return AeadSealer(algorithm, os.urandom(sealing.KEY_BYTES[algorithm]))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_known_answer_seal(algorithm: AeadAlgorithm, monkeypatch: pytest.MonkeyPatch) -> None:
    key, iv, aad, pt, ct, tag, alg_id = KAT[algorithm]
    s = AeadSealer(algorithm, key)
    monkeypatch.setattr(sealing, "_new_nonce", lambda: iv)
    assert s.seal(pt, aad) == MAGIC + bytes([alg_id]) + iv + ct + tag


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_known_answer_open(algorithm: AeadAlgorithm) -> None:
    key, iv, aad, pt, ct, tag, alg_id = KAT[algorithm]
    assert AeadSealer(algorithm, key).open(MAGIC + bytes([alg_id]) + iv + ct + tag, aad) == pt


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("data", [b"", b"x", os.urandom(100_000)])
def test_round_trip(algorithm: AeadAlgorithm, data: bytes) -> None:
    s = sealer(algorithm)
    blob = s.seal(data, AAD)
    assert blob.startswith(MAGIC)
    assert len(blob) == len(data) + sealing.HEADER_BYTES + sealing.TAG_BYTES
    assert s.open(blob, AAD) == data
    assert len(data) < 16 or data not in blob  # a short plaintext may occur in random bytes by chance


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_seal_uses_a_fresh_nonce(algorithm: AeadAlgorithm) -> None:
    s = sealer(algorithm)
    assert s.seal(b"same", AAD) != s.seal(b"same", AAD)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_any_flipped_byte_is_refused(algorithm: AeadAlgorithm) -> None:
    s = sealer(algorithm)
    blob = s.seal(b"a DICOM file, in short" * 10, AAD)
    for position in range(len(blob)):  # magic, algorithm id, nonce, ciphertext and tag alike
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(SealError):
            s.open(bytes(tampered), AAD)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrong_aad_key_algorithm_or_truncation_is_refused(algorithm: AeadAlgorithm) -> None:
    s = sealer(algorithm)
    blob = s.seal(b"payload", AAD)
    with pytest.raises(SealError):
        s.open(blob, AAD + b"2")  # the file moved to another instance's name
    with pytest.raises(SealError):
        sealer(algorithm).open(blob, AAD)  # another key
    other: AeadAlgorithm = "sm4-gcm" if algorithm == "aes-256-gcm" else "aes-256-gcm"
    with pytest.raises(SealError, match="another algorithm"):
        sealer(other).open(blob, AAD)
    for cut in (0, 4, sealing.HEADER_BYTES, len(blob) - 1):
        with pytest.raises(SealError):
            s.open(blob[:cut], AAD)
    with pytest.raises(SealError, match="not a sealed"):
        s.open(b"\0" * 128 + b"DICM" + b"\0" * 64, AAD)


@pytest.mark.parametrize(("algorithm", "length"), [("aes-256-gcm", 16), ("aes-256-gcm", 31), ("sm4-gcm", 32)])
def test_key_length_is_checked(algorithm: AeadAlgorithm, length: int) -> None:
    with pytest.raises(ValueError, match=f"got {length} bytes"):
        AeadSealer(algorithm, b"k" * length)


def test_no_seal_passes_through_but_refuses_a_sealed_file() -> None:
    plain: Sealer = NoSeal()
    assert plain.name == "none"
    data = b"\0" * 128 + b"DICM"
    assert plain.seal(data, AAD) is data
    assert plain.open(data, AAD) is data
    with pytest.raises(SealError, match="configure the key"):
        plain.open(sealer("aes-256-gcm").seal(data, AAD), AAD)


def test_make_sealer() -> None:
    assert isinstance(make_sealer("none", ""), NoSeal)
    aes = make_sealer("aes-256-gcm", AES_KEY.hex())
    sm4 = make_sealer("sm4-gcm", SM4_KEY.hex().upper())
    assert (aes.name, sm4.name) == ("aes-256-gcm", "sm4-gcm")
    assert sm4.open(sm4.seal(b"x", AAD), AAD) == b"x"
    with pytest.raises(ValueError, match="unknown spool encryption"):
        make_sealer("aes-128-cbc", AES_KEY.hex())
    secret_looking = "zz" + AES_KEY.hex()[2:]
    with pytest.raises(ValueError, match="not hexadecimal") as failure:
        make_sealer("aes-256-gcm", secret_looking)
    assert secret_looking not in str(failure.value)
    with pytest.raises(ValueError, match="32-byte key"):
        make_sealer("aes-256-gcm", SM4_KEY.hex())
