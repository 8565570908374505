"""Wire the parts together from one Settings object (the only place that does)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from yunying.archive.ingest import Ingest, IngestPolicy
from yunying.archive.query import QueryService
from yunying.archive.retrieve import RetrieveService
from yunying.auth.audit import configure as configure_audit
from yunying.auth.audit_bursts import AuditBursts
from yunying.auth.fieldcrypt import FieldCipher
from yunying.cloudfilm import tokens as cloudfilm_tokens
from yunying.film.service import FILM, FilmComposer, FilmConfig, FilmOnFinal, FilmOnNewImages
from yunying.index.db import make_engine, make_sessionmaker
from yunying.jobs.worker import Handler, Worker, start_workers
from yunying.notify import Notifiers, make_notifiers
from yunying.reports import events
from yunying.reports.dicom import ReportHook
from yunying.settings import BlobBackend, Settings
from yunying.storage.base import BlobStore
from yunying.storage.filesystem import FilesystemBlobStore


def make_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_backend is BlobBackend.S3:
        from yunying.storage.s3 import S3BlobStore

        if not settings.s3_endpoint:
            raise ValueError("YUNYING_S3_ENDPOINT is required when YUNYING_BLOB_BACKEND=s3")
        return S3BlobStore(settings.s3_endpoint, settings.s3_bucket, settings.s3_access_key,
                           settings.s3_secret_key, settings.s3_region)
    return FilesystemBlobStore(settings.blob_dir)


@dataclass
class Archive:
    """Everything an adapter (DIMSE, DICOMweb, CLI) needs, built once per process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    ingest: Ingest
    query: QueryService
    retrieve: RetrieveService
    fields: FieldCipher | None = None  # sensitive patient fields (None: not stored)
    audit_bursts: AuditBursts = field(default_factory=lambda: AuditBursts(0))  # per-image audit coalescing
    film: FilmConfig = field(default_factory=FilmConfig)
    notifiers: Notifiers | None = None  # SMS / e-mail providers (yunying.notify)

    def close(self) -> None:
        self.engine.dispose()


def build_archive(settings: Settings) -> Archive:
    fields = FieldCipher.from_settings(settings)  # a bad key fails here, at start-up
    notifiers = make_notifiers(settings)  # an unknown or incomplete provider fails here too
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    sessions = make_sessionmaker(engine)
    configure_audit(sessions, algorithm=settings.audit_hash, syslog=settings.audit_syslog, source_id=settings.ae_title)
    blobs = make_blob_store(settings)
    policy = IngestPolicy(settings.duplicate_policy, settings.compression_at_rest, settings.max_instance_bytes)
    ingest = Ingest(sessions, blobs, policy, fields)
    ingest.after_store.append(ReportHook(sessions))  # SR / PDF → reports; reports waiting for their study
    film = FilmConfig.from_settings(settings)
    events.listen(FilmOnFinal(film))  # a final report queues the exam's film
    ingest.after_store.append(FilmOnNewImages(sessions, film))  # new images of a reported exam: a new film
    cloudfilm_tokens.configure(sessions, settings.effective_public_url, fields)
    events.listen(cloudfilm_tokens.on_final)  # a final report → the exam's cloud-film token (decision 0010)
    return Archive(settings, engine, sessions, blobs, ingest, QueryService(sessions), RetrieveService(sessions, blobs),
                   fields, AuditBursts(settings.audit_burst_seconds), film=film, notifiers=notifiers)


def job_handlers(archive: Archive) -> dict[str, Handler]:
    """THE job handler table (yunying.jobs): job kind → the function that does it."""
    return {FILM: FilmComposer(archive.sessions, archive.blobs, archive.film)}


def start_job_workers(archive: Archive, count: int | None = None) -> list[Worker]:
    """Start ``count`` (default ``job_workers``) worker threads running :func:`job_handlers`."""
    settings = archive.settings
    return start_workers(archive.sessions, job_handlers(archive), settings.job_workers if count is None else count,
                         poll_seconds=settings.job_poll_seconds, lease_seconds=settings.job_lease_seconds)


def stop_job_workers(workers: list[Worker], timeout: float = 5.0) -> None:
    """Stop claiming; give each job in hand ``timeout`` seconds (an unfinished one runs again after its lease)."""
    for worker in workers:
        worker.stop(timeout)
