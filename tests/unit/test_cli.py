"""The `redisgate` command line: help, config show, errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from redisgate.cli import build_parser, main
from redisgate.scopes import PRESETS, parse_scope, prefix_scope


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


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_workers_are_refused_where_the_gateway_shares_its_process(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--workers", "2"]) == 2  # before anything starts
    err = capsys.readouterr().err
    assert (
        f"proxy_workers = 2 (flag --workers) is for `redisgate proxy`; `redisgate {command}`" in err
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


def test_keys_new_with_scopes_presets_and_prefix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from redisgate.proxy.static_source import parse_keys_file

    keys = str(tmp_path / "keys.toml")
    assert main(["keys", "add-instance", "c", "--keys-file", keys]) == 0
    assert main(["keys", "new", "--instance", "c", "--keys-file", keys]) == 0
    assert (
        main(["keys", "new", "--instance", "c", "--preset", "read-only", "--keys-file", keys]) == 0
    )
    args = ["keys", "new", "--instance", "c", "--prefix", "app:", "--keys-file", keys]
    assert main(args) == 0
    args = ["keys", "new", "--instance", "c", "--scopes", "+get ~a %R~a", "--keys-file", keys]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "scopes: +get ~a resetchannels" in out  # printed in canonical form
    assert "scopes: +@all -@admin -@dangerous" in out and "~app:* &*" in out
    scopes = sorted(r.principal.scope.canonical for r in parse_keys_file(Path(keys)).values())
    assert scopes == sorted(
        [
            parse_scope(PRESETS["full"]).canonical,
            parse_scope(PRESETS["read-only"]).canonical,
            parse_scope(prefix_scope("app:")).canonical,
            "+get ~a resetchannels",
        ]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scopes", "+@nonsense"], "invalid scopes: unknown category '@nonsense' at 1"),
        (["--preset", "admin"], "unknown preset 'admin'"),
        (["--prefix", "a", "--scopes", "+get"], "--prefix goes with a --preset"),
    ],
)
def test_keys_new_refuses_bad_scopes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    keys = str(tmp_path / "keys.toml")
    assert main(["keys", "add-instance", "c", "--keys-file", keys]) == 0
    assert main(["keys", "new", "--instance", "c", "--keys-file", keys, *extra]) != 0
    assert message in capsys.readouterr().err


def test_keys_limits_sets_and_clears_limits(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from redisgate.limits import Limits
    from redisgate.proxy.static_source import parse_keys_file

    keys = str(tmp_path / "keys.toml")
    assert main(["keys", "add-instance", "c", "--keys-file", keys]) == 0
    assert main(["keys", "new", "--instance", "c", "--keys-file", keys]) == 0
    key_id = next(iter(parse_keys_file(Path(keys))))
    args = ["keys", "limits", "--keys-file", keys]
    assert main([*args, "--instance", "c", "ops_per_second=100", "burst=5"]) == 0
    assert main([*args, "--key", key_id, "max_connections=2"]) == 0
    assert main([*args, "--instance", "c", "burst=none"]) == 0
    principal = parse_keys_file(Path(keys))[key_id].principal
    assert principal.instance_limits == Limits(ops_per_second=100)
    assert principal.limits == Limits(max_connections=2)
    assert main([*args, "--key", key_id, "burst=-1"]) != 0
    assert "write FIELD=N or FIELD=none" in capsys.readouterr().err
    assert main([*args, "--key", key_id, "burst=0"]) != 0  # the file refuses it
    assert "burst is out of range" in capsys.readouterr().err
