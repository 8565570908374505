"""``yunying gateway`` argument handling: options before or after the action mean the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from yunying.cli import build_parser


@pytest.mark.parametrize("argv", [
    ["gateway", "--config", "gw.toml", "status"],
    ["gateway", "status", "--config", "gw.toml"],
])
def test_config_before_or_after_the_action(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.config == Path("gw.toml")
    assert args.func.__name__ == "cmd_status"


def test_plain_gateway_runs_it() -> None:
    args = build_parser().parse_args(["gateway", "--config", "gw.toml", "--dicom-port", "11120"])
    assert args.func.__name__ == "cmd_run" and args.dicom_port == 11120 and args.config == Path("gw.toml")
    args = build_parser().parse_args(["gateway", "--config", "gw.toml", "run"])
    assert args.func.__name__ == "cmd_run" and args.config == Path("gw.toml")
