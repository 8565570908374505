"""The gateway's one settings object: a TOML file, overridden by ``YUNYING_GATEWAY_*`` variables.

The gateway is its own process on a hospital machine with its own configuration (it needs
no database server and never reads the archive's settings).
"""

from __future__ import annotations

import json
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, get_origin

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from yunying.gateway.compress import Codec

ENV_PREFIX = "YUNYING_GATEWAY_"


class GatewaySettings(BaseSettings):
    """Every knob of one edge gateway. Unknown keys (file or environment) stop start-up."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    name: str = Field(default="gateway", pattern=r"^[A-Za-z0-9._-]{1,64}$")  # gateway id seen by the cloud
    institution: str = ""
    data_dir: Path = Path("./gateway-data")

    # Inputs
    dicom_host: str = "127.0.0.1"
    dicom_port: int = 11120
    ae_title: str = "CLOUD_GW"
    allowed_calling_aes: list[str] = Field(default_factory=list)  # empty: any
    drop_dir: Path | None = None
    drop_poll_s: float = 2.0
    pacs: str = ""  # hospital PACS "AET@host:port" for pull, backfill and reconciliation
    pacs_retrieve: str = Field(default="move", pattern="^(move|get)$")
    pacs_timeout_s: float = Field(default=120.0, gt=0)  # connect, association and each DIMSE response
    pull_interval_s: float = 0.0  # 0: no scheduled pull of recent exams
    pull_days: int = Field(default=1, ge=1)  # a scheduled pull looks this many days back
    pull_modalities: list[str] = Field(default_factory=list)

    # Lanes: "<lane>:<Keyword>=<glob>[&<Keyword>=<glob>...]", first match wins, default routine.
    lane_rules: list[str] = Field(default_factory=list)

    # Cloud
    cloud_url: str = ""  # DICOMweb base, e.g. https://cloud.example/dicom-web
    cloud_token: str = ""  # bearer token (yunying token create)
    cloud_username: str = ""  # HTTP basic instead of a token (e.g. Orthanc)
    cloud_password: str = ""
    cloud_ca_file: str = ""  # CA bundle for a private PKI; empty: system trust store
    heartbeat_url: str = ""  # empty: <cloud_url without /dicom-web>/api/gateways/<name>/heartbeat
    heartbeat_interval_s: float = 60.0  # 0: off
    upload_streams: int = Field(default=4, ge=1, le=32)
    batch_max_instances: int = Field(default=32, ge=1, le=1000)
    batch_max_bytes: int = Field(default=64 * 1024**2, ge=1024)
    request_timeout_s: float = 120.0
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0

    # Transformations before upload
    compression: Codec = Codec.AUTO
    compression_workers: int = Field(default=0, ge=0, le=64)  # processes; 0: one per core
    protection_rules: list[str] = Field(default_factory=list)  # e.g. "OtherPatientIDs=hash"
    protection_secret: str = ""
    protection_hash: str = Field(default="sha256", pattern="^(sha256|sm3)$")

    # Spool (the durable local queue)
    spool_encryption: str = Field(default="none", pattern="^(none|aes-256-gcm|sm4-gcm)$")
    spool_key: str = ""  # hex; required when spool_encryption is not none
    disk_budget_bytes: int = Field(default=200 * 1024**3, ge=1024**2)
    disk_warn_fraction: float = Field(default=0.8, gt=0, lt=1)
    keep_sent_s: float = 7 * 86400.0  # keep uploaded files this long for re-sends found by reconciliation

    # Reconciliation and backfill
    reconcile_interval_s: float = 0.0  # 0: only on demand (yunying gateway reconcile)
    reconcile_days: int = Field(default=7, ge=1)
    backfill_window: str = ""  # "20:00-06:00": backfill runs only inside; empty: any time

    # Local status page (HTTP, loopback); 0: off
    status_port: int = 0

    log_level: str = "INFO"

    @field_validator("ae_title")
    @classmethod
    def _ae_title_valid(cls, value: str) -> str:
        if not value or len(value) > 16 or "\\" in value:
            raise ValueError("AE title must be 1-16 characters without backslash")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> GatewaySettings:
        if self.spool_encryption != "none" and not self.spool_key:
            raise ValueError("spool_encryption needs spool_key (hex)")
        if self.cloud_token and self.cloud_username:
            raise ValueError("give cloud_token or cloud_username/cloud_password, not both")
        if any(rule.replace(" ", "").endswith("=hash") for rule in self.protection_rules) \
                and len(self.protection_secret.encode()) < 32:
            raise ValueError("hash protection rules need protection_secret of at least 32 bytes "
                             "(patient IDs have little entropy; a short secret can be brute-forced)")
        parse_window(self.backfill_window)
        return self

    @classmethod
    def load(cls, config_file: Path | None, environ: dict[str, str], **overrides: Any) -> GatewaySettings:
        """File values, then environment variables over them, then explicit overrides (CLI flags)."""
        unknown = sorted(k for k in environ if k.startswith(ENV_PREFIX)
                         and k[len(ENV_PREFIX):].lower() not in cls.model_fields)
        if unknown:
            raise ValueError(f"unknown gateway setting(s) in the environment: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        if config_file is not None:
            with config_file.open("rb") as handle:
                values = {k.replace("-", "_"): v for k, v in tomllib.load(handle).items()}
        for key, raw in environ.items():  # the environment wins over the file
            if key.startswith(ENV_PREFIX):
                name = key[len(ENV_PREFIX):].lower()
                values[name] = _env_value(raw, get_origin(cls.model_fields[name].annotation) is list)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what ``load`` passes: the environment it was given is the one that counts."""
        return (init_settings,)

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def queue_db(self) -> Path:
        return self.data_dir / "queue.sqlite3"

    @property
    def effective_heartbeat_url(self) -> str:
        if self.heartbeat_url:
            return self.heartbeat_url
        if not self.cloud_url:
            return ""
        base = self.cloud_url.rstrip("/")
        base = base.removesuffix("/dicom-web")
        return f"{base}/api/gateways/{self.name}/heartbeat"


def _env_value(raw: str, is_list: bool) -> Any:
    """A list from the environment is JSON (``["a", "b"]``) or comma-separated."""
    if not is_list:
        return raw
    if raw.strip().startswith("["):
        return json.loads(raw)
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_window(text: str) -> tuple[time, time] | None:
    """``"20:00-06:00"`` → (20:00, 06:00); empty → None (always open)."""
    if not text:
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-", 1))
    except ValueError as exc:
        raise ValueError(f"backfill_window {text!r} is not HH:MM-HH:MM") from exc
    if start.tzinfo is not None or end.tzinfo is not None:  # "06:00-07:00" parses as a UTC offset
        raise ValueError(f"backfill_window {text!r} is not HH:MM-HH:MM (local time, no UTC offset)")
    return start, end


def in_window(window: tuple[time, time] | None, now: time) -> bool:
    """Whether ``now`` is inside the window (a window may wrap past midnight)."""
    if window is None:
        return True
    start, end = window
    if start <= end:
        return start <= now < end
    return now >= start or now < end
