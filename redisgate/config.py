"""Settings: one frozen object, built from defaults < TOML file < REDISGATE_* env < flags.

Every setting is declared once, below, with its default, type, help text and validation; the
environment variable is `REDISGATE_<NAME>` and the flag `--<name-with-dashes>` unless a field
says otherwise. The command line, `redisgate config show` and the README's configuration
reference are all generated from these declarations, so they cannot drift apart.

Each value remembers where it came from, so a bad one is reported as, for example::

    proxy_port = 70000 (from env REDISGATE_PROXY_PORT): must be a TCP port, 0-65535

and the user knows which knob to turn.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redisgate.errors import ConfigError

ENV_PREFIX = "REDISGATE_"
CONFIG_ENV = "REDISGATE_CONFIG"
LOG_LEVELS = ("debug", "info", "warning", "error")

Validator = Callable[[Any], str | None]


def _provisioner(value: Any) -> str | None:
    return None if value in ("local", "static") else "must be local or static"


def parse_port_range(value: str) -> tuple[int, int]:
    """`FIRST-LAST` as two ports; ValueError when it is not a valid range."""
    first, _, last = value.partition("-")
    low, high = int(first), int(last)
    if not 1 <= low <= high <= 65535:
        raise ValueError(value)
    return low, high


def _port_range(value: Any) -> str | None:
    if value is None:
        return None
    try:
        parse_port_range(value)
    except ValueError:
        return "must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535, e.g. 20000-20999"
    return None


def _port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port, 0-65535 (0 picks a free one)"


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _at_least_one(value: Any) -> str | None:
    return None if value >= 1 else "must be 1 or more"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _existing_file(value: Any) -> str | None:
    if value is None or Path(value).is_file():
        return None
    return "is not an existing file: fix the path or unset it"


def _log_level(value: Any) -> str | None:
    return None if value in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


def _existing_dir(value: Any) -> str | None:
    if value is None or Path(value).is_dir():
        return None
    return "is not an existing directory: fix the path or unset it to search the usual places"


def _not_empty(value: Any) -> str | None:
    return None if str(value).strip() else "must not be empty"


def _postgres_dsn(value: Any) -> str | None:
    if value is None:
        return None
    if urlsplit(value).scheme not in ("postgres", "postgresql"):
        return "must be a URL like postgresql://user:password@host:5432/dbname"
    return None


def _origins(value: Any) -> str | None:
    for origin in str(value).split(","):
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            return "must be origins like https://dash.example.com, separated by commas"
    return None


def _ip_list(value: Any) -> str | None:
    try:
        for item in str(value).split(","):
            ipaddress.ip_address(item.strip())
    except ValueError:
        return "must be IP addresses separated by commas"
    return None


def _jwt_secret(value: Any) -> str | None:
    return None if len(str(value)) >= 32 else "must be at least 32 characters"


def _argon2_memory(value: Any) -> str | None:
    return None if value >= 64 else "must be at least 64 (KiB)"


def setting(
    default: Any,
    help: str,
    *,
    validate: Validator | None = None,
    flag: str | None = None,
    secret: bool = False,
) -> Any:
    """Declare one setting (a dataclass field carrying its documentation and rules)."""
    meta = {"help": help, "validate": validate, "flag": flag, "secret": secret}
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective configuration of one RedisGate process."""

    # Data plane
    proxy_host: str = setting(
        "127.0.0.1", "Address the RESP gateway listens on.", validate=_not_empty, flag="--host"
    )
    proxy_port: int = setting(
        6380, "TCP port of the RESP gateway (0 picks a free one).", validate=_port, flag="--port"
    )
    proxy_tls_port: int = setting(
        0, "Extra TLS port of the gateway (rediss://); 0 turns TLS off.", validate=_port
    )
    proxy_tls_cert_file: Path | None = setting(
        None, "PEM certificate (chain) the gateway's TLS port presents.", validate=_existing_file
    )
    proxy_tls_key_file: Path | None = setting(
        None, "PEM private key of proxy_tls_cert_file.", validate=_existing_file
    )
    proxy_unix_socket: Path | None = setting(
        None, "Also listen on this Unix socket path (unset: no Unix socket)."
    )
    keys_file: Path | None = setting(
        None,
        "TOML file of instances and API keys (the static key source); `redisgate dev` "
        "writes its own in the data folder.",
    )
    max_clients: int = setting(
        10_000, "Most client connections the gateway accepts at once.", validate=_at_least_one
    )
    max_request_bytes: int = setting(
        64 * 1024 * 1024,
        "Largest single command a client may send (checked before it is buffered).",
        validate=_at_least_one,
    )
    max_pending_per_client: int = setting(
        1000,
        "Commands a client may have in flight before the gateway stops reading from it.",
        validate=_at_least_one,
    )
    max_client_output_bytes: int = setting(
        64 * 1024 * 1024,
        "Unsent reply bytes a slow client may accumulate before it is disconnected.",
        validate=_at_least_one,
    )
    auth_timeout_s: float = setting(
        10.0, "A new connection must authenticate within this time.", validate=_positive
    )
    client_idle_timeout_s: float = setting(
        0.0,
        "Close authenticated clients idle this long (0: never, as Redis's default).",
        validate=_not_negative,
    )
    upstream_connections: int = setting(
        1, "Shared connections per instance (and protocol) to its Redis.", validate=_at_least_one
    )
    upstream_connect_timeout_s: float = setting(
        5.0, "How long connecting to an instance's Redis may take.", validate=_positive
    )
    upstream_timeout_s: float = setting(
        30.0,
        "A shared upstream connection with no reply for this long is failed and reopened.",
        validate=_positive,
    )
    # Control plane
    control_host: str = setting(
        "127.0.0.1", "Address the control-plane HTTP API listens on.", validate=_not_empty
    )
    control_port: int = setting(
        8080, "TCP port of the control-plane HTTP API (0 picks a free one).", validate=_port
    )
    database_url: str | None = setting(
        None,
        "PostgreSQL URL of the control database. Unset under `redisgate dev`, which runs its "
        "own cluster in the data folder.",
        validate=_postgres_dsn,
        secret=True,
    )
    database_pool_max_size: int = setting(
        10, "Most connections each process keeps open to PostgreSQL.", validate=_at_least_one
    )
    migrations_dir: Path | None = setting(
        None,
        "Folder of NNN_name.sql migrations (default: the migrations shipped with RedisGate).",
        validate=_existing_dir,
    )
    # Control plane: HTTP, identity, quotas (kept together; the data plane has its own block)
    control_max_body_bytes: int = setting(
        64 * 1024,
        "Largest request body the control API reads (larger ones get 413).",
        validate=_at_least_one,
    )
    control_cors_origins: str | None = setting(
        None,
        "Comma-separated browser origins (e.g. https://dash.example.com) allowed to call the "
        "control API; unset: none.",
        validate=_origins,
    )
    control_trusted_proxies: str | None = setting(
        None,
        "Comma-separated IP addresses of reverse proxies in front of the control API; for "
        "requests from them the client address (login throttling, audit log) is read from "
        "X-Forwarded-For. Unset: the TCP peer is the client.",
        validate=_ip_list,
    )
    jwt_secret: str | None = setting(
        None,
        "Key that signs access tokens (at least 32 characters). Unset: one is generated into "
        "<data_dir>/jwt-secret (0600) on first run and reused.",
        validate=_jwt_secret,
        secret=True,
    )
    jwt_previous_secrets: str | None = setting(
        None,
        "Comma-separated earlier jwt_secret values whose tokens are still accepted (key "
        "rotation: move the old secret here, set a new jwt_secret).",
        secret=True,
    )
    access_token_ttl_s: int = setting(
        900, "Lifetime of an access token (JWT).", validate=_at_least_one
    )
    session_ttl_s: int = setting(
        86_400, "Lifetime of a login session without remember_me.", validate=_at_least_one
    )
    session_remember_ttl_s: int = setting(
        30 * 86_400, "Lifetime of a login session with remember_me.", validate=_at_least_one
    )
    argon2_time_cost: int = setting(
        3, "argon2id passes over memory when hashing a password.", validate=_at_least_one
    )
    argon2_memory_kib: int = setting(
        65_536,
        "argon2id memory per hash, in KiB (64 MiB: RFC 9106's second choice).",
        validate=_argon2_memory,
    )
    argon2_parallelism: int = setting(4, "argon2id lanes per hash.", validate=_at_least_one)
    login_max_failures_per_email: int = setting(
        5,
        "Failed logins for one email within login_failure_window_s before it gets 429.",
        validate=_at_least_one,
    )
    login_max_failures_per_addr: int = setting(
        50,
        "Failed logins from one client address within login_failure_window_s before it gets 429.",
        validate=_at_least_one,
    )
    login_failure_window_s: int = setting(
        900,
        "Window in which failed logins (and registrations) are counted.",
        validate=_at_least_one,
    )
    register_max_per_addr: int = setting(
        20,
        "Registrations from one client address within login_failure_window_s before it gets "
        "429 (slows account spam and probing which emails have accounts).",
        validate=_at_least_one,
    )
    quota_default_max_instances: int = setting(
        5, "Instances a new organization may have.", validate=_not_negative
    )
    quota_default_max_memory_mb: int = setting(
        1024, "Total instance memory (MB) a new organization may have.", validate=_not_negative
    )
    quota_default_max_api_keys: int = setting(
        20, "API keys a new organization may have.", validate=_not_negative
    )
    # Instances: how they get a Redis, and how users reach them
    provisioner: str = setting(
        "local",
        "How instances get a Redis: local (a supervised redis-server per instance) or static "
        "(a db on an operator-registered server, /v1/admin/servers).",
        validate=_provisioner,
    )
    instances_dir: Path | None = setting(
        None, "Folder of the local provisioner's redis-servers (default: <data_dir>/instances)."
    )
    instance_port_range: str | None = setting(
        None,
        "Ports for local instances, as FIRST-LAST (keep it outside the kernel's ephemeral "
        "range); unset: any free port.",
        validate=_port_range,
    )
    instances_stop_on_exit: bool = setting(
        False,
        "Stop local instances when the control plane stops (otherwise they keep serving and "
        "are re-adopted at the next start).",
    )
    gateway_public_host: str | None = setting(
        None,
        "Host clients use to reach the gateway, shown in endpoints and key URLs "
        "(default: proxy_host, or 127.0.0.1 when it listens on every address).",
    )
    # Embedded local stack (`redisgate dev`) and the services it starts
    data_dir: Path = setting(
        Path(".redisgate"),
        "Where `redisgate dev` keeps its PostgreSQL cluster, Redis data and logs.",
    )
    postgres_bin_dir: Path | None = setting(
        None,
        "Folder holding the PostgreSQL server binaries (initdb, postgres, pg_isready); default: "
        "`pg_config --bindir`, then /usr/lib/postgresql/<newest>/bin, then PATH.",
        validate=_existing_dir,
    )
    postgres_port: int = setting(
        0,
        "Port of the PostgreSQL cluster `redisgate dev` runs (0 picks a free one).",
        validate=_port,
    )
    redis_server_bin: str = setting(
        "redis-server", "The redis-server binary (a name on PATH or a path).", validate=_not_empty
    )
    redis_port: int = setting(
        0, "Port of the Redis `redisgate dev` runs (0 picks a free one).", validate=_port
    )
    service_start_timeout_s: float = setting(
        30.0,
        "How long to wait for PostgreSQL or redis-server to become ready.",
        validate=_positive,
    )
    # Process
    shutdown_timeout_s: float = setting(
        10.0,
        "On SIGTERM, how long in-flight work may take before it is cut off.",
        validate=_positive,
    )
    log_level: str = setting("info", "One of debug, info, warning, error.", validate=_log_level)

    # Where each value came from (not a setting): name -> "env REDISGATE_X", "flag --x", ...
    sources: Mapping[str, str] = field(
        default_factory=dict, repr=False, compare=False, metadata={"internal": True}
    )

    def source_of(self, name: str) -> str:
        """Where the value of setting `name` came from (for messages and `config show`)."""
        return self.sources.get(name, "default")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"Settings({fields})"

    def masked(self) -> dict[str, Any]:
        """The settings as a dict, secrets masked, fit to print or log."""
        out: dict[str, Any] = {}
        for spec in SPECS:
            value = getattr(self, spec.name)
            out[spec.name] = mask_secret(value) if spec.secret else value
        return out


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """Everything known about one setting, derived once from the dataclass field."""

    name: str
    type: Any
    base_type: type
    optional: bool
    default: Any
    help: str
    env: str
    flag: str
    secret: bool
    validate: Validator | None


