"""Scripts of keys limited to key patterns, enforced by Redis itself (issue 14, item 7).

A private redis-server (ACL users are server-wide, and one test restarts it) behind a gateway
whose instances own their server: a key limited to patterns runs its scripts as a backend ACL
user of its own (`rg-key-<key id>`), so Redis refuses every `redis.call()` outside them.
"""

# redis-py leaves execute_command untyped.
# mypy: allow-untyped-calls

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from redisgate import api_key_format
from redisgate.api_key_format import key_id_of
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.backend import key_user_rules
from redisgate.proxy.keys.static import remove_key, store_key
from redisgate.scopes import PRESETS
from tests.integration.proxy.conftest import RunningGateway, run_gateway

SCOPES: dict[str, str | tuple[str, str]] = {
    "app": "+@all ~app:* &app.*",
    "read_app": "+@read +@scripting ~app:*",
    "no_scripting": "+@all -@scripting ~app:*",
    "all": "+@all allkeys allchannels",
    "rescoped": "+@all ~app:*",
    "revoked": "+@all ~app:*",
    "busy": "+@all ~busy:*",
    "second": "+@all ~second:*",
    "shared_app": ("shared", "+@all ~app:*"),
}
CANNOT_ACCESS = "The user executing the script can't access at least one of the keys"
CANNOT_RUN = "The user executing the script can't run this command or subcommand"
CANNOT_PUBLISH = "The user executing the script can't publish to the channel"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("scripts-redis")) as own:
        yield own


