"""The static principal source: instances and keys in a TOML file, for deployments without Postgres.

```toml
[instances.cache]
host = "10.0.0.5"
port = 6379
password = "backend-secret"   # optional; also `username`
db = 0                        # optional
tls = false                   # optional
shared = false                # optional: other dbs of this server belong to other tenants

[keys.abcdefghijkl]           # the key's public id
name = "web frontend"
instance = "cache"
sha256 = "…"                  # hex SHA-256 of the whole token; the token itself is not stored
scopes = "+@read ~app:*"      # optional: Redis ACL rules (docs/scopes.md); default: the full preset
ops_per_second = 100          # optional, on keys and instances: limits (docs/limits.md)
```

The limit fields (`ops_per_second`, `burst`, `max_connections`, `max_request_bytes`,
`daily_commands`, `daily_bytes`) may appear in an instance's table and in a key's.

`redisgate keys new --instance cache` adds a key and prints the token once. The gateway
rereads the file when it changes (checked at most once a second), so new keys work at once and
removed ones stop working for new connections.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
from collections.abc import Collection
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redisgate import api_key_format
from redisgate.backends import Backend
from redisgate.errors import ConfigError
from redisgate.limits import FIELDS, MAXIMUM, MINIMUM, Limits
from redisgate.proxy.keys.principals import FULL_SCOPE, Instance, KeyRecord, Principal
from redisgate.scopes import ScopeError, compile_scope, parse_scope

if TYPE_CHECKING:
    from redisgate.store.usage import UsageRow

log = logging.getLogger(__name__)

_INSTANCE_FIELDS = {"host", "port", "db", "username", "password", "tls", "shared", *FIELDS}
_KEY_FIELDS = {"name", "instance", "sha256", "scopes", *FIELDS}


def _limits(where: str, table: dict[str, Any]) -> Limits:
    values = {}
    for name in FIELDS:
        if name in table:
            value = _typed(where, table[name], int, f"{name} must be a whole number")
            if not MINIMUM[name] <= value <= MAXIMUM[name]:
                raise ConfigError(f"{where}: {name} is out of range")
            values[name] = value
    return Limits().merged(values)


def _check_fields(where: str, table: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    missing = sorted(required - set(table))
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}")


def _typed(where: str, value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {what}")
    return value


def _tables(path: Path, data: dict[str, Any], section: str) -> list[tuple[str, dict[str, Any]]]:
    """The `[section.NAME]` tables, refusing anything else in the section."""
    entries = data.get(section, {})
    if not isinstance(entries, dict):
        raise ConfigError(f"keys file {path}: '{section}' must be a section of [{section}.NAME]")
    for name, table in entries.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"keys file {path}: {section}.{name} must be a table ([{section}.{name}])"
            )
    return list(entries.items())


def parse_keys_file(path: Path) -> dict[str, KeyRecord]:
    """Read and validate the whole file; every problem names the file and the entry."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"keys file {path} does not exist: create it with "
            f"`redisgate keys add-instance`, or fix keys_file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"keys file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"keys file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"instances", "keys"})
    if unknown:
        raise ConfigError(f"keys file {path}: unknown section(s) {', '.join(unknown)}")
    instances: dict[str, Instance] = {}
    instance_limits: dict[str, Limits] = {}
    for name, table in _tables(path, data, "instances"):
        where = f"{path}: [instances.{name}]"
        _check_fields(where, table, _INSTANCE_FIELDS, {"host", "port"})
        port = _typed(where, table["port"], int, "port must be a whole number")
        db = _typed(where, table.get("db", 0), int, "db must be a whole number")
        if not 0 < port < 65536 or db < 0:
            raise ConfigError(f"{where}: port must be 1-65535 and db 0 or more")
        backend = Backend(
            host=_typed(where, table["host"], str, "host must be a string"),
            port=port,
            db=db,
            username=_typed(where, table.get("username", ""), str, "username must be a string")
            or None,
            password=_typed(where, table.get("password", ""), str, "password must be a string")
            or None,
            tls=_typed(where, table.get("tls", False), bool, "tls must be true or false"),
            shared=_typed(where, table.get("shared", False), bool, "shared must be true or false"),
        )
        instances[name] = Instance(id=name, name=name, backend=backend)
        instance_limits[name] = _limits(where, table)
    records: dict[str, KeyRecord] = {}
    for key_id, table in _tables(path, data, "keys"):
        where = f"{path}: [keys.{key_id}]"
        _check_fields(where, table, _KEY_FIELDS, {"instance", "sha256"})
        instance = instances.get(_typed(where, table["instance"], str, "instance must be a string"))
        if instance is None:
            raise ConfigError(f"{where}: no instance named {table['instance']!r}")
        digest = _typed(where, table["sha256"], str, "sha256 must be a string")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"{where}: sha256 must be 64 lowercase hex digits")
        name = _typed(where, table.get("name", key_id), str, "name must be a string")
        scope = FULL_SCOPE
        if "scopes" in table:
            try:
                scope = compile_scope(_typed(where, table["scopes"], str, "scopes: not a string"))
            except ScopeError as exc:
                raise ConfigError(f"{where}: scopes: {exc}") from None
        principal = Principal(
            key_id=key_id,
            key_name=name,
            instance=instance,
            scope=scope,
            limits=_limits(where, table),
            instance_limits=instance_limits[instance.id],
        )
        records[key_id] = KeyRecord(key_id=key_id, digest=digest, principal=principal)
    return records


