"""Settings: precedence of the four sources and every validation message."""

from __future__ import annotations

from pathlib import Path

import pytest

from redisgate.config import SPECS, Settings, mask_secret
from redisgate.config.load import load_settings, reference_markdown
from redisgate.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "redisgate.toml"
    path.write_text(text)
    return path


def test_defaults_when_nothing_is_given() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.proxy_port == 6380
    assert settings.control_port == 8080
    assert settings.data_dir == Path(".redisgate")
    assert settings.source_of("proxy_port") == "default"


def test_the_gateway_address_clients_are_shown() -> None:
    assert Settings(proxy_host="10.0.0.1", proxy_port=7000).gateway_address() == ("10.0.0.1", 7000)
    assert Settings(proxy_host="0.0.0.0").gateway_address()[0] == "127.0.0.1"
    assert Settings(proxy_host="::").gateway_address()[0] == "127.0.0.1"
    public = Settings(proxy_host="0.0.0.0", gateway_public_host="gw.example")
    assert public.gateway_address()[0] == "gw.example"


def test_precedence_default_file_env_flag(tmp_path: Path) -> None:
    config = write(tmp_path, "proxy_port = 7001\ncontrol_port = 7002\nredis_port = 7003\n")
    env = {"REDISGATE_CONTROL_PORT": "8002", "REDISGATE_REDIS_PORT": "8003"}
    settings = load_settings(flags={"redis_port": "9003"}, env=env, config_file=config)
    assert (settings.proxy_port, settings.control_port, settings.redis_port) == (7001, 8002, 9003)
    assert settings.source_of("proxy_port") == f"file {config}"
    assert settings.source_of("control_port") == "env REDISGATE_CONTROL_PORT"
    assert settings.source_of("redis_port") == "flag --redis-port"
    assert settings.source_of("log_level") == "default"


def test_config_file_named_by_env(tmp_path: Path) -> None:
    config = write(tmp_path, 'log_level = "debug"\n')
    settings = load_settings(env={"REDISGATE_CONFIG": str(config)})
    assert settings.log_level == "debug"


def test_flag_config_file_wins_over_env_config_file(tmp_path: Path) -> None:
    env_file = write(tmp_path, 'log_level = "debug"\n')
    flag_file = tmp_path / "other.toml"
    flag_file.write_text('log_level = "error"\n')
    settings = load_settings(env={"REDISGATE_CONFIG": str(env_file)}, config_file=flag_file)
    assert settings.log_level == "error"


def test_settings_are_frozen() -> None:
    settings = load_settings(env={})
    with pytest.raises(AttributeError):
        settings.proxy_port = 1  # type: ignore[misc]


