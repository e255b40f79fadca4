"""The static keys file: parsing (errors name file and entry), writing, and reloading."""

from __future__ import annotations

import os
import stat
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from redisgate import api_key_format
from redisgate.backends import Backend
from redisgate.errors import ConfigError
from redisgate.limits import Limits
from redisgate.proxy.keys.principals import Instance, KeyRecord, Principal
from redisgate.proxy.keys.static import (
    StaticSource,
    add_key,
    parse_keys_file,
    remove_key,
    set_instance,
    set_limits,
    store_key,
)

T = TypeVar("T")
KEY = api_key_format.mint()
DIGEST = KEY.digest


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the coroutine suspended")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


INSTANCE = '[instances.cache]\nhost = "10.0.0.5"\nport = 6379\n'


def key_entry(key_id: str = KEY.key_id, **fields: str) -> str:
    values = {"name": '"web"', "instance": '"cache"', "sha256": f'"{DIGEST}"', **fields}
    body = "".join(f"{k} = {v}\n" for k, v in values.items() if v != "-")
    return f"[keys.{key_id}]\n{body}"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- Parsing -------------------------------------------------------------------------------


def test_parse_a_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "keys.toml",
        '[instances.cache]\nhost = "10.0.0.5"\nport = 6380\npassword = "pw"\nusername = "gw"\n'
        "db = 4\ntls = true\nshared = true\n\n"
        '[instances.other]\nhost = "h2"\nport = 1\n\n' + key_entry(),
    )
    backend = Backend("10.0.0.5", 6380, db=4, username="gw", password="pw", tls=True, shared=True)
    principal = Principal(KEY.key_id, "web", Instance("cache", "cache", backend))
    assert parse_keys_file(path) == {KEY.key_id: KeyRecord(KEY.key_id, DIGEST, principal)}


def test_parse_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE + key_entry(name="-"))
    record = parse_keys_file(path)[KEY.key_id]
    assert record.principal.key_name == KEY.key_id  # the name defaults to the id
    assert record.principal.instance.backend == Backend("10.0.0.5", 6379)