class StaticSource:
    """A KeySource over a keys file, reloaded when the file changes; it records nothing."""

    fleet_wide = False
    negative_ttl_s = 5.0

    def __init__(self, path: Path, *, recheck_s: float = 1.0) -> None:
        self.path = path
        self.recheck_s = recheck_s
        self._records = parse_keys_file(path)
        self._stamp = self._file_stamp()
        self._checked_at = 0.0

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def maybe_reload(self, now: float) -> bool:
        """Reread the file if it changed; True when it did. A broken file keeps the last good
        contents (and is logged), so a half-written edit never locks every client out."""
        if now - self._checked_at < self.recheck_s:
            return False
        self._checked_at = now
        stamp = self._file_stamp()
        if stamp == self._stamp or stamp is None:
            return False
        self._stamp = stamp
        try:
            self._records = parse_keys_file(self.path)
        except Exception as exc:  # a half-written or broken file must not lock clients out
            log.error("keeping the previous keys: %s", exc)
            return False
        log.info("keys file %s reloaded", self.path)
        return True

    async def get_key(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id)

    # Nothing is recorded: without a shared store, each gateway counts only its own use.

    async def record_use(self, key_ids: Collection[str]) -> bool:
        return True

    async def record_usage(self, gateway_id: str, seq: int, rows: list[UsageRow]) -> bool:
        return True

    async def day_totals(
        self, day: date, key_ids: list[str], instance_ids: list[str]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        zero = (0, 0)
        return {
            **{("key", k): zero for k in key_ids},
            **{("instance", i): zero for i in instance_ids},
        }


# --- Writing (redisgate keys …) ------------------------------------------------------------
#
# Writes rewrite the whole file from its parsed contents (to a temporary file, then renamed), so
# a reader never sees half a file. Comments are not kept: the file is machine-managed.

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string, as long as characters outside the BMP stay
    # literal (JSON would write surrogate pairs, which TOML refuses).
    return json.dumps(value, ensure_ascii=False)


def _load_raw(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    if not path.exists():
        return {"instances": {}, "keys": {}}
    parse_keys_file(path)  # refuse to build on a broken file
    data = tomllib.loads(path.read_text())
    return {"instances": data.get("instances", {}), "keys": data.get("keys", {})}


def _dump(path: Path, data: dict[str, dict[str, dict[str, Any]]]) -> None:
    lines = [
        "# RedisGate keys file: instances and API keys (see `redisgate keys --help`).",
        "# Only SHA-256 digests of keys are stored; the tokens were shown once.",
    ]
    for section in ("instances", "keys"):
        for name, table in data[section].items():
            lines.append(f"\n[{section}.{name}]")
            for field, value in table.items():
                if isinstance(value, bool):
                    text = "true" if value else "false"
                elif isinstance(value, int):
                    text = str(value)
                else:
                    text = _toml_string(str(value))
                lines.append(f"{field} = {text}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover would keep its own (maybe looser) mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    try:
        parse_keys_file(tmp)  # what we wrote must read back before it replaces the file
    except ConfigError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def set_instance(path: Path, name: str, backend: Backend, *, replace: bool = False) -> None:
    """Add (or with `replace`, update) an instance; the file is 0600: it holds passwords."""
    if not _NAME.match(name):
        raise ConfigError(f"instance name {name!r}: use 1-64 letters, digits, '-' or '_'")
    data = _load_raw(path)
    if name in data["instances"] and not replace:
        raise ConfigError(f"{path}: instance {name!r} already exists")
    table: dict[str, Any] = {"host": backend.host, "port": backend.port, "db": backend.db}
    if backend.username:
        table["username"] = backend.username
    if backend.password:
        table["password"] = backend.password
    table["tls"] = backend.tls
    table["shared"] = backend.shared
    data["instances"][name] = table
    _dump(path, data)


def add_key(
    path: Path, instance: str, name: str, scopes: str | None = None
) -> api_key_format.MintedKey:
    """Mint a key for `instance`, store its digest, and return it (the token is not stored).

    `scopes` (Redis ACL rules) is validated and stored in canonical form; None: full preset.
    """
    key = api_key_format.mint()
    store_key(path, instance, name, key, scopes)
    return key


def store_key(
    path: Path, instance: str, name: str, key: api_key_format.MintedKey, scopes: str | None = None
) -> None:
    data = _load_raw(path)
    if instance not in data["instances"]:
        raise ConfigError(f"{path}: no instance named {instance!r}")
    entry = {"name": name, "instance": instance, "sha256": key.digest}
    if scopes is not None:
        try:
            entry["scopes"] = parse_scope(scopes).canonical
        except ScopeError as exc:
            raise ConfigError(f"invalid scopes: {exc}") from None
    data["keys"][key.key_id] = entry
    _dump(path, data)


def set_limits(path: Path, section: str, name: str, limits: dict[str, int | None]) -> None:
    """Set (or, with None, remove) limit fields of `[instances.NAME]` or `[keys.ID]`."""
    data = _load_raw(path)
    if name not in data[section]:
        raise ConfigError(f"{path}: no {section[:-1]} {name!r}")
    table = data[section][name]
    for field, value in limits.items():
        if field not in FIELDS:
            raise ConfigError(f"unknown limit {field!r}; limits are {', '.join(FIELDS)}")
        if value is None:
            table.pop(field, None)
        else:
            table[field] = value
    _dump(path, data)


def remove_key(path: Path, key_id: str) -> None:
    data = _load_raw(path)
    if data["keys"].pop(key_id, None) is None:
        raise ConfigError(f"{path}: no key with id {key_id!r}")
    _dump(path, data)