def test_types_are_converted_from_text_and_toml(tmp_path: Path) -> None:
    config = write(tmp_path, 'shutdown_timeout_s = 3\ndata_dir = "~/rg"\n')
    settings = load_settings(
        env={"REDISGATE_SERVICE_START_TIMEOUT_S": " 2.5 ", "REDISGATE_DATABASE_URL": ""},
        config_file=config,
    )
    assert settings.shutdown_timeout_s == 3.0
    assert settings.service_start_timeout_s == 2.5
    assert settings.data_dir == Path("~/rg").expanduser()
    assert settings.database_url is None  # empty env var means unset for optional settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REDISGATE_PROXY_PORT": "70000"},
            "proxy_port = 70000 (from env REDISGATE_PROXY_PORT): must be a TCP port",
        ),
        ({"REDISGATE_PROXY_PORT": "-1"}, "must be a TCP port"),
        (
            {"REDISGATE_CONTROL_PORT": "http"},
            "control_port = 'http' (from env REDISGATE_CONTROL_PORT): must be a whole number",
        ),
        (
            {"REDISGATE_SHUTDOWN_TIMEOUT_S": "soon"},
            "shutdown_timeout_s = 'soon' (from env REDISGATE_SHUTDOWN_TIMEOUT_S): must be a number",
        ),
        ({"REDISGATE_SHUTDOWN_TIMEOUT_S": "0"}, "must be greater than 0"),
        ({"REDISGATE_DATABASE_POOL_MAX_SIZE": "0"}, "must be 1 or more"),
        ({"REDISGATE_LOG_LEVEL": "loud"}, "must be one of debug, info, warning, error"),
        (
            {"REDISGATE_PROXY_HOST": "  "},
            "proxy_host = '  ' (from env REDISGATE_PROXY_HOST): must not be empty",
        ),
        (
            {"REDISGATE_POSTGRES_BIN_DIR": "/nonexistent/bin"},
            "postgres_bin_dir = "
            "PosixPath('/nonexistent/bin') (from env REDISGATE_POSTGRES_BIN_DIR): is not an "
            "existing directory",
        ),
        ({"REDISGATE_MIGRATIONS_DIR": "/nonexistent"}, "is not an existing directory"),
        (
            {"REDISGATE_DATABASE_URL": "mysql://u:topsecret@h/db"},
            "must be a URL like postgresql://",
        ),
    ],
)
def test_each_validation_error_names_setting_source_and_fix(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert message in str(info.value)
    assert "topsecret" not in str(info.value)


def test_flag_errors_name_the_flag() -> None:
    with pytest.raises(
        ConfigError, match=r"proxy_port = 99999 \(from flag --port\): must be a TCP port"
    ):
        load_settings(flags={"proxy_port": "99999"}, env={})


def test_all_errors_are_reported_at_once() -> None:
    env = {"REDISGATE_PROXY_PORT": "x", "REDISGATE_LOG_LEVEL": "y"}
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert "proxy_port" in str(info.value) and "log_level" in str(info.value)


def test_toml_type_errors_name_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, 'proxy_port = "6380"\n')
    with pytest.raises(ConfigError, match=rf"proxy_port = '6380' \(from file {config}\): must be"):
        load_settings(env={}, config_file=config)


def test_toml_bool_is_not_a_number(tmp_path: Path) -> None:
    config = write(tmp_path, "proxy_port = true\n")
    with pytest.raises(ConfigError, match=r"must be a whole number"):
        load_settings(env={}, config_file=config)


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope.toml \(from --config\) does not exist"):
        load_settings(env={}, config_file=missing)
    with pytest.raises(ConfigError, match=r"\(from env REDISGATE_CONFIG\) does not exist"):
        load_settings(env={"REDISGATE_CONFIG": str(missing)})


def test_config_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"is a directory"):
        load_settings(env={}, config_file=tmp_path)


def test_invalid_toml(tmp_path: Path) -> None:
    config = write(tmp_path, "proxy_port = \n")
    with pytest.raises(ConfigError, match=r"is not valid TOML"):
        load_settings(env={}, config_file=config)


def test_unknown_setting_in_file_suggests_the_right_name(tmp_path: Path) -> None:
    config = write(tmp_path, "proxy_prot = 1\n")
    with pytest.raises(
        ConfigError, match=r"unknown setting 'proxy_prot'.*did you mean 'proxy_port'"
    ):
        load_settings(env={}, config_file=config)


def test_unknown_env_vars_are_ignored() -> None:
    # REDISGATE_URL is what `redisgate dev` prints for users to export; it is not a setting.
    settings = load_settings(env={"REDISGATE_URL": "redis://x", "REDISGATE_CONTROL_URL": "y"})
    assert settings == Settings()


def test_secrets_are_masked() -> None:
    url = "postgresql://app:s3cret@db.example:5432/redisgate"
    settings = load_settings(env={"REDISGATE_DATABASE_URL": url})
    assert settings.database_url == url
    assert settings.masked()["database_url"] == "postgresql://app:***@db.example:5432/redisgate"
    assert "s3cret" not in repr(settings)
    assert mask_secret("postgresql://app@h/db") == "postgresql://app@h/db"
    assert mask_secret("plain-token") == "***"
    assert mask_secret(None) is None


def test_every_setting_has_help_env_and_flag() -> None:
    names = [spec.name for spec in SPECS]
    assert len(names) == len(set(names))
    for spec in SPECS:
        assert spec.help.endswith("."), spec.name
        assert spec.env == "REDISGATE_" + spec.name.upper()
        assert spec.flag.startswith("--")
    assert len({spec.flag for spec in SPECS}) == len(SPECS)


def test_readme_configuration_reference_is_current(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    assert reference_markdown() in readme, (
        "README.md's configuration table is out of date: run "
        "`.venv/bin/python scripts/update_readme_settings.py`"
    )
