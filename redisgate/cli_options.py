"""Which settings each `redisgate` subcommand takes as flags, and what each flag is called there.

Every setting can be given in a TOML file or a `REDISGATE_<NAME>` variable to any command
(one file can serve every process), but a command's flags and its `--help` list only the
settings that command reads: `redisgate migrate --help` shows the database URL, not the
gateway's ninety knobs, and a flag a command would ignore is refused as unknown.

Every setting's flag is `--<name-with-dashes>` (`--proxy-port`, `--control-port`). Short
names go to the port and address a command *serves*: for the gateway's commands (`dev`,
`serve`, `proxy`, `keys new`) `--host`/`--port` are the gateway's, and `--workers` is
`proxy`'s; for `redisgate control` they are the control API's. Settings not in any list here
(`redis_port`, which nothing reads) are still settings, shown by `config show`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redisgate.config import SPECS, SPECS_BY_NAME, SettingSpec

# What the RESP gateway reads (`proxy`, and the gateway inside `serve` and `dev`).
GATEWAY = (
    "proxy_host",
    "proxy_port",
    "proxy_tls_port",
    "proxy_tls_cert_file",
    "proxy_tls_key_file",
    "proxy_unix_socket",
    "http_enabled",
    "http_port",
    "http_tls_port",
    "http_cors_origins",
    "http_max_commands",
    "http_timeout_s",
    "http_max_connections",
    "max_clients",
    "max_anonymous_clients_pct",
    "max_anonymous_per_address",
    "max_request_bytes",
    "max_pending_per_client",
    "max_total_request_bytes",
    "max_total_reply_bytes",
    "max_client_output_bytes",
    "auth_timeout_s",
    "client_idle_timeout_s",
    "upstream_connections",
    "upstream_max_inflight_commands",
    "upstream_max_inflight_bytes",
    "upstream_connect_timeout_s",
    "upstream_timeout_s",
    "key_cache_ttl_s",
    "fail_static_s",
    "default_ops_per_second",
    "default_burst",
    "default_max_connections",
    "default_max_request_bytes",
    "default_daily_commands",
    "default_daily_bytes",
    "metrics_enabled",
    "metrics_host",
    "metrics_port",
    "metrics_instance_labels",
)
# Where a gateway finds instances and keys: a keys file, or PostgreSQL (sealed passwords).
KEY_SOURCE = ("keys_file", "database_url", "database_pool_max_size", "backend_secret_keys")
# What the control API reads (`control`, and the control API inside `serve` and `dev`).
CONTROL = (
    "control_host",
    "control_port",
    "database_url",
    "database_pool_max_size",
    "migrations_dir",
    "control_max_body_bytes",
    "control_cors_origins",
    "control_trusted_proxies",
    "jwt_secret",
    "jwt_previous_secrets",
    "backend_secret_keys",
    "access_token_ttl_s",
    "session_ttl_s",
    "session_remember_ttl_s",
    "argon2_time_cost",
    "argon2_memory_kib",
    "argon2_parallelism",
    "login_free_failures_per_email",
    "login_free_failures_per_addr",
    "login_max_delay_s",
    "login_failure_memory_s",
    "register_max_per_addr",
    "audit_refusals_per_minute",
    "password_hash_concurrency",
    "quota_default_max_instances",
    "quota_default_max_memory_mb",
    "quota_default_max_api_keys",
    "max_orgs_per_user",
    "console_key_ttl_s",
    "events_max_streams",
    "events_max_streams_per_user",
    "provisioner",
    "instances_dir",
    "instance_port_range",
    "instances_stop_on_exit",
    "gateway_public_host",
    "redis_server_bin",
    "service_start_timeout_s",
)
# The local stack of `redisgate dev` (it runs its own PostgreSQL).
DEV_STACK = ("postgres_bin_dir", "postgres_port", "service_start_timeout_s")
DATA = ("data_dir",)  # generated secrets (jwt-secret, backend-secret-key), dev's folder
PROCESS = ("shutdown_timeout_s", "log_level")
LOGGING = ("log_level",)
PASSWORD_HASHING = ("argon2_time_cost", "argon2_memory_kib", "argon2_parallelism")
NEW_ORG_QUOTAS = (
    "quota_default_max_instances",
    "quota_default_max_memory_mb",
    "quota_default_max_api_keys",
)

# `dev` makes its own database and keys source, and always stops its instances with it.
_DEV_MANAGES = {"database_url", "keys_file", "instances_stop_on_exit"}
_GATEWAY_SHORT = {"proxy_host": "--host", "proxy_port": "--port", "proxy_workers": "--workers"}
_CONTROL_SHORT = {"control_host": "--host", "control_port": "--port"}


@dataclass(frozen=True, slots=True)
class CommandSettings:
    """The settings one subcommand takes as flags, their short names and help overrides."""

    names: tuple[str, ...]
    short: Mapping[str, str] = field(default_factory=dict)
    help: Mapping[str, str] = field(default_factory=dict)

    def flags_of(self, spec: SettingSpec) -> list[str]:
        canonical = "--" + spec.name.replace("_", "-")
        short = self.short.get(spec.name)
        return [short, canonical] if short else [canonical]


def _unique(*groups: Sequence[str], without: set[str] | None = None) -> tuple[str, ...]:
    names: list[str] = []
    for group in groups:
        names += [n for n in group if n not in names and n not in (without or set())]
    return tuple(sorted(names, key=lambda n: [s.name for s in SPECS].index(n)))


COMMANDS: dict[str, CommandSettings] = {
    "dev": CommandSettings(
        _unique(GATEWAY, CONTROL, DEV_STACK, DATA, PROCESS, without=_DEV_MANAGES),
        short=_GATEWAY_SHORT,
    ),
    "serve": CommandSettings(
        _unique(GATEWAY, KEY_SOURCE, CONTROL, DATA, PROCESS), short=_GATEWAY_SHORT
    ),
    "proxy": CommandSettings(
        _unique(GATEWAY, ("proxy_workers",), KEY_SOURCE, DATA, PROCESS), short=_GATEWAY_SHORT
    ),
    "control": CommandSettings(
        _unique(CONTROL, ("proxy_host", "proxy_port"), DATA, PROCESS),
        short=_CONTROL_SHORT,
        help={
            "proxy_host": "Gateway host shown in instance endpoints and key URLs when "
            "gateway_public_host is unset (0.0.0.0 shows 127.0.0.1).",
            "proxy_port": "Gateway port shown in instance endpoints and key URLs.",
        },
    ),
    "keys add-instance": CommandSettings(_unique(("keys_file",), LOGGING)),
    "keys new": CommandSettings(
        _unique(("keys_file", "proxy_host", "proxy_port", "gateway_public_host"), LOGGING),
        short=_GATEWAY_SHORT,
        help={
            "proxy_host": "Gateway host printed in the key's URL (unless gateway_public_host).",
            "proxy_port": "Gateway port printed in the key's URL.",
        },
    ),
    "keys list": CommandSettings(_unique(("keys_file",), LOGGING)),
    "keys revoke": CommandSettings(_unique(("keys_file",), LOGGING)),
    "keys limits": CommandSettings(_unique(("keys_file",), LOGGING)),
    "admin create-user": CommandSettings(
        _unique(("database_url",), PASSWORD_HASHING, NEW_ORG_QUOTAS, LOGGING)
    ),
    "migrate": CommandSettings(_unique(("database_url", "migrations_dir"), LOGGING)),
    "secrets new-key": CommandSettings(()),
    "secrets reseal": CommandSettings(
        _unique(("database_url", "backend_secret_keys"), DATA, LOGGING)
    ),
    # `config show` shows every setting, so every flag may be tried with it.
    "config show": CommandSettings(tuple(s.name for s in SPECS), short=_GATEWAY_SHORT),
    "config reference": CommandSettings(()),
}


class SettingFlag(argparse.Action):
    """Store a setting's flag value and remember which spelling was typed, so messages name
    the flag the user wrote (`flag --port`, not `flag --control-port`)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        typed = dict(getattr(namespace, "setting_flags", {}))
        typed[self.dest] = option_string or ""
        namespace.setting_flags = typed


def add_setting_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Add `--config` and the flags of the settings `command` reads to its parser."""
    chosen = COMMANDS[command]
    group = parser.add_argument_group("settings (each also REDISGATE_<NAME> or a TOML file)")
    group.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="TOML file of settings (also REDISGATE_CONFIG)",
    )
    for name in chosen.names:
        spec = SPECS_BY_NAME[name]
        group.add_argument(
            *chosen.flags_of(spec),
            dest=spec.name,
            action=SettingFlag,
            default=argparse.SUPPRESS,
            metavar=spec.name.upper(),
            help=chosen.help.get(name, spec.help),
        )