def _specs() -> tuple[SettingSpec, ...]:
    hints = typing.get_type_hints(Settings)
    specs = []
    for f in dataclasses.fields(Settings):
        if f.metadata.get("internal"):
            continue
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = type(None) in typing.get_args(hint)
        base = args[0] if optional else hint
        specs.append(
            SettingSpec(
                name=f.name,
                type=hint,
                base_type=base,
                optional=optional,
                default=f.default,
                help=f.metadata["help"],
                env=ENV_PREFIX + f.name.upper(),
                flag=f.metadata["flag"] or "--" + f.name.replace("_", "-"),
                secret=f.metadata["secret"],
                validate=f.metadata["validate"],
            )
        )
    return tuple(specs)


SPECS: tuple[SettingSpec, ...] = _specs()
SPECS_BY_NAME: dict[str, SettingSpec] = {s.name: s for s in SPECS}


def mask_secret(value: Any) -> Any:
    """Hide a secret: the password of a URL, or the whole value otherwise."""
    if value is None:
        return None
    text = str(value)
    parts = urlsplit(text)
    if parts.scheme and parts.netloc:
        if parts.password is None:
            return text
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit(parts._replace(netloc=netloc))
    return "***"


# --- Building settings ---------------------------------------------------------------------


def _convert(spec: SettingSpec, raw: Any, from_text: bool) -> Any:
    """Turn a raw value (text from env/flags, or a TOML value) into the setting's type."""
    if from_text and isinstance(raw, str) and raw == "" and spec.optional:
        return None
    base = spec.base_type
    if base is bool:
        if isinstance(raw, bool):
            return raw
        if from_text and isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        raise ValueError("must be true or false")
    if base is int:
        if isinstance(raw, bool):
            raise ValueError("must be a whole number")
        if isinstance(raw, int):
            return raw
        if from_text and isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                raise ValueError("must be a whole number") from None
        raise ValueError("must be a whole number")
    if base is float:
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        if isinstance(raw, int | float):
            return float(raw)
        if from_text and isinstance(raw, str):
            try:
                return float(raw.strip())
            except ValueError:
                raise ValueError("must be a number") from None
        raise ValueError("must be a number")
    if base is Path:
        if isinstance(raw, str | Path):
            return Path(raw).expanduser()
        raise ValueError("must be a path (a string)")
    if base is str:
        if isinstance(raw, str):
            return raw
        raise ValueError("must be a string")
    raise TypeError(f"unsupported setting type {spec.type!r}")  # pragma: no cover


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, list(SPECS_BY_NAME), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def read_config_file(path: Path, source: str) -> dict[str, Any]:
    """Read a TOML settings file; every problem is a ConfigError naming the file."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} (from {source}) does not exist: check the path, or drop "
            f"the option to run on defaults"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {path} (from {source}) is a directory, not a file"
        ) from None
    except PermissionError:
        raise ConfigError(f"config file {path} (from {source}) is not readable") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} (from {source}) is not valid TOML: {exc}") from None
    unknown = [k for k in data if k not in SPECS_BY_NAME]
    if unknown:
        lines = [f"unknown setting '{k}' in {path}{_suggest(k)}" for k in unknown]
        raise ConfigError("\n".join(lines) + "\n(`redisgate config reference` lists them all)")
    return data


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build and validate the settings; raise ConfigError listing every bad value.

    `flags` holds only the options given on the command line (name -> text or value);
    `config_file` is the `--config` option; without it `REDISGATE_CONFIG` names the file.
    """
    env = os.environ if env is None else env
    flags = flags or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    errors: list[str] = []

    layers: list[tuple[str, dict[str, Any], bool]] = []
    if config_file is not None:
        file_source = "--config"
    elif env.get(CONFIG_ENV):
        config_file, file_source = Path(env[CONFIG_ENV]), f"env {CONFIG_ENV}"
    if config_file is not None:
        data = read_config_file(config_file, file_source)
        layers.append((f"file {config_file}", data, False))
    env_values = {s.name: env[s.env] for s in SPECS if s.env in env}
    layers.append(("env", env_values, True))
    layers.append(("flag", dict(flags), True))

    for layer, data, from_text in layers:
        for name, raw in data.items():
            spec = SPECS_BY_NAME[name]
            source = {"env": f"env {spec.env}", "flag": f"flag {spec.flag}"}.get(layer, layer)
            try:
                values[name] = _convert(spec, raw, from_text)
            except ValueError as exc:
                errors.append(f"{name} = {raw!r} (from {source}): {exc}")
                continue
            sources[name] = source

    settings = Settings(**values, sources=sources)
    for spec in SPECS:
        value = getattr(settings, spec.name)
        if spec.validate is None or (value is None and spec.optional):
            continue
        problem = spec.validate(value)
        if problem:
            shown = mask_secret(value) if spec.secret else value
            where = sources.get(spec.name, "default")
            errors.append(f"{spec.name} = {shown!r} (from {where}): {problem}")
    if errors:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(errors))
    return settings


def reference_markdown() -> str:
    """The configuration reference table for README.md, generated from the declarations."""
    rows = [
        "| Setting | Default | Environment variable | Flag | Meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in SPECS:
        default = "(unset)" if spec.default is None else f"`{spec.default}`"
        rows.append(f"| `{spec.name}` | {default} | `{spec.env}` | `{spec.flag}` | {spec.help} |")
    return "\n".join(rows) + "\n"
