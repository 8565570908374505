"""THE durable ingest path. C-STORE, STOW-RS and the importer all call :meth:`Ingest.store_instance`.

Order of operations (the ack comes only after the last step):
parse + validate → (optional lossless compression, pixel-verified) → blob put (fsync /
object-store ack) → index row commit. A crash before the commit leaves at most an
unreferenced content-addressed blob, which ``yunying fsck`` reports as collectable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yunying.archive.compression import compress_for_storage
from yunying.dicom.parse import ParsedInstance, parse_instance
from yunying.errors import InvalidDicom
from yunying.index import repository
from yunying.index.db import write_session
from yunying.settings import AtRestCompression, DuplicatePolicy
from yunying.storage.base import BlobStore, checksum, content_key

log = logging.getLogger(__name__)

AfterStore = Callable[[ParsedInstance, Dataset, int | None], None]


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # already stored; first copy kept (keep-first policy)
    OVERWRITTEN = "overwritten"
    REJECTED = "rejected"


class Failure(StrEnum):
    """Why an instance was refused; adapters map these to DIMSE / STOW statuses."""

    INVALID = "invalid"  # cannot be parsed or lacks required attributes
    TOO_LARGE = "too-large"
    STUDY_MISMATCH = "study-mismatch"  # STOW to /studies/{uid} with another study's instance
    DUPLICATE = "duplicate"  # reject policy
    STORAGE = "storage"  # blob store or database failed; nothing acknowledged
    NOT_OWNER = "not-owner"  # the study belongs to another institution


NOT_OWNER_REASON = "this institution may not store instances into this study"


@dataclass(frozen=True)
class StoreResult:
    outcome: Outcome
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    transfer_syntax_uid: str = ""
    failure: Failure | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is not Outcome.REJECTED


@dataclass(frozen=True)
class IngestPolicy:
    duplicates: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST
    compression: AtRestCompression = AtRestCompression.NONE
    max_instance_bytes: int = 2 * 1024**3


class Ingest:
    """Stores instances durably and indexes them.

    ``cipher`` protects the patient's ID card number and phone in the index (encrypted + keyed hash);
    without one they are not stored in the index at all.
    """

    def __init__(self, sessions: sessionmaker[Session], blobs: BlobStore, policy: IngestPolicy,
                 cipher: repository.SensitiveCipher | None = None) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.policy = policy
        self.cipher = cipher
        # Called after an instance is stored or overwritten, before the adapter acknowledges (e.g. reports from
        # SR / PDF, linking reports that arrived before their images); wired in yunying.compose.
        self.after_store: list[AfterStore] = []

    def store_instance(self, data: bytes, origin: str, expected_study_uid: str | None = None, *,
                       institution_id: int | None) -> StoreResult:
        """Store one DICOM Part 10 instance for ``institution_id``; return its outcome. Never raises for bad input.

        The instance's study belongs to the institution that first stored it; another institution's
        instance for that study is refused (without saying whose it is).
        """
        if len(data) > self.policy.max_instance_bytes:
            return StoreResult(Outcome.REJECTED, failure=Failure.TOO_LARGE,
                               reason=f"instance of {len(data)} bytes exceeds the limit of {self.policy.max_instance_bytes}")
        try:
            parsed, dataset = parse_instance(data)
        except InvalidDicom as exc:
            return StoreResult(Outcome.REJECTED, failure=Failure.INVALID, reason=str(exc))
        ids: dict[str, Any] = {
            "sop_class_uid": parsed.sop_class_uid,
            "sop_instance_uid": parsed.sop_instance_uid,
            "study_uid": parsed.study_uid,
            "series_uid": parsed.series_uid,
        }
        if expected_study_uid and parsed.study_uid != expected_study_uid:
            return StoreResult(Outcome.REJECTED, failure=Failure.STUDY_MISMATCH,
                               reason="Study Instance UID of the instance differs from the target study", **ids)
        with self.sessions() as session:
            owner = repository.study_owner(session, parsed.study_uid)
            existing = repository.stored_transfer_syntax(session, parsed.sop_instance_uid)
        if owner is not None and owner[0] != institution_id:
            return StoreResult(Outcome.REJECTED, failure=Failure.NOT_OWNER, reason=NOT_OWNER_REASON, **ids)
        if existing is not None:
            if self.policy.duplicates is DuplicatePolicy.KEEP_FIRST:
                return StoreResult(Outcome.DUPLICATE, transfer_syntax_uid=existing,
                                   reason="SOP Instance UID already stored; first copy kept", **ids)
            if self.policy.duplicates is DuplicatePolicy.REJECT:
                return StoreResult(Outcome.REJECTED, failure=Failure.DUPLICATE,
                                   reason="SOP Instance UID already stored; duplicates are refused", **ids)
        stored_bytes, stored_ts = data, parsed.transfer_syntax_uid
        if self.policy.compression is not AtRestCompression.NONE and parsed.has_pixels and parsed.pixels_plausible:
            compressed = compress_for_storage(dataset, parsed.transfer_syntax_uid, self.policy.compression)
            if compressed is not None and len(compressed[0]) < len(data):
                stored_bytes, stored_ts = compressed
        try:
            result = self._persist(parsed, data, stored_bytes, stored_ts, origin, ids, overwrite=existing is not None,
                                   institution_id=institution_id)
        except Exception as exc:
            log.exception("storing an instance failed")
            return StoreResult(Outcome.REJECTED, failure=Failure.STORAGE, reason=f"storage failure: {type(exc).__name__}", **ids)
        if result.outcome in (Outcome.STORED, Outcome.OVERWRITTEN):
            self._after_store(parsed, dataset, institution_id)
        return result

    def _after_store(self, parsed: ParsedInstance, dataset: Dataset, institution_id: int | None) -> None:
        """Run the ``after_store`` hooks; the instance is durable already, so a failing hook is logged, not returned."""
        for hook in self.after_store:
            try:
                hook(parsed, dataset, institution_id)
            except Exception as exc:
                log.error("ingest: after-store hook %s failed: %s", type(hook).__name__, type(exc).__name__)

    def _persist(self, parsed: ParsedInstance, received: bytes, stored: bytes, stored_ts: str, origin: str,
                 ids: dict[str, Any], *, overwrite: bool, institution_id: int | None) -> StoreResult:
        received_sum = checksum(received)
        digest = received_sum if stored is received else checksum(stored)
        key = content_key(digest)
        # Always (re)write, even if the key exists: an existing blob may be an old orphan of a crashed
        # store, which `fsck --repair` deletes once it is older than its grace period. Rewriting renews
        # it (fresh mtime) before the index row below makes it referenced.
        self.blobs.put(key, stored)
        fields: dict[str, Any] = {"blob_key": key, "blob_size": len(stored), "checksum": digest, "transfer_syntax_uid": stored_ts,
                  "received_size": len(received), "received_checksum": received_sum, "origin": origin}
        old_key = None
        try:
            with write_session(self.sessions) as session:
                current = repository.find_instance(session, parsed.sop_instance_uid)
                if current is None:
                    repository.add_instance(session, parsed, institution_id, cipher=self.cipher, **fields)
                    outcome = Outcome.STORED
                elif overwrite and self.policy.duplicates is DuplicatePolicy.OVERWRITE:
                    old_key = repository.replace_instance_blob(session, current, parsed=parsed, **fields)
                    outcome = Outcome.OVERWRITTEN
                else:  # a concurrent store of the same instance won the race
                    session.rollback()
                    return self._lost_race(ids)
                session.commit()
        except IntegrityError:
            return self._lost_race(ids)
        except repository.NotOwner:
            return StoreResult(Outcome.REJECTED, failure=Failure.NOT_OWNER, reason=NOT_OWNER_REASON, **ids)
        if old_key and old_key != key:
            self._delete_if_unreferenced(old_key)
        return StoreResult(outcome, transfer_syntax_uid=stored_ts, **ids)

    def _lost_race(self, ids: dict[str, Any]) -> StoreResult:
        if self.policy.duplicates is DuplicatePolicy.REJECT:
            return StoreResult(Outcome.REJECTED, failure=Failure.DUPLICATE,
                               reason="SOP Instance UID already stored; duplicates are refused", **ids)
        return StoreResult(Outcome.DUPLICATE, reason="SOP Instance UID already stored; first copy kept", **ids)

    def _delete_if_unreferenced(self, key: str) -> None:
        from sqlalchemy import select

        from yunying.index.models import Instance

        with self.sessions() as session:
            still_used = session.execute(select(Instance.id).where(Instance.blob_key == key).limit(1)).first()
        if still_used is None:
            self.blobs.delete(key)
