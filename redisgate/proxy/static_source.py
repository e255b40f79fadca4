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
```

`redisgate keys new --instance cache` appends a key and prints the token once. The gateway
rereads the file when it changes (checked at most once a second), so new keys work at once and
removed ones stop working for new connections.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from redisgate import apikeys
from redisgate.errors import ConfigError
from redisgate.proxy.principals import Backend, Instance, KeyRecord, Principal

_INSTANCE_FIELDS = {"host", "port", "db", "username", "password", "tls", "shared"}
_KEY_FIELDS = {"name", "instance", "sha256"}


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


def parse_keys_file(path: Path) -> dict[str, KeyRecord]:
    """Read and validate the whole file; every problem names the file and the entry."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"keys file {path} does not exist: create it with "
                          f"`redisgate keys add-instance` or fix keys_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"keys file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"keys file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"instances", "keys"})
    if unknown:
        raise ConfigError(f"keys file {path}: unknown section(s) {', '.join(unknown)}")
    instances: dict[str, Instance] = {}
    for name, table in data.get("instances", {}).items():
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
    records: dict[str, KeyRecord] = {}
    for key_id, table in data.get("keys", {}).items():
        where = f"{path}: [keys.{key_id}]"
        _check_fields(where, table, _KEY_FIELDS, {"instance", "sha256"})
        instance = instances.get(table["instance"])
        if instance is None:
            raise ConfigError(f"{where}: no instance named {table['instance']!r}")
        digest = _typed(where, table["sha256"], str, "sha256 must be a string")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"{where}: sha256 must be 64 lowercase hex digits")
        name = _typed(where, table.get("name", key_id), str, "name must be a string")
        principal = Principal(key_id=key_id, key_name=name, instance=instance)
        records[key_id] = KeyRecord(key_id=key_id, digest=digest, principal=principal)
    return records


class StaticSource:
    """A PrincipalSource over a keys file, reloaded when the file changes."""

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

    def maybe_reload(self, now: float) -> None:
        """Reread the file if it changed; a broken file keeps the last good contents."""
        if now - self._checked_at < self.recheck_s:
            return
        self._checked_at = now
        stamp = self._file_stamp()
        if stamp == self._stamp or stamp is None:
            return
        try:
            self._records = parse_keys_file(self.path)
        except ConfigError:
            return  # logged by the caller's periodic check; keep serving what we had
        self._stamp = stamp

    async def get_key(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id)

    @property
    def instances(self) -> dict[str, Instance]:
        return {r.principal.instance.id: r.principal.instance for r in self._records.values()}


# --- Writing (redisgate keys …) ------------------------------------------------------------


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _instance_names(path: Path) -> set[str]:
    """Names of the instances in the file, which must be valid as a whole."""
    if not path.exists():
        return set()
    parse_keys_file(path)
    return set(tomllib.loads(path.read_text()).get("instances", {}))


def add_instance(path: Path, name: str, backend: Backend) -> None:
    """Append an [instances.NAME] table (the file is created 0600: it may hold passwords)."""
    if name in _instance_names(path):
        raise ConfigError(f"{path}: instance {name!r} already exists")
    lines = [f"\n[instances.{name}]", f"host = {_toml_string(backend.host)}",
             f"port = {backend.port}", f"db = {backend.db}"]
    if backend.username:
        lines.append(f"username = {_toml_string(backend.username)}")
    if backend.password:
        lines.append(f"password = {_toml_string(backend.password)}")
    lines += [f"tls = {str(backend.tls).lower()}", f"shared = {str(backend.shared).lower()}"]
    _append(path, lines)


def add_key(path: Path, instance: str, name: str) -> apikeys.MintedKey:
    """Mint a key for `instance`, append its record, and return it (the token is not stored)."""
    if instance not in _instance_names(path):
        raise ConfigError(f"{path}: no instance named {instance!r}")
    key = apikeys.mint()
    _append(path, [f"\n[keys.{key.key_id}]", f"name = {_toml_string(name)}",
                   f"instance = {_toml_string(instance)}", f"sha256 = {_toml_string(key.digest)}"])
    parse_keys_file(path)  # what we wrote must read back
    return key


def _append(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write("\n".join(lines) + "\n")
