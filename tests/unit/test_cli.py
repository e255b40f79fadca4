"""The `redisgate` command line: help, config show, errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from redisgate.cli import build_parser, main


def test_help_lists_every_subcommand_on_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "redisgate", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "100", "PATH": ""},
    )
    lines = result.stdout.splitlines()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name in subparsers.choices:  # type: ignore[union-attr]
        matching = [line for line in lines if line.strip().startswith(name + " ")]
        assert len(matching) == 1, f"{name!r} should be one line of --help"
        assert len(matching[0].split(None, 1)[1]) > 10, f"{name!r} lacks a description"


def test_config_show_prints_values_sources_and_masks_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDISGATE_DATABASE_URL", "postgresql://u:hunter2@localhost/rg")
    assert main(["config", "show", "--port", "6999"]) == 0
    out = capsys.readouterr().out
    assert 'database_url = "postgresql://u:***@localhost/rg"  # env REDISGATE_DATABASE_URL' in out
    assert "proxy_port = 6999  # flag --port" in out
    assert "control_port = 8080  # default" in out
    assert "hunter2" not in out


def test_bad_setting_exits_2_with_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDISGATE_CONTROL_PORT", "eighty")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert (
        "control_port = 'eighty' (from env REDISGATE_CONTROL_PORT): must be a whole number" in err
    )


def test_migrate_without_database_url_says_what_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDISGATE_DATABASE_URL", raising=False)
    assert main(["migrate"]) == 2
    assert "REDISGATE_DATABASE_URL" in capsys.readouterr().err


def test_config_reference_is_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "reference"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| Setting | Default |")
    assert "`REDISGATE_PROXY_PORT`" in out