def test_parse_an_empty_file(tmp_path: Path) -> None:
    assert parse_keys_file(write(tmp_path / "keys.toml", "")) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (INSTANCE + 'colour = "red"\n', "[instances.cache]: unknown field(s) colour"),
        (
            INSTANCE + "a = 1\nz = 2\n",
            "[instances.cache]: unknown field(s) a, z",
        ),
        ('[instances.cache]\nhost = "h"\n', "[instances.cache]: missing field(s) port"),
        ("[instances.cache]\n", "[instances.cache]: missing field(s) host, port"),
        (
            '[instances.cache]\nhost = "h"\nport = "6379"\n',
            "[instances.cache]: port must be a whole number",
        ),
        (
            '[instances.cache]\nhost = "h"\nport = true\n',
            "[instances.cache]: port must be a whole number",
        ),
        (INSTANCE + "db = 1.5\n", "[instances.cache]: db must be a whole number"),
        (INSTANCE + "db = false\n", "[instances.cache]: db must be a whole number"),
        ("[instances.cache]\nhost = 5\nport = 1\n", "[instances.cache]: host must be a string"),
        (INSTANCE + "password = 1\n", "[instances.cache]: password must be a string"),
        (INSTANCE + "username = []\n", "[instances.cache]: username must be a string"),
        (INSTANCE + 'tls = "yes"\n', "[instances.cache]: tls must be true or false"),
        (INSTANCE + "shared = 1\n", "[instances.cache]: shared must be true or false"),
        (
            '[instances.cache]\nhost = "h"\nport = 0\n',
            "[instances.cache]: port must be 1-65535 and db 0 or more",
        ),
        (
            '[instances.cache]\nhost = "h"\nport = 65536\n',
            "[instances.cache]: port must be 1-65535 and db 0 or more",
        ),
        (INSTANCE + "db = -1\n", "[instances.cache]: port must be 1-65535 and db 0 or more"),
        (
            INSTANCE + key_entry(colour='"red"'),
            f"[keys.{KEY.key_id}]: unknown field(s) colour",
        ),
        (
            INSTANCE + key_entry(sha256="-"),
            f"[keys.{KEY.key_id}]: missing field(s) sha256",
        ),
        (
            INSTANCE + key_entry(sha256="-", instance="-"),
            f"[keys.{KEY.key_id}]: missing field(s) instance, sha256",
        ),
        (INSTANCE + key_entry(sha256="5"), f"[keys.{KEY.key_id}]: sha256 must be a string"),
        (INSTANCE + key_entry(name="5"), f"[keys.{KEY.key_id}]: name must be a string"),
        (
            INSTANCE + key_entry(sha256=f'"{DIGEST.upper()}"'),
            f"[keys.{KEY.key_id}]: sha256 must be 64 lowercase hex digits",
        ),
        (
            INSTANCE + key_entry(sha256=f'"{DIGEST[:-1]}"'),
            f"[keys.{KEY.key_id}]: sha256 must be 64 lowercase hex digits",
        ),
        (
            INSTANCE + key_entry(sha256=f'"{DIGEST[:-1]}g"'),
            f"[keys.{KEY.key_id}]: sha256 must be 64 lowercase hex digits",
        ),
        (
            INSTANCE + key_entry(instance='"nope"'),
            f"[keys.{KEY.key_id}]: no instance named 'nope'",
        ),
        (key_entry(), f"[keys.{KEY.key_id}]: no instance named 'cache'"),
    ],
)
def test_parse_errors_name_the_file_and_the_entry(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "keys.toml", text)
    with pytest.raises(ConfigError) as info:
        parse_keys_file(path)
    assert str(info.value) == f"{path}: {message}"


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", "[users.bob]\nx = 1\n[more]\n")
    with pytest.raises(ConfigError) as info:
        parse_keys_file(path)
    assert str(info.value) == f"keys file {path}: unknown section(s) more, users"


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", "[instances.cache\n")
    with pytest.raises(ConfigError, match=r"^keys file .*keys\.toml is not valid TOML: "):
        parse_keys_file(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        parse_keys_file(path)
    assert str(info.value) == (
        f"keys file {path} does not exist: create it with "
        "`redisgate keys add-instance`, or fix keys_file"
    )


@pytest.mark.parametrize(
    "text",
    [
        "instances = 5\n",
        "[keys]\nabcdefghijkl = 1\n",
        INSTANCE + key_entry(instance="[1]"),
    ],
)
def test_entries_that_are_not_tables_are_config_errors(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "keys.toml", text)
    with pytest.raises(ConfigError, match=str(path)):
        parse_keys_file(path)


# --- Writing -------------------------------------------------------------------------------


def test_set_instance_and_add_key_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "keys.toml"  # the folder is created
    backend = Backend("redis.internal", 6390, db=2, username="u", password='p"w\\', tls=True)
    set_instance(path, "cache", backend)
    key = add_key(path, "cache", 'web "frontend" \\ café')
    assert api_key_format.key_id_of(key.token.encode()) == key.key_id
    assert key.digest == api_key_format.digest(key.token)
    record = parse_keys_file(path)[key.key_id]
    assert record.digest == key.digest
    assert record.principal == Principal(
        key.key_id, 'web "frontend" \\ café', Instance("cache", "cache", backend)
    )
    assert api_key_format.verify(key.token.encode(), record.digest)
    assert key.token not in path.read_text()  # only the digest is stored
    assert mode(path) == 0o600
    assert not (tmp_path / "conf" / "keys.toml.tmp").exists()


def test_store_key_and_remove_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    set_instance(path, "cache", Backend("h", 1))
    set_instance(path, "other", Backend("h", 2, shared=True))
    first, second = api_key_format.mint(), api_key_format.mint()
    store_key(path, "cache", "first", first)
    store_key(path, "other", "second", second)
    records = parse_keys_file(path)
    assert sorted(records) == sorted([first.key_id, second.key_id])
    assert records[second.key_id].principal.instance.backend == Backend("h", 2, shared=True)
    remove_key(path, first.key_id)
    assert list(parse_keys_file(path)) == [second.key_id]
    with pytest.raises(ConfigError) as info:
        remove_key(path, first.key_id)
    assert str(info.value) == f"{path}: no key with id {first.key_id!r}"
    assert mode(path) == 0o600


def test_store_key_needs_the_instance(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    set_instance(path, "cache", Backend("h", 1))
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        store_key(path, "nope", "k", api_key_format.mint())
    assert str(info.value) == f"{path}: no instance named 'nope'"
    assert path.read_bytes() == before


def test_set_instance_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    set_instance(path, "cache", Backend("h", 1))
    key = add_key(path, "cache", "web")
    with pytest.raises(ConfigError) as info:
        set_instance(path, "cache", Backend("h", 2))
    assert str(info.value) == f"{path}: instance 'cache' already exists"
    set_instance(path, "cache", Backend("h2", 2, db=1), replace=True)
    backend = parse_keys_file(path)[key.key_id].principal.instance.backend
    assert backend == Backend("h2", 2, db=1)


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "a/b", "ü", "a.b"])
def test_set_instance_names(tmp_path: Path, name: str) -> None:
    path = tmp_path / "keys.toml"
    with pytest.raises(ConfigError, match="use 1-64 letters, digits, '-' or '_'"):
        set_instance(path, name, Backend("h", 1))
    assert not path.exists()


def test_writes_refuse_to_build_on_a_broken_file(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE + "port = 2\n")  # duplicate key: not TOML
    with pytest.raises(ConfigError, match="is not valid TOML"):
        set_instance(path, "other", Backend("h", 1))
    with pytest.raises(ConfigError, match="is not valid TOML"):
        add_key(path, "cache", "web")
    assert path.read_text() == INSTANCE + "port = 2\n"


def test_rewrite_tightens_a_hand_written_file_to_0600(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE)
    os.chmod(path, 0o644)
    add_key(path, "cache", "web")
    assert mode(path) == 0o600


def test_a_leftover_temporary_file_does_not_loosen_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    leftover = write(tmp_path / "keys.toml.tmp", "half a file")
    os.chmod(leftover, 0o644)
    set_instance(path, "cache", Backend("h", 1, password="secret"))
    assert mode(path) == 0o600


def test_key_names_outside_the_bmp_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    set_instance(path, "cache", Backend("h", 1))
    try:
        key = add_key(path, "cache", "web \N{GRINNING FACE}")
    finally:
        records = parse_keys_file(path)  # the file must stay readable whatever happened
    assert records[key.key_id].principal.key_name == "web \N{GRINNING FACE}"


# --- StaticSource and reloading ------------------------------------------------------------


def bump(path: Path, text: str, when_ns: int) -> None:
    """Rewrite the file with an explicit mtime, so the change is seen whatever the clock."""
    path.write_text(text)
    os.utime(path, ns=(when_ns, when_ns))


def test_source_answers_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE + key_entry())
    source = StaticSource(path)
    record = run(source.get_key(KEY.key_id))
    assert record is not None and record.digest == DIGEST
    assert run(source.get_key("zzzzzzzzzzzz")) is None


