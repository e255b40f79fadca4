"""The `redisgate` command line: help, config show, errors and exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from redisgate import api_key_format
from redisgate.cli import build_parser, main, settings_of, with_free_ports
from redisgate.config import SPECS
from redisgate.config.load import unknown_env_warnings
from redisgate.errors import ConfigError
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
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exited:  # not a flag of theirs
        main([command, "--workers", "2"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --workers 2" in capsys.readouterr().err
    monkeypatch.setenv("REDISGATE_PROXY_WORKERS", "2")  # a shared file or env still says so
    assert main([command]) == 2  # before anything starts
    err = capsys.readouterr().err
    assert (
        f"proxy_workers = 2 (env REDISGATE_PROXY_WORKERS) is for `redisgate proxy`; "
        f"`redisgate {command}`" in err
    )


def help_of(*command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "redisgate", *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "100", "PATH": ""},
    )
    return result.stdout


def flags_in(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", help_text))


def test_each_command_lists_only_the_settings_it_reads() -> None:
    migrate = flags_in(help_of("migrate"))
    assert migrate == {
        "--help",
        "--check",
        "--config",
        "--database-url",
        "--migrations-dir",
        "--log-level",
    }
    create_user = flags_in(help_of("admin", "create-user"))
    assert {"--database-url", "--argon2-memory-kib", "--password-stdin"} <= create_user
    assert "--port" not in create_user and "--max-clients" not in create_user
    assert flags_in(help_of("keys", "list")) == {"--help", "--config", "--keys-file", "--log-level"}
    proxy = flags_in(help_of("proxy"))
    assert {"--port", "--proxy-port", "--workers", "--max-clients", "--keys-file"} <= proxy
    assert not {"--control-port", "--jwt-secret", "--postgres-port"} & proxy
    dev = flags_in(help_of("dev"))
    assert {"--port", "--control-port", "--metrics-port", "--free-ports", "--data-dir"} <= dev
    # dev makes its own database and keys source; it runs one gateway process
    assert not {"--database-url", "--keys-file", "--workers", "--redis-port"} & dev
    every = flags_in(help_of("config", "show"))
    assert {"--" + s.name.replace("_", "-") for s in SPECS} <= every


def test_every_setting_is_a_flag_of_some_command_that_runs() -> None:
    from redisgate.cli_options import COMMANDS

    used = {name for key, c in COMMANDS.items() if key != "config show" for name in c.names}
    assert {s.name for s in SPECS} - used == {"redis_port"}  # nothing reads redis_port


def test_control_port_is_the_control_apis_port() -> None:
    args = build_parser().parse_args(["control", "--port", "9001", "--proxy-port", "6390"])
    settings = settings_of(args, env={})
    assert (settings.control_port, settings.proxy_port) == (9001, 6390)
    assert settings.source_of("control_port") == "flag --port"
    args = build_parser().parse_args(["control", "--control-port", "9002", "--host", "0.0.0.0"])
    settings = settings_of(args, env={})
    assert (settings.control_port, settings.control_host) == (9002, "0.0.0.0")
    assert settings.proxy_port == 6380  # untouched: the gateway's port, as before
    for command in (["serve"], ["dev"], ["proxy"]):  # where --port is still the gateway's
        settings = settings_of(build_parser().parse_args([*command, "--port", "7000"]), env={})
        assert (settings.proxy_port, settings.control_port) == (7000, 8080)
    with pytest.raises(ConfigError, match=r"control_port = 99999 \(from flag --port\)"):
        settings_of(build_parser().parse_args(["control", "--port", "99999"]), env={})


def test_free_ports_frees_every_port_not_set_explicitly() -> None:
    args = build_parser().parse_args(["dev", "--free-ports", "--control-port", "8099"])
    settings = with_free_ports(settings_of(args, env={"REDISGATE_POSTGRES_PORT": "5999"}))
    assert (settings.proxy_port, settings.metrics_port) == (0, 0)
    assert (settings.control_port, settings.postgres_port) == (8099, 5999)  # explicit: kept
    assert settings.source_of("metrics_port") == "flag --free-ports"


def test_misspelled_environment_variables_are_named_with_a_suggestion(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert unknown_env_warnings(
        {
            "REDISGATE_PORXY_PORT": "1",
            "REDISGATE_DATABASE_ULR": "x",
            "REDISGATE_NOTHING_LIKE_IT_AT_ALL": "1",
            "REDISGATE_PROXY_PORT": "1",  # a setting
            "REDISGATE_CONFIG": "f.toml",  # the settings file
            "REDISGATE_URL": "redis://",  # printed by `redisgate dev`, exported by users
            "REDISGATE_ADMIN_PASSWORD": "x",  # read by admin create-user
            "REDISGATE_POLICY_RC": "x",  # scripts/install-system-deps.sh
            "PATH": "/bin",
        }
    ) == [
        "warning: REDISGATE_DATABASE_ULR is not a variable RedisGate reads; ignored "
        "(did you mean REDISGATE_DATABASE_URL?)",
        "warning: REDISGATE_NOTHING_LIKE_IT_AT_ALL is not a variable RedisGate reads; ignored",
        "warning: REDISGATE_PORXY_PORT is not a variable RedisGate reads; ignored "
        "(did you mean REDISGATE_PROXY_PORT?)",
    ]
    monkeypatch.setenv("REDISGATE_CONTROL_PROT", "9000")
    assert main(["config", "show"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "redisgate: warning: REDISGATE_CONTROL_PROT is not a variable RedisGate reads; "
        "ignored (did you mean REDISGATE_CONTROL_PORT?)\n"
    )
    assert "control_port = 8080  # default" in captured.out


def test_every_redisgate_variable_the_code_uses_is_known() -> None:
    """Names used in the code, scripts and docs are settings or in OTHER_ENV (no false warnings)."""
    root = Path(__file__).resolve().parents[2]
    found: set[str] = set()
    for folder in ("redisgate", "scripts", "docs", "tests"):
        for path in (root / folder).rglob("*"):
            if path.suffix in (".py", ".sh", ".md"):
                found |= set(re.findall(r"REDISGATE_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    found |= set(re.findall(r"REDISGATE_[A-Z0-9_]*[A-Z0-9]", (root / "README.md").read_text()))
    # Written to show the warning, or a prefix in prose: not names anyone sets.
    found -= {"REDISGATE_X", "REDISGATE_PORXY_PORT", "REDISGATE_DATABASE_ULR"}
    found -= {"REDISGATE_NOTHING_LIKE_IT_AT_ALL", "REDISGATE_CONTROL_PROT", "REDISGATE_ARGON2"}
    assert unknown_env_warnings(dict.fromkeys(found, "")) == []


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
    from redisgate.proxy.keys.static import parse_keys_file

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
    from redisgate.proxy.keys.static import parse_keys_file

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


def test_keys_list_shows_names_ids_instances_scopes_and_no_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from redisgate.proxy.keys.static import parse_keys_file

    keys = str(tmp_path / "keys.toml")
    assert main(["keys", "add-instance", "cache", "--keys-file", keys]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--keys-file", keys]) == 0
    listed = capsys.readouterr()
    assert listed.out.split() == ["NAME", "ID", "INSTANCE", "EXPIRES", "SCOPES"]
    assert "no keys in" in listed.err
    args = ["keys", "new", "--instance", "cache", "--keys-file", keys]
    assert main([*args, "--name", "web", "--scopes", "+get ~app:*"]) == 0
    assert main([*args, "--name", "ops"]) == 0
    minted = capsys.readouterr().out
    tokens = re.findall(r"default:(rg_[A-Za-z0-9_-]+)@", minted)
    assert len(tokens) == 2
    assert main(["keys", "list", "--keys-file", keys]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    records = parse_keys_file(Path(keys))
    by_name = {r.principal.key_name: r for r in records.values()}
    assert lines[1].split(None, 4) == [
        "ops",
        by_name["ops"].key_id,
        "cache",
        "never",
        by_name["ops"].principal.scope.canonical,
    ]
    assert lines[2].split(None, 4) == [
        "web",
        by_name["web"].key_id,
        "cache",
        "never",
        "+get ~app:* resetchannels",
    ]
    for token in tokens:  # neither the token nor its secret part, nor the stored digest
        # The secret follows `rg_<id>_`; it may hold "_" itself, so it is not split off by "_".
        secret = token[len(api_key_format.PREFIX) + api_key_format.ID_LENGTH + 1 :]
        assert token not in out and secret not in out
    assert all(r.digest not in out for r in records.values())


def test_keys_new_prints_the_public_gateway_host(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = str(tmp_path / "keys.toml")
    assert main(["keys", "add-instance", "c", "--keys-file", keys]) == 0
    args = ["keys", "new", "--instance", "c", "--keys-file", keys, "--port", "7001"]
    assert main([*args, "--gateway-public-host", "redis.example.com"]) == 0
    assert "@redis.example.com:7001/0" in capsys.readouterr().out
