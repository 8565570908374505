"""The BlobStore contract, run against the filesystem back-end and a real S3 store.

The S3 back-end is OpenStack Swift with its s3api middleware (3 replicas on 3 device
directories), started by the session fixture in ``conftest.py``. Tests marked ``s3``
need it; the Swift-specific ones at the bottom also reach into its data directory to
damage replicas on disk.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError

from yunying.errors import CorruptBlob, NotFound
from yunying.storage.base import BlobInfo, BlobStore, checksum, content_key, get_verified
from yunying.storage.filesystem import FilesystemBlobStore
from yunying.storage.s3 import SHA256_METADATA_KEY, S3BlobStore

from .conftest import S3Peer

MiB = 1024 * 1024


def _s3_store(peer: S3Peer, bucket: str) -> S3BlobStore:
    return S3BlobStore(
        endpoint=peer.endpoint,
        bucket=bucket,
        access_key=peer.access_key,
        secret_key=peer.secret_key,
        region=peer.region,
    )


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "blobs")
    peer: S3Peer = request.getfixturevalue("s3_peer")
    bucket: str = request.getfixturevalue("s3_bucket")
    return _s3_store(peer, bucket)


@pytest.fixture
def s3_store(s3_peer: S3Peer, s3_bucket: str) -> S3BlobStore:
    return _s3_store(s3_peer, s3_bucket)


def _tamper(store: BlobStore, key: str, data: bytes) -> None:
    """Replace the bytes under ``key`` without going through ``store.put``."""
    if isinstance(store, FilesystemBlobStore):
        path = store.local_path(key)
        assert path is not None
        path.write_bytes(data)
    elif isinstance(store, S3BlobStore):
        # Straight through the S3 API with a separate client: no sha256 metadata, as
        # if some other writer (or a bug) had replaced the object.
        store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
    else:  # pragma: no cover
        raise AssertionError(f"don't know how to tamper with {store.name}")


def _keys(blobs: Iterator[BlobInfo]) -> dict[str, int]:
    return {info.key: info.size for info in blobs}


# ------------------------------------------------------- Swift replicas on disk
# These come first in the file on purpose: ``s3.sh audit`` visits every object and
# tombstone in the peer at 20 files/s, so it is quickest before the other tests ran.


def _swift_replicas(peer: S3Peer, bucket: str, key: str) -> list[Path]:
    """The ``.data`` files of one object, one per replica (Swift's on-disk layout).

    Swift stores an object at ``srv/node/<dev>/objects/<part>/<suffix>/<hash>/<ts>.data``
    where ``hash = md5(prefix + "/<account>/<container>/<object>" + suffix)``; the s3api
    maps a bucket to a container in the tempauth account ``AUTH_test``.
    """
    conf = configparser.ConfigParser()
    conf.read(peer.data_dir / "etc" / "swift.conf")
    prefix = conf.get("swift-hash", "swift_hash_path_prefix", fallback="")
    suffix = conf.get("swift-hash", "swift_hash_path_suffix", fallback="")
    name_hash = hashlib.md5(f"{prefix}/AUTH_test/{bucket}/{key}{suffix}".encode()).hexdigest()
    return sorted(peer.data_dir.glob(f"srv/node/d*/objects/*/*/{name_hash}/*.data"))


def _flip_bytes(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    for offset in (0, len(raw) // 2, len(raw) - 1):
        raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))  # same size, so only a content check can notice


def _quarantined(peer: S3Peer, replica: Path) -> list[Path]:
    device = replica.parents[4]  # srv/node/dX
    return list(device.glob(f"quarantined/objects/{replica.parent.name}/*.data"))


@pytest.fixture
def put_replicated(s3_peer: S3Peer, s3_store: S3BlobStore, s3_bucket: str) -> Callable[[str, bytes], list[Path]]:
    if os.environ.get("S3_BACKEND", "swift") != "swift":
        pytest.skip("needs the swift back-end of s3.sh (S3_BACKEND is set to something else)")

    def put(key: str, data: bytes) -> list[Path]:
        s3_store.put(key, data)
        replicas = _swift_replicas(s3_peer, s3_bucket, key)
        assert len(replicas) == 3, (
            f"expected 3 replica files under {s3_peer.data_dir}, found {replicas}; is another S3 peer holding {s3_peer.endpoint}?"
        )
        assert all(r.read_bytes() == data for r in replicas)
        return replicas

    return put


def _audit(peer: S3Peer) -> None:
    proc = peer.run("audit", timeout=600)
    assert proc.returncode == 0, f"s3.sh audit failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.s3
def test_swift_auditor_quarantines_corrupt_replica_and_reads_stay_correct(
    s3_peer: S3Peer,
    s3_store: S3BlobStore,
    s3_bucket: str,
    put_replicated: Callable[[str, bytes], list[Path]],
) -> None:
    data = os.urandom(256 * 1024)
    key = content_key(checksum(data))
    replicas = put_replicated(key, data)
    bad = replicas[1]
    _flip_bytes(bad)

    _audit(s3_peer)  # replicator pass, then auditor pass

    assert not bad.exists(), "the auditor should have moved the damaged replica away"
    quarantined = _quarantined(s3_peer, bad)
    assert len(quarantined) == 1 and quarantined[0].read_bytes() != data
    survivors = _swift_replicas(s3_peer, s3_bucket, key)
    assert len(survivors) == 2 and all(r.read_bytes() == data for r in survivors)

    for _ in range(10):  # the proxy shuffles replicas; every read must be served by a good one
        assert s3_store.get(key) == data
    assert get_verified(s3_store, key, checksum(data)) == data

    _audit(s3_peer)  # next replicator pass re-creates the missing replica from a good one
    restored = _swift_replicas(s3_peer, s3_bucket, key)
    assert len(restored) == 3 and all(r.read_bytes() == data for r in restored)


@pytest.mark.s3
def test_swift_one_corrupt_replica_before_audit_never_returns_wrong_bytes(
    s3_store: S3BlobStore, put_replicated: Callable[[str, bytes], list[Path]]
) -> None:
    """Before the auditor ran, a GET may be served from the damaged replica.

    Swift's object server streams the file and only notices the MD5 mismatch when it
    has sent everything (it then quarantines the file); the response still carries the
    correct ETag, and the body is wrong. Which replica serves a GET is random (the proxy
    shuffles nodes), so this test cannot pin down which path is taken. What it does
    require: every read returns the original bytes or raises CorruptBlob, never other
    bytes. (S3BlobStore.get checks the recorded SHA-256 and re-reads once, so in
    practice it returns the original bytes.)
    """
    data = os.urandom(128 * 1024)
    key = content_key(checksum(data))
    replicas = put_replicated(key, data)
    _flip_bytes(replicas[0])
    for _ in range(10):
        try:
            assert get_verified(s3_store, key, checksum(data)) == data
        except CorruptBlob:
            pass


@pytest.mark.s3
def test_swift_all_replicas_corrupt_raises_corrupt_blob(
    s3_store: S3BlobStore, put_replicated: Callable[[str, bytes], list[Path]]
) -> None:
    """Every replica damaged: Swift answers 200 with wrong bytes; the store must refuse them."""
    data = os.urandom(64 * 1024)
    key = content_key(checksum(data))
    for replica in put_replicated(key, data):
        _flip_bytes(replica)
    with pytest.raises(CorruptBlob):
        s3_store.get(key)


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("size", [0, 1, 1000, 5 * MiB + 123], ids=["empty", "1B", "1kB", "5MB"])
def test_put_get_round_trip(store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    key = content_key(checksum(data))
    store.put(key, data)
    assert store.get(key) == data
    assert get_verified(store, key, checksum(data)) == data


def test_exists_and_delete(store: BlobStore) -> None:
    key = "dicom/aa/bb/exists-delete"
    assert not store.exists(key)
    store.put(key, b"payload")
    assert store.exists(key)
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(NotFound):
        store.get(key)
    store.delete(key)  # deleting an absent key is not an error
    store.delete("dicom/never/was/here")


def test_get_missing_raises_not_found(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        store.get("dicom/00/00/missing")
    # through get_verified the key is one the index recorded: its absence is damage, not "not found"
    with pytest.raises(CorruptBlob):
        get_verified(store, "dicom/00/00/missing", checksum(b""))


def test_iter_blobs_lists_exactly_what_was_put(store: BlobStore) -> None:
    assert list(store.iter_blobs()) == []
    expected: dict[str, int] = {}
    for i in range(12):
        data = os.urandom(100 + i)
        key = content_key(checksum(data))
        store.put(key, data)
        expected[key] = len(data)
    others = {"other/x/one": b"1", "other/y/two": b"22", "other/y/three": b"333"}
    for key, data in others.items():
        store.put(key, data)
        expected[key] = len(data)

    assert _keys(store.iter_blobs()) == expected
    assert len(list(store.iter_blobs())) == len(expected)  # no duplicates
    # Prefixes that end on a path-segment boundary mean the same on every back-end
    # (S3 prefixes are plain string prefixes, filesystem ones are directories).
    assert _keys(store.iter_blobs("other/y")) == {"other/y/two": 2, "other/y/three": 3}
    assert _keys(store.iter_blobs("other/y/")) == {"other/y/two": 2, "other/y/three": 3}
    assert _keys(store.iter_blobs("dicom")) == {k: v for k, v in expected.items() if k.startswith("dicom/")}
    assert _keys(store.iter_blobs("nothing/here/")) == {}

    store.delete("other/x/one")
    del expected["other/x/one"]
    assert _keys(store.iter_blobs()) == expected


def test_overwrite_replaces_content(store: BlobStore) -> None:
    key = "dicom/ov/er/write"
    first, second = os.urandom(3000), os.urandom(17)
    store.put(key, first)
    store.put(key, second)
    assert store.get(key) == second
    assert get_verified(store, key, checksum(second)) == second
    with pytest.raises(CorruptBlob):
        get_verified(store, key, checksum(first))
    assert _keys(store.iter_blobs("dicom/ov/")) == {key: len(second)}


def test_get_verified_detects_bytes_changed_behind_the_store(store: BlobStore) -> None:
    data = os.urandom(64 * 1024)
    key = content_key(checksum(data))
    store.put(key, data)
    damaged = bytearray(data)
    damaged[1000] ^= 0xFF
    _tamper(store, key, bytes(damaged))
    with pytest.raises(CorruptBlob):
        get_verified(store, key, checksum(data))


def test_local_path(store: BlobStore) -> None:
    store.put("dicom/lo/ca/l", b"abc")
    path = store.local_path("dicom/lo/ca/l")
    if store.name == "filesystem":
        assert path is not None and path.read_bytes() == b"abc"
    else:
        assert path is None


@pytest.mark.parametrize("key", ["", "/abs", "dicom/../escape"])
def test_invalid_keys_rejected(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")


def test_concurrent_puts_from_threads(store: BlobStore) -> None:
    blobs = {f"conc/{i:04d}": os.urandom(2000 + i) for i in range(64)}
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda item: store.put(*item), blobs.items()))
    with ThreadPoolExecutor(max_workers=16) as pool:
        got = dict(zip(blobs, pool.map(store.get, blobs), strict=True))
    assert got == blobs


# --------------------------------------------------------------------------- S3 only


@pytest.mark.s3
def test_s3_records_sha256_metadata(s3_store: S3BlobStore) -> None:
    data = os.urandom(4096)
    s3_store.put("meta/blob", data)
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key="meta/blob")
    assert head["Metadata"][SHA256_METADATA_KEY] == checksum(data)
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()


@pytest.mark.s3
def test_s3_bucket_created_once_and_reopened(s3_peer: S3Peer, s3_bucket: str) -> None:
    client = s3_peer.client()
    assert s3_bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    first = _s3_store(s3_peer, s3_bucket)
    assert s3_bucket in {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    first.put("k/v", b"kept")
    second = _s3_store(s3_peer, s3_bucket)  # existing bucket: reused, not emptied
    assert second.get("k/v") == b"kept"


@pytest.mark.s3
def test_s3_rejects_bytes_damaged_in_transit(s3_store: S3BlobStore) -> None:
    """Flip a byte of the request body after the checksums were computed: the store must refuse."""

    damaged_requests = []

    def damage_body(request: AWSPreparedRequest, **_: object) -> None:
        body = request.body
        raw = body.getvalue() if isinstance(body, io.BytesIO) else body
        assert isinstance(raw, bytes) and raw, f"unexpected request body {type(body)}"
        damaged = bytearray(raw)
        damaged[len(damaged) // 2] ^= 0x01  # same length: only a content check can notice
        request.body = io.BytesIO(bytes(damaged)) if isinstance(body, io.BytesIO) else bytes(damaged)
        damaged_requests.append(request)

    s3_store.client.meta.events.register("before-send.s3.PutObject", damage_body)
    try:
        with pytest.raises(ClientError) as excinfo:
            s3_store.put("transit/blob", os.urandom(10_000))
    finally:
        s3_store.client.meta.events.unregister("before-send.s3.PutObject", damage_body)
    assert damaged_requests
    code = excinfo.value.response["Error"]["Code"]
    assert code in {"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"}, code
    assert not s3_store.exists("transit/blob")


@pytest.mark.s3
def test_s3_get_refuses_bytes_not_matching_stored_sha256(s3_store: S3BlobStore) -> None:
    """Object bytes replaced but the recorded sha256 kept (bit rot as seen through the API)."""
    data = os.urandom(8192)
    s3_store.put("rot/blob", data)
    s3_store.client.put_object(
        Bucket=s3_store.bucket,
        Key="rot/blob",
        Body=b"X" + data[1:],
        Metadata={SHA256_METADATA_KEY: checksum(data)},
    )
    with pytest.raises(CorruptBlob):
        s3_store.get("rot/blob")


@pytest.mark.s3
def test_s3_iter_blobs_follows_continuation_pages(s3_store: S3BlobStore) -> None:
    """Force 7-key pages (MaxKeys) so paging is exercised without writing 1000+ objects."""
    keys = [f"many/{i:03d}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: s3_store.put(k, k.encode()), keys))
    s3_store.put("manz/outside", b"not under the prefix")
    pages = []

    def small_pages(params: dict[str, object], **_: object) -> None:
        params["MaxKeys"] = 7
        pages.append(params.get("ContinuationToken"))

    s3_store.client.meta.events.register("provide-client-params.s3.ListObjectsV2", small_pages)
    try:
        listed = list(s3_store.iter_blobs("many/"))
    finally:
        s3_store.client.meta.events.unregister("provide-client-params.s3.ListObjectsV2", small_pages)
    assert [b.key for b in listed] == keys
    assert all(b.size == len(b.key) for b in listed)
    assert len(pages) == 6 and pages[0] is None and all(pages[1:])
