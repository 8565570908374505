"""Gateway settings: TOML file, then YUNYING_GATEWAY_* variables, then explicit overrides; bad values stop start-up."""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path

import pytest

from yunying.gateway.settings import ENV_PREFIX, GatewaySettings, in_window, parse_window

CONFIG = """
name = "hospital-a"
institution = "County Hospital"
dicom-port = 11200
lane_rules = ["emergency:AccessionNumber=JZ*", "backfill:Modality=OT"]
cloud_url = "https://cloud.example/dicom-web/"
backfill_window = "20:00-06:00"
upload_streams = 2
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)
    return path


def test_file_values(config: Path) -> None:
    s = GatewaySettings.load(config, dict(os.environ))
    assert s.name == "hospital-a" and s.institution == "County Hospital"
    assert s.dicom_port == 11200  # a hyphenated key works too
    assert s.lane_rules == ["emergency:AccessionNumber=JZ*", "backfill:Modality=OT"]
    assert s.upload_streams == 2
    assert s.ae_title == "CLOUD_GW"  # untouched default


def test_no_file_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}DATA_DIR", str(tmp_path / "gw"))
    s = GatewaySettings.load(None, dict(os.environ))
    assert s.name == "gateway" and s.dicom_port == 11120
    assert s.queue_db == tmp_path / "gw" / "queue.sqlite3"
    assert s.spool_dir == tmp_path / "gw" / "spool"


def test_environment_overrides_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}DICOM_PORT", "12000")
    monkeypatch.setenv(f"{ENV_PREFIX}LANE_RULES", '["emergency:Modality=CT"]')
    s = GatewaySettings.load(config, dict(os.environ))
    assert s.dicom_port == 12000
    assert s.lane_rules == ["emergency:Modality=CT"]
    assert s.name == "hospital-a"  # what the environment does not name stays from the file


def test_explicit_overrides_win(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}DICOM_PORT", "12000")
    s = GatewaySettings.load(config, dict(os.environ), dicom_port=13000, name=None, ae_title="EDGE1")
    assert s.dicom_port == 13000
    assert s.name == "hospital-a"  # None means "flag not given"
    assert s.ae_title == "EDGE1"


def test_environ_argument_is_what_is_read(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}NAME", "from-process-env")
    s = GatewaySettings.load(config, {f"{ENV_PREFIX}NAME": "from-env", f"{ENV_PREFIX}LANE_RULES": "emergency:Modality=CT"})
    assert s.name == "from-env"
    assert s.lane_rules == ["emergency:Modality=CT"]


def test_unknown_environment_variable_is_refused(config: Path) -> None:
    with pytest.raises(ValueError, match=f"{ENV_PREFIX}TYPO"):
        GatewaySettings.load(config, {**os.environ, f"{ENV_PREFIX}TYPO": "1"})


def test_unknown_file_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('name = "a"\ndicom_prot = 1\n')
    with pytest.raises(ValueError, match="dicom_prot"):
        GatewaySettings.load(path, dict(os.environ))


@pytest.mark.parametrize("window", ["25:00-06:00", "20:00", "evenings", "20:00-06:00-07:00", "20:00+08:00-06:00"])
def test_bad_backfill_window(window: str) -> None:
    with pytest.raises(ValueError, match="backfill_window"):
        GatewaySettings.load(None, {}, backfill_window=window)


def test_encryption_needs_a_key() -> None:
    with pytest.raises(ValueError, match="spool_key"):
        GatewaySettings.load(None, {}, spool_encryption="aes-256-gcm")
    assert GatewaySettings.load(None, {}, spool_encryption="aes-256-gcm", spool_key="11" * 32).spool_key == "11" * 32
    with pytest.raises(ValueError, match="spool_encryption"):
        GatewaySettings.load(None, {}, spool_encryption="rot13", spool_key="11")


def test_other_invalid_values() -> None:
    with pytest.raises(ValueError, match="AE title"):
        GatewaySettings.load(None, {}, ae_title="A_TITLE_LONGER_THAN_16")
    with pytest.raises(ValueError, match="not both"):
        GatewaySettings.load(None, {}, cloud_token="t", cloud_username="u")
    with pytest.raises(ValueError, match="name"):
        GatewaySettings.load(None, {}, name="has space")


@pytest.mark.parametrize(("cloud_url", "expected"), [
    ("https://cloud.example/dicom-web/", "https://cloud.example/api/gateways/gw-1/heartbeat"),
    ("https://cloud.example/dicom-web", "https://cloud.example/api/gateways/gw-1/heartbeat"),
    ("http://orthanc.local:8042/dicom-web", "http://orthanc.local:8042/api/gateways/gw-1/heartbeat"),
    ("https://cloud.example/pacs/", "https://cloud.example/pacs/api/gateways/gw-1/heartbeat"),
    ("", ""),
])
def test_effective_heartbeat_url(cloud_url: str, expected: str) -> None:
    assert GatewaySettings.load(None, {}, name="gw-1", cloud_url=cloud_url).effective_heartbeat_url == expected


def test_explicit_heartbeat_url_wins() -> None:
    s = GatewaySettings.load(None, {}, cloud_url="https://cloud.example/dicom-web", heartbeat_url="https://hb.example/x")
    assert s.effective_heartbeat_url == "https://hb.example/x"


def test_parse_window() -> None:
    assert parse_window("") is None
    assert parse_window("20:00-06:00") == (time(20, 0), time(6, 0))
    assert parse_window(" 08:30 - 17:45 ") == (time(8, 30), time(17, 45))


@pytest.mark.parametrize(("now", "inside"), [
    (time(7, 59), False), (time(8, 0), True), (time(12, 0), True), (time(16, 59), True), (time(17, 0), False),
])
def test_in_window_daytime(now: time, inside: bool) -> None:
    assert in_window((time(8, 0), time(17, 0)), now) is inside


@pytest.mark.parametrize(("now", "inside"), [
    (time(19, 59), False), (time(20, 0), True), (time(23, 59), True), (time(0, 0), True),
    (time(5, 59), True), (time(6, 0), False), (time(12, 0), False),
])
def test_in_window_wrapping_midnight(now: time, inside: bool) -> None:
    assert in_window(parse_window("20:00-06:00"), now) is inside


def test_no_window_is_always_open() -> None:
    assert in_window(None, time(3, 0)) and in_window(None, time(15, 0))


def test_hash_rules_need_a_long_secret() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        GatewaySettings.load(None, {}, protection_rules=["PatientID=hash"], protection_secret="short")
    ok = GatewaySettings.load(None, {}, protection_rules=["PatientID=hash"], protection_secret="x" * 32)
    assert ok.protection_rules == ["PatientID=hash"]