@pytest.fixture(scope="module")
def gw(server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with run_gateway(
        server,
        tmp_path_factory.mktemp("scripts"),
        instances=("own", "shared"),
        shared=("shared",),
        scopes=SCOPES,
    ) as running:
        yield running


@pytest.fixture
def db(gw: RunningGateway) -> Iterator[redis.Redis]:
    with gw.direct("own") as direct:
        direct.flushdb()
        yield direct


def key_id(gw: RunningGateway, label: str) -> str:
    found = key_id_of(gw.scoped[label].encode())
    assert found is not None
    return found


def acl_user(direct: redis.Redis, key: str) -> dict[str, Any] | None:
    reply: dict[str, Any] | None = direct.acl_getuser(key_user_rules.user_name(key))
    return reply


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_script_reaches_the_keys_of_the_patterns_only(
    gw: RunningGateway, db: redis.Redis
) -> None:
    db.set("app:1", "mine")
    db.set("other:1", "secret")
    with gw.scoped_client("app") as r:
        assert r.eval("return redis.call('GET', KEYS[1])", 1, "app:1") == b"mine"
        assert r.eval("return redis.call('GET', 'app:1')", 0) == b"mine"
        assert r.eval("return redis.call('SET', 'app:2', 'x')", 0) == b"OK"
        # undeclared keys outside the patterns: Redis itself refuses the call
        for script in (
            "return redis.call('GET', 'other:1')",
            "return redis.call('SET', 'other:1', 'stolen')",
            "return redis.call('COPY', 'other:1', 'app:copy')",
        ):
            with pytest.raises(redis.ResponseError, match=CANNOT_ACCESS):
                r.eval(script, 0)
        with pytest.raises(redis.ResponseError, match=CANNOT_PUBLISH):
            r.eval("return redis.call('PUBLISH', 'sport', 'x')", 0)
        assert r.eval("return redis.call('PUBLISH', 'app.news', 'x')", 0) == 0
        # a declared key outside the patterns: refused before the script runs, as Redis does
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.eval("return 1", 1, "other:1")
        sha = r.script_load("return redis.call('GET', 'other:1')")
        with pytest.raises(redis.ResponseError, match=CANNOT_ACCESS):
            r.evalsha(sha, 0)
    assert db.get("other:1") == b"secret" and not db.exists("app:copy")
    assert db.get("app:2") == b"x"


def test_functions_run_under_the_patterns(gw: RunningGateway, db: redis.Redis) -> None:
    db.function_load(
        "#!lua name=lib\n"
        "redis.register_function('get',\n"
        "  function(keys, args) return redis.call('GET', keys[1]) end)\n"
        "redis.register_function{function_name='peek', flags={'no-writes'},\n"
        "  callback=function(keys, args) return redis.call('GET', args[1]) end}\n",
        replace=True,
    )
    db.set("app:1", "mine")
    db.set("other:1", "secret")
    try:
        with gw.scoped_client("read_app") as r:
            assert r.fcall("get", 1, "app:1") == b"mine"
            assert r.fcall_ro("peek", 0, "app:1") == b"mine"
            with pytest.raises(redis.ResponseError, match=CANNOT_ACCESS):
                r.fcall_ro("peek", 0, "other:1")
            # a read-only scope: writes inside a script are refused by Redis too
            with pytest.raises(redis.ResponseError, match=CANNOT_RUN):
                r.eval("return redis.call('SET', 'app:1', 'x')", 0)
    finally:
        db.function_flush()


def test_the_gateways_refusals_hold_inside_scripts(gw: RunningGateway, db: redis.Redis) -> None:
    """What the gateway refuses a key limited to patterns outside scripts (keyspace-wide
    commands, administration, other dbs) its backend user may not run inside one either."""
    db.set("app:1", "v")
    with gw.scoped_client("app") as r:
        for script in (
            "return redis.call('FLUSHDB')",
            "return redis.call('FLUSHALL')",
            "return redis.call('KEYS', '*')",
            "return redis.call('SCAN', '0')",
            "return redis.call('DBSIZE')",
            "return redis.call('SELECT', '9')",
            "return redis.call('SWAPDB', '0', '9')",
            # what the gateway rewrites to withhold the host (paths, process, addresses)
            "return redis.call('INFO')",
            "return redis.call('INFO', 'server')",
            "return redis.call('SLOWLOG', 'GET')",
        ):
            with pytest.raises(redis.ResponseError, match=CANNOT_RUN):
                r.eval(script, 0)
        own_db = gw.dbs["own"]
        assert r.eval(f"redis.call('SELECT', '{own_db}') return redis.call('GET', 'app:1')", 0) == (
            b"v"
        )
    assert db.get("app:1") == b"v"


def test_the_backend_user_mirrors_the_scope_and_its_password_is_derived(
    gw: RunningGateway, db: redis.Redis
) -> None:
    with gw.scoped_client("app") as r:
        assert r.eval("return 1", 0) == 1
    user = acl_user(db, key_id(gw, "app"))
    assert user is not None and "on" in user["flags"]
    assert user["keys"] == ["~app:*"] and user["channels"] == ["&app.*"]
    own_db = gw.dbs["own"]
    assert {"-flushdb", "-flushall", "-keys", "-select", f"+select|{own_db}"} <= set(
        user["commands"]
    )
    token = gw.scoped["app"]
    # Redis keeps the SHA-256 of the password: the derived one, never the API key
    derived = key_user_rules.user_password(gw.backend.password, key_id(gw, "app"))
    assert user["passwords"] == [hashlib.sha256(derived.encode()).hexdigest()]
    assert hashlib.sha256(token.encode()).hexdigest() not in user["passwords"]


def test_keys_with_every_key_and_channel_run_scripts_as_before(
    gw: RunningGateway, db: redis.Redis
) -> None:
    db.set("other:1", "v")
    with gw.scoped_client("all") as r:
        assert r.eval("return redis.call('GET', 'other:1')", 0) == b"v"
    assert acl_user(db, key_id(gw, "all")) is None


def test_scripting_is_opt_in_and_the_denial_says_how(gw: RunningGateway, db: redis.Redis) -> None:
    hint = "this API key's scope does not allow scripting; add \\+@scripting to its scope"
    with gw.scoped_client("no_scripting") as r, gw.client("own") as full:
        for client in (r, full):
            with pytest.raises(
                redis.exceptions.NoPermissionError,
                match=f"^this user has no permissions to run the 'eval' command: {hint}",
            ):
                client.eval("return 1", 0)
    assert "-@scripting" in PRESETS["full"]
    assert acl_user(db, key_id(gw, "no_scripting")) is None


def test_shared_servers_still_refuse_scripts(gw: RunningGateway) -> None:
    with (
        gw.scoped_client("shared_app") as r,
        pytest.raises(redis.exceptions.NoPermissionError, match="shared server"),
    ):
        r.eval("return 1", 0)


def test_scripts_keep_their_order_with_other_commands(gw: RunningGateway, db: redis.Redis) -> None:
    with gw.scoped_client("app") as r:
        pipe = r.pipeline(transaction=False)
        for i in range(20):
            pipe.set("app:n", i)
            pipe.eval("return redis.call('GET', 'app:n')", 0)
            pipe.incr("app:n")
            pipe.eval("return redis.call('GET', 'app:n')", 0)
        replies = pipe.execute()
    for i in range(20):
        assert replies[4 * i : 4 * i + 4] == [True, str(i).encode(), i + 1, str(i + 1).encode()]


def test_not_inside_a_transaction(gw: RunningGateway, db: redis.Redis) -> None:
    with gw.scoped_client("app") as r:
        pipe = r.pipeline(transaction=True)
        pipe.set("app:1", "x")
        pipe.eval("return 1", 0)
        with pytest.raises(redis.ResponseError, match="runs as the key's own backend user"):
            pipe.execute()
    assert not db.exists("app:1")


def test_rescoping_and_revoking_reach_the_backend_user(gw: RunningGateway, db: redis.Redis) -> None:
    db.set("app:1", "a")
    db.set("other:1", "o")
    rescoped, revoked = key_id(gw, "rescoped"), key_id(gw, "revoked")
    with gw.scoped_client("rescoped") as r, gw.scoped_client("revoked") as gone:
        assert r.eval("return redis.call('GET', 'app:1')", 0) == b"a"
        assert gone.eval("return redis.call('GET', 'app:1')", 0) == b"a"
        assert acl_user(db, revoked) is not None
        # the keys file is the static mode's source: re-scope one key, remove the other
        token = gw.scoped["rescoped"]
        minted = api_key_format.MintedKey(rescoped, token, api_key_format.digest(token))
        store_key(gw.keys_file, "own", "rescoped", minted, "+@all ~other:*")
        remove_key(gw.keys_file, revoked)
        eventually(lambda: acl_user(db, revoked) is None)
        eventually(lambda: (acl_user(db, rescoped) or {}).get("keys") == ["~other:*"])
        assert r.eval("return redis.call('GET', 'other:1')", 0) == b"o"
        with pytest.raises(redis.ResponseError, match=CANNOT_ACCESS):
            r.eval("return redis.call('GET', 'app:1')", 0)
        with pytest.raises(redis.ConnectionError):
            gone.eval("return 1", 0)


def test_the_backend_user_is_recreated_after_a_restart(
    gw: RunningGateway, server: RedisServer
) -> None:
    with gw.scoped_client("app") as r:
        assert r.eval("return redis.call('SET', 'app:1', 'v')", 0) == b"OK"
        server.stop()
        server.requested_port = server.port
        server.start()  # no persistence: ACL users and data are gone
        with gw.direct("own") as direct:
            assert acl_user(direct, key_id(gw, "app")) is None
            # the first script after the restart sets the user up again
            assert r.eval("return redis.call('SET', 'app:1', 'w')", 0) == b"OK"
            assert direct.get("app:1") == b"w"
            with pytest.raises(redis.ResponseError, match=CANNOT_ACCESS):
                r.eval("return redis.call('GET', 'other:1')", 0)


def test_keys_running_scripts_at_once_are_bounded(gw: RunningGateway, db: redis.Redis) -> None:
    """Past `max_open_users` keys holding script connections on an instance, an idle one is
    closed to make room; when none is idle, the script is refused."""
    pool = next(p for p in gw.gateway.pools if p.instance.name == "own")
    before = pool.key_users.max_open_users
    gw.call(lambda: setattr(pool.key_users, "max_open_users", 1))
    try:
        with gw.scoped_client("busy") as busy, gw.scoped_client("second") as second:
            assert second.eval("return 1", 0) == 1  # holds a connection, idle now
            spin = (
                "local t = redis.call('TIME') local stop = t[1] * 1000000 + t[2] + 400000 "
                "while true do local n = redis.call('TIME') "
                "if n[1] * 1000000 + n[2] > stop then return 1 end end"
            )
            result: list[object] = []
            runner = threading.Thread(target=lambda: result.append(busy.eval(spin, 0)))
            runner.start()  # takes the one place (the idle `second` makes room)
            time.sleep(0.1)
            with pytest.raises(redis.ResponseError, match="max script connections exceeded"):
                second.eval("return 1", 0)
            runner.join(5)
            assert result == [1]
            assert second.eval("return 2", 0) == 2  # `busy` is idle again: room is made
        assert gw.call(lambda: pool.key_users.open_users()) == 1
    finally:
        gw.call(lambda: setattr(pool.key_users, "max_open_users", before))


def test_connections_per_key_user_are_bounded(gw: RunningGateway, db: redis.Redis) -> None:
    """Many clients of one key share its user's connection (one per protocol)."""
    pool = next(p for p in gw.gateway.pools if p.instance.name == "own")
    clients = [gw.scoped_client("app") for _ in range(10)]
    try:
        for c in clients:
            assert c.eval("return 1", 0) == 1
        counts = gw.call(pool.connection_counts)
        assert counts["key_user"] <= pool.key_users.max_open_users * 2
        key_conns = gw.call(lambda: [c for c in pool.key_users.connections() if c.backend.username])
        names = [c.backend.username for c in key_conns]
        assert names.count(key_user_rules.user_name(key_id(gw, "app"))) == 1
    finally:
        for c in clients:
            c.close()


def test_the_api_key_never_reaches_the_backend(gw: RunningGateway, tmp_path: Path) -> None:
    token = gw.scoped["app"]
    with gw.scoped_client("app") as r:
        r.eval("return 1", 0)
    with gw.direct("own") as direct:
        listing = direct.execute_command("ACL", "LIST")
    assert all(token.encode() not in line for line in listing)
