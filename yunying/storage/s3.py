"""S3-compatible object store back-end (AWS S3, MinIO, Ceph RGW, OpenStack Swift s3api, …).

Integrity is checked at both ends of the wire:

* ``put`` sends ``Content-MD5`` *and* ``x-amz-checksum-sha256``; the store recomputes
  them from the bytes it received and rejects the write (``BadDigest``) on a mismatch.
  ``put`` returns only after the store acknowledged the write.
* The hex SHA-256 of the data is also stored as user metadata (``x-amz-meta-sha256``);
  ``get`` hashes what it received and compares. A mismatch is retried once (a
  replicated store may serve the next read from a healthy replica) and then raised as
  :class:`~yunying.errors.CorruptBlob`, so wrong bytes are never returned silently.

The SDK's automatic request/response checksums (botocore >= 1.36 adds a CRC32 and,
over HTTPS, an ``aws-chunked`` trailer to every upload) are switched to
``when_required``: the explicit headers above cover the same ground and are accepted
by far more S3-compatible servers than streaming trailers are.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from yunying.errors import CorruptBlob, NotFound
from yunying.storage.base import BlobInfo, checksum

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

#: User-metadata key under which the hex SHA-256 of every object is stored.
SHA256_METADATA_KEY = "sha256"

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_GET_ATTEMPTS = 2


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_not_found(exc: ClientError) -> bool:
    return _error_code(exc) in _NOT_FOUND_CODES or _status(exc) == 404


class S3BlobStore:
    """Blobs as objects in one bucket of an S3-compatible store.

    Parameters
    ----------
    endpoint
        Base URL of the S3 API, e.g. ``http://127.0.0.1:9000``.
    bucket
        Bucket holding every blob; created if it does not exist.
    access_key, secret_key
        Credentials (SigV4).
    region
        Signing region, and the bucket's location constraint when it is created.

    Notes
    -----
    Uses path-style addressing (``endpoint/bucket/key``), which every S3-compatible
    server supports. The single boto3 client is created here and is thread-safe, so
    one instance can be shared by all worker threads.
    """

    name = "s3"

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        config = Config(
            region_name=region,
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A private session: the default boto3 session is not safe to use for creating
        # clients concurrently, the client itself is.
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
        )
        self._client: S3Client = session.client("s3", endpoint_url=endpoint, config=config)
        self._ensure_bucket()

    @property
    def client(self) -> S3Client:
        """The underlying boto3 S3 client (for diagnostics and tests)."""
        return self._client

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if not _is_not_found(exc):
                raise
        try:
            if self.region == "us-east-1":
                self._client.create_bucket(Bucket=self.bucket)
            else:
                self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": cast("BucketLocationConstraintType", self.region)},
                )
        except ClientError as exc:
            # Another process created it between our HEAD and PUT.
            if _error_code(exc) not in {
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            }:
                raise

    @staticmethod
    def _check_key(key: str) -> str:
        # Same key rules as the filesystem back-end, so keys are portable between them.
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid blob key {key!r}")
        return key

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any previous object.

        Parameters
        ----------
        key
            Slash-separated blob key.
        data
            The bytes to store.

        Raises
        ------
        botocore.exceptions.ClientError
            The store refused the write, e.g. ``BadDigest`` when the bytes were damaged
            in transit. Nothing is stored under ``key`` in that case.

        Notes
        -----
        Returns only after the store acknowledged the write (for Swift: after a quorum
        of replicas is on disk).
        """
        self._check_key(key)
        body = bytes(data)
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode("ascii")
        sha256 = hashlib.sha256(body).digest()
        self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentLength=len(body),
            ContentMD5=md5,
            ChecksumSHA256=base64.b64encode(sha256).decode("ascii"),
            ContentType="application/octet-stream",
            Metadata={SHA256_METADATA_KEY: sha256.hex()},
        )

    def _read(self, key: str) -> tuple[bytes, str | None]:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                raise NotFound(f"blob {key} is missing") from exc
            raise
        body = response["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        return data, response.get("Metadata", {}).get(SHA256_METADATA_KEY)

    def get(self, key: str) -> bytes:
        """Return the bytes stored under ``key``.

        Parameters
        ----------
        key
            Slash-separated blob key.

        Returns
        -------
        bytes
            The object's content.

        Raises
        ------
        NotFound
            No object under ``key``.
        CorruptBlob
            The bytes received do not match the SHA-256 recorded when the object was
            written, on two consecutive reads.
        """
        self._check_key(key)
        actual = ""
        recorded = ""
        for _ in range(_GET_ATTEMPTS):
            data, recorded_meta = self._read(key)
            if recorded_meta is None:
                # Not written by this class: nothing to check against here; callers
                # use get_verified with the checksum in the index.
                return data
            recorded = recorded_meta
            actual = checksum(data)
            if actual == recorded:
                return data
        raise CorruptBlob(f"blob {key} is damaged: checksum {actual[:12]}… != stored {recorded[:12]}…")

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it does not exist.

        Parameters
        ----------
        key
            Slash-separated blob key.
        """
        self._check_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if not _is_not_found(exc):
                raise

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``.

        Parameters
        ----------
        key
            Slash-separated blob key.

        Returns
        -------
        bool
            ``True`` if a HEAD request for the object succeeds.
        """
        self._check_key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                return False
            raise
        return True

    def iter_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every stored key that starts with ``prefix``, with its size.

        Parameters
        ----------
        prefix
            Plain string prefix of the keys (pass ``"dicom/"``, with the trailing
            slash, for "everything under the dicom directory").

        Yields
        ------
        BlobInfo
            One per object, in lexicographic key order, paging through
            ``ListObjectsV2`` 1000 keys at a time.
        """
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield BlobInfo(key=obj["Key"], size=obj["Size"], modified=obj["LastModified"].timestamp())

    def local_path(self, key: str) -> Path | None:
        """Always ``None``: objects have no local filesystem path.

        Parameters
        ----------
        key
            Slash-separated blob key (ignored).

        Returns
        -------
        None
        """
        return None


__all__ = ["SHA256_METADATA_KEY", "S3BlobStore"]
