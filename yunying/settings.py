"""The one settings object, read from ``YUNYING_*`` environment variables.

Built once at the edge (CLI or test) and passed down; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DuplicatePolicy(StrEnum):
    """What to do when a SOP Instance UID arrives that is already stored."""

    KEEP_FIRST = "keep-first"
    OVERWRITE = "overwrite"
    REJECT = "reject"


class BlobBackend(StrEnum):
    FILESYSTEM = "filesystem"
    S3 = "s3"


class AtRestCompression(StrEnum):
    NONE = "none"
    JPEG_LS = "jpeg-ls"
    JPEG_2000 = "jpeg-2000"


# Variables read by the CLI or the test harness rather than by Settings.
_NOT_SETTINGS = frozenset({"YUNYING_ADMIN_PASSWORD_INIT", "YUNYING_NEW_PASSWORD", "YUNYING_SKIP_S3", "YUNYING_KEEP_S3",
                           "YUNYING_UPDATE_OPENAPI", "YUNYING_SHARED_DICOM", "YUNYING_FAULT_SEED"})


class Settings(BaseSettings):
    """Every knob of an archive node. Unknown ``YUNYING_*`` variables fail at start-up."""

    model_config = SettingsConfigDict(env_prefix="YUNYING_", extra="forbid")

    data_dir: Path = Path("./data")
    database_url: str = ""  # empty: sqlite file under data_dir

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_url: str = ""  # base URL clients see (RetrieveURL); empty: http(s)://host:port
    # Built web viewer (``npm run build`` in viewer/, done by set-up); served at /viewer.
    viewer_dist: Path = Path(__file__).resolve().parent.parent / "viewer" / "dist"
    tls_cert_file: str = ""  # PEM certificate (chain) for HTTPS; empty: plain HTTP (behind a TLS proxy)
    tls_key_file: str = ""

    dicom_host: str = "127.0.0.1"
    dicom_port: int = 11112
    ae_title: str = "YUNYING"
    # Calling AE titles allowed to associate; empty list allows any.
    allowed_calling_aes: list[str] = Field(default_factory=list)
    # Move/commitment destinations: "AET@host:port".
    remote_aes: list[str] = Field(default_factory=list)
    dimse_max_associations: int = 32

    # HL7 v2 ORU^R01 over MLLP (docs/reports.md); port 0: no listener (``serve --demo`` uses 2575).
    hl7_host: str = "127.0.0.1"
    hl7_port: int = Field(default=0, ge=0, le=65535)
    # MSH-4 sending facility (namespace id) → institution code; "*" for any facility; others get AR.
    hl7_facilities: dict[str, str] = Field(default_factory=dict)

    blob_backend: BlobBackend = BlobBackend.FILESYSTEM
    s3_endpoint: str = ""
    s3_bucket: str = "yunying"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"

    duplicate_policy: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST
    compression_at_rest: AtRestCompression = AtRestCompression.NONE
    max_instance_bytes: int = 2 * 1024**3
    max_request_bytes: int = 4 * 1024**3

    # Security (docs/security.md)
    field_cipher: str = Field(default="aes-256-gcm", pattern="^(aes-256-gcm|sm4-gcm)$")  # sensitive patient fields
    field_key: str = ""  # hex (32 bytes for AES-256, 16 for SM4); empty: sensitive fields are not stored at all
    field_hash_key: str = ""  # hex, >= 32 bytes: keyed hash for matching encrypted fields
    # Per-image retrievals (frames, rendered, thumbnails, bulk data) of one user and study within this many
    # seconds make one audit entry (yunying.auth.audit_bursts); 0 records every request.
    audit_burst_seconds: float = Field(default=300, ge=0)
    audit_hash: str = Field(default="sha256", pattern="^(sha256|sm3)$")  # the audit chain's hash
    audit_syslog: str = ""  # "udp://host:514" or "tcp://host:6514": also send DICOM (ATNA) audit messages
    session_idle_minutes: int = Field(default=30, ge=1)  # a web session locks after this long without use
    session_max_hours: int = Field(default=12, ge=1)  # and ends after this long in any case
    cors_origins: list[str] = Field(default_factory=list)  # origins allowed to call the API from a browser
    login_rate_per_minute: int = Field(default=10, ge=1)  # per client address, on every API node together
    public_rate_per_minute: int = Field(default=60, ge=1)  # per client address, for public endpoints
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)  # JSON and form bodies; larger → 413

    # Background jobs (yunying.jobs; docs/operate.md): worker threads in `yunying serve` (0: none, run
    # `yunying worker` instead), how often an idle worker looks for work, how long a claimed job is
    # reserved before another worker may take it over (renewed while it runs), attempts before "failed".
    job_workers: int = Field(default=1, ge=0, le=64)
    job_poll_seconds: float = Field(default=1.0, gt=0)
    job_lease_seconds: float = Field(default=300.0, ge=5)
    job_max_attempts: int = Field(default=5, ge=1)
    # Electronic film sheets (yunying.film; docs/cloudfilm.md "Films"): at most this many sheets per exam
    # (larger series are evenly subsampled), printed at this resolution on 14x17 inch sheets, composed this
    # long after the last new image of an exam that has a final report (a burst of images: one film).
    film_max_sheets: int = Field(default=6, ge=1, le=50)
    film_dpi: int = Field(default=150, ge=50, le=600)
    film_settle_seconds: float = Field(default=30.0, ge=0)
    film_font: str = ""  # a TrueType/TTC font with CJK glyphs; empty: the first of yunying.film.layout.FONTS found
    # Downloads and de-identification (docs/cloudfilm.md §6, docs/security.md)
    download_part_bytes: int = Field(default=500 * 1024**2, ge=64 * 1024)  # each ZIP part at most this big
    download_valid_hours: int = Field(default=72, ge=1)  # then the parts are deleted
    deid_key: str = ""  # hex, >= 32 bytes: key of UID replacement for anonymous shares; empty: one kept in the blob store
    # Patients' shares (docs/cloudfilm.md §5) and feedback tickets (CF-10)
    share_max_days: int = Field(default=30, ge=1, le=365)  # the longest a share may last
    share_password_failures: int = Field(default=5, ge=1)  # wrong passwords (all visitors together) before ...
    share_lock_minutes: int = Field(default=30, ge=1)  # ... the share refuses every password for this long
    feedback_per_hour: int = Field(default=10, ge=1)  # tickets per patient or share visitor (staff: unlimited)
    # Notifications (yunying.notify, docs/operate.md): "outbox" keeps messages in the table only (development,
    # tests, the admin outbox page); "http" posts SMS to a gateway; "smtp" sends e-mail.
    notify_provider: str = Field(default="outbox", pattern="^(outbox|smtp|http)$")  # for SMS
    notify_email_provider: str = Field(default="outbox", pattern="^(outbox|smtp|http)$")  # for e-mail
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""  # from the environment or a secret store, never from a file in the repository
    smtp_from: str = ""
    smtp_starttls: bool = True
    sms_http_url: str = ""  # the SMS gateway's send URL
    # JSON body template: every string in it has "{to}" and "{text}" replaced (values JSON-encoded by the library)
    sms_http_body: str = '{"to": "{to}", "text": "{text}"}'
    sms_http_auth: str = ""  # the Authorization header value (from the environment), e.g. "Bearer …"

    log_level: str = "INFO"
    workers: int = Field(default=1, ge=1, le=64)  # processes for HTTP and DIMSE (SO_REUSEPORT)

    @field_validator("ae_title")
    @classmethod
    def _ae_title_valid(cls, value: str) -> str:
        if not value or len(value) > 16 or "\\" in value:
            raise ValueError("AE title must be 1-16 characters without backslash")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self

    @classmethod
    def unknown_environment(cls, environ: dict[str, str]) -> list[str]:
        """``YUNYING_*`` variables that are no setting (typos would otherwise be silently ignored)."""
        known = {f"YUNYING_{name.upper()}" for name in cls.model_fields} | _NOT_SETTINGS
        return sorted(k for k in environ if k.startswith("YUNYING_") and k not in known
                      and not k.startswith(("YUNYING_TEST_", "YUNYING_GATEWAY_")))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'index.sqlite3').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def effective_public_url(self) -> str:
        scheme = "https" if self.tls_cert_file else "http"
        return (self.public_url or f"{scheme}://{self.http_host}:{self.http_port}").rstrip("/")

    def remote_ae_table(self) -> dict[str, tuple[str, int]]:
        """Parse ``remote_aes`` into ``{AET: (host, port)}``; malformed entries fail loudly."""
        table: dict[str, tuple[str, int]] = {}
        for entry in self.remote_aes:
            try:
                aet, hostport = entry.split("@", 1)
                host, port = hostport.rsplit(":", 1)
                table[aet.strip()] = (host, int(port))
            except ValueError as exc:
                raise ValueError(f"remote AE {entry!r} is not AET@host:port") from exc
        return table