def test_source_fails_fast_on_a_broken_file(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", key_entry())
    with pytest.raises(ConfigError, match="no instance named 'cache'"):
        StaticSource(path)


def test_maybe_reload_picks_up_changes_after_recheck_s(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE)
    os.utime(path, ns=(10**18, 10**18))
    source = StaticSource(path, recheck_s=1.0)
    assert run(source.get_key(KEY.key_id)) is None
    assert source.maybe_reload(10.0) is False  # unchanged
    bump(path, INSTANCE + key_entry(), 2 * 10**18)
    assert source.maybe_reload(10.5) is False  # checked too recently
    assert run(source.get_key(KEY.key_id)) is None
    assert source.maybe_reload(11.0) is True
    assert run(source.get_key(KEY.key_id)) is not None
    assert source.maybe_reload(20.0) is False  # nothing new
    bump(path, INSTANCE, 3 * 10**18)  # key removed
    assert source.maybe_reload(21.0) is True
    assert run(source.get_key(KEY.key_id)) is None


def test_maybe_reload_keeps_the_last_good_contents(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE + key_entry())
    os.utime(path, ns=(10**18, 10**18))
    source = StaticSource(path, recheck_s=1.0)
    bump(path, INSTANCE + key_entry(instance='"nope"'), 2 * 10**18)  # half-done edit
    assert source.maybe_reload(10.0) is False
    assert run(source.get_key(KEY.key_id)) is not None
    assert "keeping the previous keys" in caplog.text
    assert "no instance named 'nope'" in caplog.text
    assert source.maybe_reload(20.0) is False  # the broken version is not reparsed
    other = api_key_format.mint()
    bump(path, INSTANCE + key_entry(other.key_id, sha256=f'"{other.digest}"'), 3 * 10**18)
    assert source.maybe_reload(30.0) is True
    assert run(source.get_key(KEY.key_id)) is None
    assert run(source.get_key(other.key_id)) is not None


def test_maybe_reload_keeps_the_keys_when_the_file_disappears(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE + key_entry())
    source = StaticSource(path, recheck_s=1.0)
    path.unlink()
    assert source.maybe_reload(10.0) is False
    assert run(source.get_key(KEY.key_id)) is not None


def test_maybe_reload_survives_any_broken_file(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE + key_entry())
    os.utime(path, ns=(10**18, 10**18))
    source = StaticSource(path, recheck_s=1.0)
    bump(path, "instances = 5\n", 2 * 10**18)
    assert source.maybe_reload(10.0) is False
    assert run(source.get_key(KEY.key_id)) is not None


# --- Limits (docs/limits.md) -----------------------------------------------------------------


def test_limits_on_instances_and_keys_reach_the_principal(tmp_path: Path) -> None:
    path = write(
        tmp_path / "keys.toml",
        INSTANCE
        + "ops_per_second = 100\nmax_connections = 0\n\n"
        + key_entry(burst="5", max_request_bytes="4096"),
    )
    principal = parse_keys_file(path)[KEY.key_id].principal
    assert principal.instance_limits == Limits(ops_per_second=100, max_connections=0)
    assert principal.limits == Limits(burst=5, max_request_bytes=4096)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("ops_per_second", "-1", "ops_per_second is out of range"),
        ("burst", "0", "burst is out of range"),
        ("max_connections", '"ten"', "max_connections must be a whole number"),
        ("daily_bytes", "true", "daily_bytes must be a whole number"),
    ],
)
def test_bad_limits_name_the_entry_and_field(
    tmp_path: Path, field: str, value: str, problem: str
) -> None:
    path = write(tmp_path / "keys.toml", INSTANCE + "\n" + key_entry(**{field: value}))
    with pytest.raises(ConfigError, match=rf"\[keys\.{KEY.key_id}\]: {problem}"):
        parse_keys_file(path)


def test_set_limits_writes_and_clears_fields(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    set_instance(path, "cache", Backend("127.0.0.1", 6379))
    key = add_key(path, "cache", "web")
    set_limits(path, "instances", "cache", {"ops_per_second": 10, "burst": 20})
    set_limits(path, "keys", key.key_id, {"max_connections": 3})
    set_limits(path, "instances", "cache", {"burst": None})
    principal = parse_keys_file(path)[key.key_id].principal
    assert principal.instance_limits == Limits(ops_per_second=10)
    assert principal.limits == Limits(max_connections=3)
    with pytest.raises(ConfigError, match="unknown limit 'per_minute'"):
        set_limits(path, "keys", key.key_id, {"per_minute": 1})
