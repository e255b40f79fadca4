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
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redisgate.config import checks as check
from redisgate.config.checks import Validator

ENV_PREFIX = "REDISGATE_"
CONFIG_ENV = "REDISGATE_CONFIG"


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
        "127.0.0.1", "Address the RESP gateway listens on.", validate=check.not_empty, flag="--host"
    )
    proxy_port: int = setting(
        6380,
        "TCP port of the RESP gateway (0 picks a free one).",
        validate=check.port,
        flag="--port",
    )
    proxy_tls_port: int = setting(
        0, "Extra TLS port of the gateway (rediss://); 0 turns TLS off.", validate=check.port
    )
    proxy_tls_cert_file: Path | None = setting(
        None,
        "PEM certificate (chain) the gateway's TLS port presents.",
        validate=check.existing_file,
    )
    proxy_tls_key_file: Path | None = setting(
        None, "PEM private key of proxy_tls_cert_file.", validate=check.existing_file
    )
    proxy_unix_socket: Path | None = setting(
        None, "Also listen on this Unix socket path (unset: no Unix socket)."
    )
    proxy_workers: int = setting(
        1,
        "Worker processes of `redisgate proxy`, each a whole gateway sharing the ports with "
        "SO_REUSEPORT under one supervisor (1: a single process, no supervisor).",
        validate=check.workers,
        flag="--workers",
    )
    http_enabled: bool = setting(
        True,
        "Serve the HTTP command API (Upstash-compatible REST, docs/http.md) on "
        "proxy_host:http_port, with the same keys, scopes and limits as the RESP port.",
    )
    http_port: int = setting(
        7379,
        "TCP port of the HTTP command API (0 picks a free one).",
        validate=check.port,
    )
    http_tls_port: int = setting(
        0,
        "Extra TLS port of the HTTP command API (https://, with proxy_tls_cert_file and "
        "proxy_tls_key_file); 0 turns it off.",
        validate=check.port,
    )
    http_cors_origins: str | None = setting(
        None,
        "Comma-separated browser origins allowed to call the HTTP command API (or * for any); "
        "unset: none.",
        validate=check.origins_or_any,
    )
    http_max_commands: int = setting(
        1000,
        "Most commands in one /pipeline or /multi-exec request of the HTTP command API.",
        validate=check.at_least_one,
    )
    http_timeout_s: float = setting(
        30.0,
        "Longest an HTTP command request may run, blocking commands included (they are "
        "answered with an error after it); server-sent event streams are not bounded by it.",
        validate=check.positive,
    )
    http_max_connections: int = setting(
        10_000,
        "Most HTTP connections the command API holds at once; more are refused with 503.",
        validate=check.at_least_one,
    )
    keys_file: Path | None = setting(
        None,
        "TOML file of instances and API keys (the static key source); `redisgate dev` "
        "writes its own in the data folder.",
    )
    max_clients: int = setting(
        10_000, "Most client connections the gateway accepts at once.", validate=check.at_least_one
    )
    max_anonymous_clients_pct: int = setting(
        25,
        "Share of max_clients (percent) that connections not yet authenticated may hold; the "
        "rest is kept for authenticated clients. Over it, the oldest such connection is closed.",
        validate=check.percent,
    )
    max_anonymous_per_address: int = setting(
        256,
        "Connections not yet authenticated from one client address; over it, that address's "
        "oldest such connection is closed.",
        validate=check.at_least_one,
    )
    max_request_bytes: int = setting(
        64 * 1024 * 1024,
        "Largest single command a client may send (checked before it is buffered).",
        validate=check.at_least_one,
    )
    max_pending_per_client: int = setting(
        1000,
        "Commands a client may have in flight before the gateway stops reading from it.",
        validate=check.at_least_one,
    )
    max_total_request_bytes: int = setting(
        512 * 1024 * 1024,
        "Request bytes all clients together may have buffered (commands still arriving); "
        "over it, the client holding the most is disconnected with an error.",
        validate=check.at_least_one,
    )
    max_total_reply_bytes: int = setting(
        512 * 1024 * 1024,
        "Unsent reply bytes all slow-reading clients together may have buffered; over it, "
        "the client holding the most is disconnected with an error.",
        validate=check.at_least_one,
    )
    max_client_output_bytes: int = setting(
        64 * 1024 * 1024,
        "Unsent reply bytes a slow client may accumulate before it is disconnected.",
        validate=check.at_least_one,
    )
    auth_timeout_s: float = setting(
        10.0, "A new connection must authenticate within this time.", validate=check.positive
    )
    client_idle_timeout_s: float = setting(
        0.0,
        "Close authenticated clients idle this long (0: never, as Redis's default).",
        validate=check.not_negative,
    )
    upstream_connections: int = setting(
        1,
        "Shared connections per instance (and protocol) to its Redis.",
        validate=check.at_least_one,
    )
    upstream_max_inflight_commands: int = setting(
        4096,
        "Commands a shared upstream connection may have unanswered; more wait in the gateway "
        "(and are dropped, never sent, if their client leaves).",
        validate=check.at_least_one,
    )
    upstream_max_inflight_bytes: int = setting(
        16 * 1024 * 1024,
        "Reply bytes a shared upstream connection may be owed (estimated from its recent "
        "replies) before the gateway stops sending it more: bounds what Redis buffers for it.",
        validate=check.at_least_one,
    )
    upstream_connect_timeout_s: float = setting(
        5.0, "How long connecting to an instance's Redis may take.", validate=check.positive
    )
    upstream_timeout_s: float = setting(
        30.0,
        "A shared upstream connection with no reply for this long is failed and reopened.",
        validate=check.positive,
    )
    # Control plane
    control_host: str = setting(
        "127.0.0.1", "Address the control-plane HTTP API listens on.", validate=check.not_empty
    )
    control_port: int = setting(
        8080, "TCP port of the control-plane HTTP API (0 picks a free one).", validate=check.port
    )
    database_url: str | None = setting(
        None,
        "PostgreSQL URL of the control database. Unset under `redisgate dev`, which runs its "
        "own cluster in the data folder.",
        validate=check.postgres_dsn,
        secret=True,
    )
    database_pool_max_size: int = setting(
        10, "Most connections each process keeps open to PostgreSQL.", validate=check.at_least_one
    )
    migrations_dir: Path | None = setting(
        None,
        "Folder of NNN_name.sql migrations (default: the migrations shipped with RedisGate).",
        validate=check.existing_dir,
    )
    # Control plane: HTTP, identity, quotas (kept together; the data plane has its own block)
    control_max_body_bytes: int = setting(
        64 * 1024,
        "Largest request body the control API reads (larger ones get 413).",
        validate=check.at_least_one,
    )
    control_cors_origins: str | None = setting(
        None,
        "Comma-separated browser origins (e.g. https://dash.example.com) allowed to call the "
        "control API; unset: none.",
        validate=check.origins,
    )
    control_trusted_proxies: str | None = setting(
        None,
        "Comma-separated IP addresses of reverse proxies in front of the control API; for "
        "requests from them the client address (login throttling, audit log) is read from "
        "X-Forwarded-For. Unset: the TCP peer is the client.",
        validate=check.ip_list,
    )
    jwt_secret: str | None = setting(
        None,
        "Key that signs access tokens (at least 32 characters). Unset: one is generated into "
        "<data_dir>/jwt-secret (0600) on first run and reused.",
        validate=check.jwt_secret,
        secret=True,
    )
    jwt_previous_secrets: str | None = setting(
        None,
        "Comma-separated earlier jwt_secret values whose tokens are still accepted (key "
        "rotation: move the old secret here, set a new jwt_secret).",
        secret=True,
    )
    backend_secret_keys: str | None = setting(
        None,
        "Comma-separated keys that seal backend passwords at rest (32 random bytes in "
        "base64url each, from `redisgate secrets new-key`): the first seals, all open. Unset: "
        "one is generated into <data_dir>/backend-secret-key (0600) on first run and reused.",
        secret=True,
    )
    access_token_ttl_s: int = setting(
        900, "Lifetime of an access token (JWT).", validate=check.at_least_one
    )
    session_ttl_s: int = setting(
        86_400, "Lifetime of a login session without remember_me.", validate=check.at_least_one
    )
    session_remember_ttl_s: int = setting(
        30 * 86_400, "Lifetime of a login session with remember_me.", validate=check.at_least_one
    )
    argon2_time_cost: int = setting(
        3, "argon2id passes over memory when hashing a password.", validate=check.at_least_one
    )
    argon2_memory_kib: int = setting(
        65_536,
        "argon2id memory per hash, in KiB (64 MiB: RFC 9106's second choice).",
        validate=check.argon2_memory,
    )
    argon2_parallelism: int = setting(
        1,
        "argon2id lanes per hash (each lane is a thread while hashing: 1 keeps a login on one "
        "core; stored hashes with other values are rehashed at the next login).",
        validate=check.at_least_one,
    )
    login_free_failures_per_email: int = setting(
        5,
        "Failed logins for one email from one client address before each further try from "
        "there must wait (1 s, doubling up to login_max_delay_s; other addresses unaffected).",
        validate=check.at_least_one,
    )
    login_free_failures_per_addr: int = setting(
        20,
        "Failed logins from one client address, any emails, before each further try from it "
        "must wait (1 s, doubling up to login_max_delay_s).",
        validate=check.at_least_one,
    )
    login_max_delay_s: int = setting(
        900, "Longest wait between throttled login tries.", validate=check.at_least_one
    )
    login_failure_memory_s: int = setting(
        86_400,
        "How long failed logins (and registrations) are remembered after the last one.",
        validate=check.at_least_one,
    )
    register_max_per_addr: int = setting(
        20,
        "Registrations from one client address before each further one must wait (1 s, "
        "doubling up to login_max_delay_s): slows account spam and probing which emails have "
        "accounts.",
        validate=check.at_least_one,
    )
    audit_refusals_per_minute: int = setting(
        20,
        "Failed logins and 403s one client address may write to the audit log per minute; "
        "more are counted (in the next row and a metric), not written.",
        validate=check.at_least_one,
    )
    password_hash_concurrency: int = setting(
        0,
        "Password hashes (argon2id) computed at once; more wait their turn. 0: one less than "
        "the CPUs (at least 1), so logins leave the gateway a core.",
        validate=check.not_negative,
    )
    quota_default_max_instances: int = setting(
        5, "Instances a new organization may have.", validate=check.not_negative
    )
    quota_default_max_memory_mb: int = setting(
        1024, "Total instance memory (MB) a new organization may have.", validate=check.not_negative
    )
    quota_default_max_api_keys: int = setting(
        20, "API keys a new organization may have.", validate=check.not_negative
    )
    max_orgs_per_user: int = setting(
        10,
        "Organizations one account may own (each has its own quota, so this bounds an account's "
        "share of the platform).",
        validate=check.at_least_one,
    )
    console_key_ttl_s: int = setting(
        300,
        "Lifetime of the short-lived API key the web console's data browser gets "
        "(POST .../console-key), at most 900.",
        validate=check.console_key_ttl,
    )
    events_max_streams: int = setting(
        1000,
        "Most live-update streams (GET /v1/orgs/{id}/events) open at once in one control API "
        "process; more get 429.",
        validate=check.at_least_one,
    )
    events_max_streams_per_user: int = setting(
        10,
        "Most live-update streams one user may have open at once in one control API process "
        "(a browser tab holds one); more get 429.",
        validate=check.at_least_one,
    )
    # Instances: how they get a Redis, and how users reach them
    provisioner: str = setting(
        "local",
        "How instances get a Redis: local (a supervised redis-server per instance) or static "
        "(a db on an operator-registered server, /v1/admin/servers).",
        validate=check.provisioner,
    )
    instances_dir: Path | None = setting(
        None, "Folder of the local provisioner's redis-servers (default: <data_dir>/instances)."
    )
    instance_port_range: str | None = setting(
        None,
        "Ports for local instances, as FIRST-LAST (keep it outside the kernel's ephemeral "
        "range); unset: any free port.",
        validate=check.port_range,
    )
    instances_stop_on_exit: bool = setting(
        False,
        "Local instances live and die with the control plane: stopped when it stops, and "
        "(parent-death signal) when it is killed; otherwise they keep serving and are "
        "re-adopted at the next start. `redisgate dev` always turns it on.",
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
        validate=check.existing_dir,
    )
    postgres_port: int = setting(
        0,
        "Port of the PostgreSQL cluster `redisgate dev` runs (0 picks a free one).",
        validate=check.port,
    )
    redis_server_bin: str = setting(
        "redis-server",
        "The redis-server binary (a name on PATH or a path).",
        validate=check.not_empty,
    )
    redis_port: int = setting(
        0, "Port of the Redis `redisgate dev` runs (0 picks a free one).", validate=check.port
    )
    service_start_timeout_s: float = setting(
        30.0,
        "How long to wait for PostgreSQL or redis-server to become ready.",
        validate=check.positive,
    )
    # Live policy: the gateway's key cache, kept true by the control plane's change notices
    key_cache_ttl_s: float = setting(
        60.0,
        "How long the gateway trusts a cached API key while change notices arrive (without "
        "them, every AUTH reads PostgreSQL).",
        validate=check.not_negative,
    )
    fail_static_s: float = setting(
        600.0,
        "With PostgreSQL unreachable, keys seen this recently keep authenticating new "
        "connections (0: none do).",
        validate=check.not_negative,
    )
    # Limits: what an instance gets when neither it nor its org sets a limit (docs/limits.md)
    default_ops_per_second: int | None = setting(
        None,
        "Commands per second per instance and gateway (unset: unlimited).",
        validate=check.not_negative,
    )
    default_burst: int | None = setting(
        None,
        "Token-bucket depth for default_ops_per_second (unset: one second's worth).",
        validate=check.at_least_one,
    )
    default_max_connections: int | None = setting(
        None,
        "Concurrent connections per instance and gateway (unset: unlimited).",
        validate=check.not_negative,
    )
    default_max_request_bytes: int | None = setting(
        None,
        "Largest command per instance (unset: only max_request_bytes applies).",
        validate=check.not_negative,
    )
    default_daily_commands: int | None = setting(
        None,
        'Commands per instance per UTC day (docs/limits.md, "Daily quotas").',
        validate=check.not_negative,
    )
    default_daily_bytes: int | None = setting(
        None,
        "Request and reply bytes per instance per UTC day.",
        validate=check.not_negative,
    )
    # Metrics
    metrics_enabled: bool = setting(
        True,
        "Serve the gateway's Prometheus metrics on metrics_host:metrics_port (`redisgate proxy`, "
        "`serve` and `dev`; the control API always has its own /metrics).",
    )
    metrics_host: str = setting(
        "127.0.0.1", "Address the gateway's /metrics endpoint listens on.", validate=check.not_empty
    )
    metrics_port: int = setting(
        9121,
        "TCP port of the gateway's /metrics endpoint (0 picks a free one).",
        validate=check.port,
    )
    metrics_instance_labels: bool = setting(
        True,
        "Label per-instance gauges with the instance id; turn off for very large fleets.",
    )
    # Process
    shutdown_timeout_s: float = setting(
        10.0,
        "On SIGTERM, how long in-flight work may take before it is cut off.",
        validate=check.positive,
    )
    log_level: str = setting(
        "info", "One of debug, info, warning, error.", validate=check.log_level
    )

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

    def gateway_address(self) -> tuple[str, int]:
        """Where clients reach the gateway, as endpoints and key URLs show it:
        `gateway_public_host`, else `proxy_host` (127.0.0.1 when it listens on every address)."""
        host = self.gateway_public_host or self.proxy_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return host, self.proxy_port

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
