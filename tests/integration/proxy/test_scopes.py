"""API key scopes (Redis 7 ACL rules) enforced by the gateway, with redis-py against a real Redis.

One gateway serves the whole module (two instances: `main` holds the scoped keys, `other` shows
that FLUSHDB and KEYS stay inside the instance). Every test seeds the keys it reads.
"""

# redis-py leaves execute_command and pubsub untyped.
# mypy: allow-untyped-calls

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import redis

from redisgate import api_key_format
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.wire.encode import encode_command
from redisgate.scopes import PRESETS, parse_scope, prefix_scope
from tests.integration.proxy.conftest import RunningGateway, run_gateway

SCOPES = {
    "read_app": "+@read ~app:*",
    "split": "+@all %R~a:* %W~b:*",
    "app": "+@all ~app:*",
    "get_denied_last": "+@all -get allkeys",
    "get_denied_first": "-get +@all allkeys",
    "no_scripting": "+@all allkeys -@scripting",
    "all": "+@all allkeys allchannels",
    "news": "+@all allkeys &news.*",
    "read-only": PRESETS["read-only"],
    "write-only": PRESETS["write-only"],
    "pubsub-only": PRESETS["pubsub-only"],
    "prefix": prefix_scope("app:"),
    # with scripting granted, for the differential test of scripts
    "read_app_scripts": "+@read +@scripting ~app:*",
    "write_only_scripts": PRESETS["write-only"] + " +@scripting",
    "prefix_scripts": prefix_scope("app:") + " +@scripting",
    "read_only_scripts": PRESETS["read-only"] + " +@scripting",
}

NOPERM_KEY = "^No permissions to access a key$"
NOPERM_CHANNEL = "^No permissions to access a channel$"


def command_denied(name: str) -> str:
    return f"^this user has no permissions to run the '{name}' command$"


def scripting_denied(name: str) -> str:
    """Redis's words, and how to opt in to scripting (no preset allows it)."""
    return (
        f"^this user has no permissions to run the '{name}' command: this API key's scope "
        r"does not allow scripting; add \+@scripting to its scope \(docs/scopes.md\)$"
    )


# What Redis answers a script's redis.call() outside the user's rules (Redis 7.0 wording).
SCRIPT_CANNOT_ACCESS = "^The user executing the script can't access at least one of the keys"


def keyspace_denied(display: str) -> str:
    return f"^'{display}' touches every key of the database, and this key may only access "


@pytest.fixture(scope="module")
def gw(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    with run_gateway(
        redis_server,
        tmp_path_factory.mktemp("scopes"),
        instances=("main", "other"),
        scopes=SCOPES,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def clients(gw: RunningGateway) -> Iterator[dict[str, redis.Redis]]:
    """One client per scoped key, shared by the module; plus "full" (the default key)."""
    made = {label: gw.scoped_client(label) for label in SCOPES}
    made["full"] = gw.client()
    try:
        yield made
    finally:
        for client in made.values():
            client.close()


@pytest.fixture
def db(gw: RunningGateway) -> Iterator[redis.Redis]:
    """The backend db of the scoped keys' instance, emptied for each test."""
    with gw.direct() as direct:
        direct.flushdb()
        yield direct


def denied(call: Callable[[], Any], match: str) -> None:
    """`call` raises NOPERM with a message matching `match`."""
    with pytest.raises(redis.exceptions.NoPermissionError, match=match):
        call()


def denials(reason: str) -> float:
    value = prometheus_client.REGISTRY.get_sample_value(
        "redisgate_commands_denied_total", {"reason": reason}
    )
    return value or 0.0


# --- commands and keys -------------------------------------------------------------------------


def test_read_scope_on_a_prefix(gw: RunningGateway, db: redis.Redis) -> None:
    db.set("app:1", "v1")
    db.set("other:1", "secret")
    with gw.scoped_client("read_app", single_connection_client=True) as r:
        assert r.get("app:1") == b"v1"
        assert r.connection is not None
        sock = r.connection._sock
        steps: list[tuple[Callable[[], Any], str]] = [
            (lambda: r.set("app:1", "x"), command_denied("set")),
            (lambda: r.get("other:1"), NOPERM_KEY),
            (lambda: r.keys("*"), keyspace_denied("KEYS")),
            (lambda: r.scan(0), keyspace_denied("SCAN")),
            (lambda: r.eval("return 1", 0), scripting_denied("eval")),
            (lambda: r.eval("return 1", 1, "app:1"), scripting_denied("eval")),
            (lambda: r.eval("return 1", 1, "other:1"), scripting_denied("eval")),
        ]
        for call, match in steps:
            denied(call, match)
            assert r.get("app:1") == b"v1"  # the connection is still usable
            assert r.connection._sock is sock  # and it is the same one (no reconnection)
        assert r.mget("app:1", "app:2") == [b"v1", None]
        assert r.strlen("app:1") == 2
    assert db.get("app:1") == b"v1"


def test_a_pipeline_of_prefix_keys_stops_at_the_key_outside_it_and_goes_on(
    gw: RunningGateway, db: redis.Redis
) -> None:
    """One write: commands whose keys fit run (as one run), the one that does not is refused
    with its reason, in its place, and the commands after it still run."""
    pipeline = [
        [b"SET", b"app:1", b"v1"],
        [b"GET", b"app:1"],
        [b"PING"],
        [b"GET", b"other:1"],
        [b"SET", b"app:2", b"v2"],
        [b"MGET", b"app:1", b"app:2"],
    ]
    wire = b"".join(encode_command(c) for c in pipeline)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(encode_command([b"AUTH", gw.scoped["app"].encode()]) + wire)
        expected = (
            b"+OK\r\n+OK\r\n$2\r\nv1\r\n+PONG\r\n-NOPERM No permissions to access a key\r\n"
            b"+OK\r\n*2\r\n$2\r\nv1\r\n$2\r\nv2\r\n"
        )
        data = b""
        while len(data) < len(expected):
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    assert data == expected
    assert db.mget("app:1", "app:2") == [b"v1", b"v2"]


def test_read_and_write_patterns(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    r = clients["split"]
    db.set("a:1", "from-a")
    db.set("b:1", "from-b")
    assert r.copy("a:1", "b:1", replace=True)
    assert db.get("b:1") == b"from-a"
    denied(lambda: r.copy("b:1", "a:1", replace=True), NOPERM_KEY)
    denied(lambda: r.get("b:1"), NOPERM_KEY)
    denied(lambda: r.set("a:1", "x"), NOPERM_KEY)
    assert r.set("b:1", "written")
    assert db.get("b:1") == b"written" and db.get("a:1") == b"from-a"
    assert r.get("a:1") == b"from-a"
    # SET ... GET reads the key too: a write-only pattern is not enough (Redis's rule)
    denied(lambda: r.set("b:1", "again", get=True), NOPERM_KEY)
    assert db.get("b:1") == b"written"


def test_multi_key_commands(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    r = clients["app"]
    db.mset({"app:1": "1", "app:2": "2", "other:1": "o"})
    assert r.mget("app:1", "app:2") == [b"1", b"2"]
    denied(lambda: r.mget("app:1", "other:1"), NOPERM_KEY)
    denied(lambda: r.mset({"app:1": "x", "other:1": "x"}), NOPERM_KEY)
    assert db.mget("app:1", "other:1") == [b"1", b"o"]  # nothing written
    assert r.mset({"app:1": "x", "app:2": "y"})
    assert db.mget("app:1", "app:2") == [b"x", b"y"]
    denied(lambda: r.delete("app:1", "other:1"), NOPERM_KEY)
    denied(lambda: r.exists("other:1"), NOPERM_KEY)
    assert r.exists("app:1", "app:2") == 2


def test_scripts_of_a_key_limited_to_patterns_stay_inside_them(
    clients: dict[str, redis.Redis], db: redis.Redis
) -> None:
    """A script's redis.call() can reach keys and channels it does not declare: on an instance
    owning its server a key limited to patterns runs it as a backend ACL user with the key's
    own rules, so Redis refuses every call outside them (test_scripts_under_patterns.py)."""
    r = clients["app"]
    db.set("app:1", "v")
    db.set("other:1", "secret")
    script = "return redis.call('GET', KEYS[1])"
    assert r.eval(script, 1, "app:1") == b"v"
    assert r.eval_ro(script, 1, "app:1") == b"v"
    sha = r.script_load(script)
    assert r.evalsha(sha, 1, "app:1") == b"v"
    with pytest.raises(redis.ResponseError, match=SCRIPT_CANNOT_ACCESS):
        r.eval("return redis.call('GET', 'other:1')", 0)
    denied(lambda: r.eval(script, 1, "other:1"), NOPERM_KEY)
    full = clients["all"]
    assert full.eval("return redis.call('GET', 'other:1')", 0) == b"secret"
    # every key but not every channel: the script may not PUBLISH outside &news.*
    with pytest.raises(redis.ResponseError, match="can't publish to the channel"):
        clients["news"].eval("return redis.call('PUBLISH', 'sport', 'x')", 0)
    assert clients["news"].eval("return redis.call('PUBLISH', 'news.1', 'x')", 0) == 0


def test_streams_sorted_sets_and_lists(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    r = clients["app"]
    db.xadd("app:s", {"f": "1"})
    db.xadd("other:s", {"f": "2"})
    assert len(r.xread({"app:s": 0})) == 1
    denied(lambda: r.xread({"app:s": 0, "other:s": 0}), NOPERM_KEY)
    denied(lambda: r.xread({"other:s": 0, "app:s": 0}), NOPERM_KEY)

    db.zadd("app:z", {"m": 1})
    assert r.zunionstore("app:dest", ["app:z"]) == 1
    denied(lambda: r.zunionstore("other:dest", ["app:z"]), NOPERM_KEY)
    denied(lambda: r.zunionstore("app:dest", ["app:z", "other:z"]), NOPERM_KEY)
    assert not db.exists("other:dest")

    db.rpush("app:l", "b", "a")
    db.rpush("other:l", "z")
    assert r.lmpop(1, "app:l", direction="LEFT") == [b"app:l", [b"b"]]
    denied(lambda: r.lmpop(2, "other:l", "app:l", direction="LEFT"), NOPERM_KEY)
    denied(lambda: r.lmpop(2, "app:l", "other:l", direction="LEFT"), NOPERM_KEY)
    assert db.lrange("other:l", 0, -1) == [b"z"] and db.lrange("app:l", 0, -1) == [b"a"]


def test_sort(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    r = clients["app"]
    db.rpush("app:l", "2", "1", "3")
    db.mset({"app:w_1": "3", "app:w_2": "2", "app:w_3": "1"})
    assert r.sort("app:l") == [b"1", b"2", b"3"]
    assert r.sort("app:l", store="app:sorted") == 3
    denied(lambda: r.sort("app:l", store="other:sorted"), NOPERM_KEY)
    assert not db.exists("other:sorted")
    sort_denied = "^BY option of SORT denied due to insufficient ACL permissions.$"
    denied(lambda: r.sort("app:l", by="app:w_*"), sort_denied)
    denied(lambda: r.sort_ro("app:l", by="app:w_*"), sort_denied)
    denied(lambda: r.sort("app:l", get=["app:w_*"]), "SORT denied")
    # BY without `*` does not read keys (Redis then does not sort at all)
    assert r.sort("app:l", by="nosort") == [b"2", b"1", b"3"]
    # with every key, the patterns are fine
    assert clients["all"].sort("app:l", by="app:w_*") == [b"3", b"2", b"1"]


def test_georadius_store(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    r = clients["app"]
    db.geoadd("app:g", (13.361389, 38.115556, "Palermo"))
    args = ("app:g", 15, 37, 200, "km")
    assert r.execute_command("GEORADIUS", *args, "STORE", "app:near") == 1
    denied(lambda: r.execute_command("GEORADIUS", *args, "STORE", "other:near"), NOPERM_KEY)
    denied(lambda: r.execute_command("GEORADIUS", *args, "STOREDIST", "other:d"), NOPERM_KEY)
    assert db.exists("app:near") and not db.exists("other:near") and not db.exists("other:d")


def test_rule_order(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    db.set("k", "v")
    denied(lambda: clients["get_denied_last"].get("k"), command_denied("get"))
    assert clients["get_denied_last"].set("k", "w")
    assert clients["get_denied_first"].get("k") == b"w"


def test_scripting_category(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    r = clients["no_scripting"]
    sha = clients["all"].script_load("return 7")
    assert clients["all"].eval("return 7", 0) == 7
    assert clients["all"].evalsha(sha, 0) == 7
    denied(lambda: r.eval("return 7", 0), scripting_denied("eval"))
    denied(lambda: r.evalsha(sha, 0), scripting_denied("evalsha"))
    denied(lambda: r.eval_ro("return 7", 0), scripting_denied("eval_ro"))
    denied(lambda: r.fcall("nosuchfunction", 0), scripting_denied("fcall"))
    denied(lambda: r.function_list(), scripting_denied("function|list"))
    denied(lambda: r.script_exists(sha), scripting_denied("script|exists"))
    assert r.set("k", "v") and r.get("k") == b"v"


def test_keyspace_wide_commands_need_every_key(
    clients: dict[str, redis.Redis], db: redis.Redis
) -> None:
    r = clients["app"]
    db.set("app:1", "v")
    steps: list[tuple[Callable[[], Any], str]] = [
        (lambda: r.keys("app:*"), "KEYS"),
        (lambda: r.scan(0, match="app:*"), "SCAN"),
        (lambda: r.randomkey(), "RANDOMKEY"),
        (lambda: r.dbsize(), "DBSIZE"),
        (lambda: r.flushdb(), "FLUSHDB"),
        (lambda: r.flushall(), "FLUSHALL"),
    ]
    for call, display in steps:
        denied(call, keyspace_denied(display))
    assert db.get("app:1") == b"v"
    assert r.get("app:1") == b"v"


def test_keyspace_wide_commands_with_every_key(
    gw: RunningGateway, clients: dict[str, redis.Redis], db: redis.Redis
) -> None:
    r = clients["all"]
    with gw.direct("other") as other:
        other.set("theirs", "x")
        db.mset({"app:1": "1", "k": "2"})
        assert sorted(r.keys("*")) == [b"app:1", b"k"]
        cursor, found = r.scan(0, count=100)
        assert cursor == 0 and sorted(found) == [b"app:1", b"k"]
        assert r.randomkey() in (b"app:1", b"k")
        assert r.dbsize() == 2
        assert r.flushdb()
        assert db.dbsize() == 0
        assert other.get("theirs") == b"x"  # only the instance's own db was emptied
        other.delete("theirs")


def test_flushall_with_every_key_on_an_instance_owning_its_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """FLUSHALL empties the whole server: only an instance that owns its server may run it
    (here a private redis-server, so the session's shared one is left alone)."""
    with RedisServer(tmp_path_factory.mktemp("own-redis")) as server:
        scopes = {"all": "+@all allkeys", "app": "+@all ~app:*"}
        with run_gateway(server, tmp_path_factory.mktemp("own"), scopes=scopes) as own:
            own.direct().set("app:1", "v")
            with own.scoped_client("app") as limited:
                denied(limited.flushall, keyspace_denied("FLUSHALL"))
            assert own.direct().get("app:1") == b"v"
            with own.scoped_client("all") as everything:
                assert everything.flushall()
            assert own.direct().dbsize() == 0


# --- channels ----------------------------------------------------------------------------------


def next_message(ps: redis.client.PubSub, timeout: float = 2.0) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message: dict[str, Any] | None = ps.get_message(timeout=0.1)
        if message is not None:
            return message
    return None


def test_publish_and_subscribe_on_allowed_channels(
    clients: dict[str, redis.Redis],
) -> None:
    r = clients["news"]
    assert r.publish("news.1", "hi") == 0
    denied(lambda: r.publish("sport.1", "hi"), NOPERM_CHANNEL)
    assert r.spublish("news.1", "hi") == 0
    denied(lambda: r.spublish("sport.1", "hi"), NOPERM_CHANNEL)
    assert r.ping()

    ps = r.pubsub()
    try:
        ps.subscribe("news.1")
        assert next_message(ps) == {
            "type": "subscribe",
            "pattern": None,
            "channel": b"news.1",
            "data": 1,
        }
        assert clients["full"].publish("news.1", "hello") == 1
        message = next_message(ps)
        assert message is not None and message["data"] == b"hello"
        for subscribe, channel in [
            (ps.subscribe, "sport.1"),
            (ps.ssubscribe, "sport.1"),
            (ps.psubscribe, "news.1*"),
            (ps.psubscribe, "*"),
            (ps.psubscribe, "sport.*"),
        ]:
            subscribe(channel)
            denied(lambda: next_message(ps), NOPERM_CHANNEL)
        # one denied channel refuses the whole command, as in Redis: news.2 is not subscribed
        ps.subscribe("news.2", "sport.2")
        denied(lambda: next_message(ps), NOPERM_CHANNEL)
        assert clients["full"].publish("news.2", "lost") == 0
        ps.psubscribe("news.*")  # literally one of the allowed patterns
        assert next_message(ps) == {
            "type": "psubscribe",
            "pattern": None,
            "channel": b"news.*",
            "data": 2,
        }
        ps.ssubscribe("news.2")
        message = next_message(ps)
        assert message is not None and message["type"] == "ssubscribe"
        assert message["channel"] == b"news.2"
        assert clients["full"].spublish("news.2", "sharded") == 1
        message = next_message(ps)
        assert message is not None and (message["type"], message["data"]) == (
            "smessage",
            b"sharded",
        )
        # UNSUBSCRIBE is never checked, even for channels the key may not use
        ps.unsubscribe("sport.1")
        message = next_message(ps)
        assert message is not None and message["type"] == "unsubscribe"
    finally:
        ps.close()
    assert r.publish("news.1", "after") == 0


def test_pubsub_introspection_is_filtered(clients: dict[str, redis.Redis]) -> None:
    r, full = clients["news"], clients["full"]
    ps = full.pubsub()
    try:
        ps.subscribe("news.x", "sport.x")
        ps.ssubscribe("news.s", "sport.s")
        for _ in range(4):
            assert next_message(ps) is not None
        assert sorted(full.pubsub_channels()) == [b"news.x", b"sport.x"]  # the control
        assert full.pubsub_numsub("news.x", "sport.x") == [(b"news.x", 1), (b"sport.x", 1)]
        assert r.pubsub_channels() == [b"news.x"]
        assert r.pubsub_channels("*.x") == [b"news.x"]
        assert r.pubsub_numsub("news.x", "sport.x") == [(b"news.x", 1)]
        assert r.pubsub_numsub("sport.x") == []
        assert r.pubsub_shardchannels() == [b"news.s"]
        assert r.pubsub_shardnumsub("news.s", "sport.s") == [(b"news.s", 1)]
    finally:
        ps.close()


# --- protocols, presets, identity, metrics, transactions -----------------------------------


def test_resp3_gets_the_same_errors(gw: RunningGateway, db: redis.Redis) -> None:
    db.set("app:1", "v")
    with gw.scoped_client("read_app", protocol=3) as r:
        assert r.get("app:1") == b"v"
        denied(lambda: r.get("other:1"), NOPERM_KEY)
        denied(lambda: r.set("app:1", "x"), command_denied("set"))
        denied(lambda: r.keys("*"), keyspace_denied("KEYS"))
        assert r.get("app:1") == b"v"
    with gw.scoped_client("news", protocol=3) as r, gw.client().pubsub() as ps:
        denied(lambda: r.publish("sport.1", "x"), NOPERM_CHANNEL)
        assert r.publish("news.1", "x") == 0
        ps.subscribe("news.3", "sport.3")
        assert next_message(ps) is not None and next_message(ps) is not None
        assert r.pubsub_channels("*.3") == [b"news.3"]
        assert r.pubsub_numsub("news.3", "sport.3") == [(b"news.3", 1)]


def test_presets(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    db.set("k", "v")
    read_only, write_only = clients["read-only"], clients["write-only"]
    assert read_only.get("k") == b"v" and read_only.keys("*") == [b"k"]
    denied(lambda: read_only.set("k", "x"), command_denied("set"))
    assert write_only.set("k", "w") and db.get("k") == b"w"
    denied(lambda: write_only.get("k"), command_denied("get"))

    pubsub_only = clients["pubsub-only"]
    assert pubsub_only.publish("anything", "x") == 0
    denied(lambda: pubsub_only.get("k"), command_denied("get"))
    denied(lambda: pubsub_only.set("k", "x"), command_denied("set"))

    prefixed = clients["prefix"]
    assert prefixed.set("app:x", "1") and prefixed.get("app:x") == b"1"
    denied(lambda: prefixed.set("other:x", "1"), NOPERM_KEY)
    denied(lambda: prefixed.keys("*"), keyspace_denied("KEYS"))
    assert not db.exists("other:x")


def test_acl_whoami_is_the_key_id(gw: RunningGateway, clients: dict[str, redis.Redis]) -> None:
    for label in ("app", "split", "news"):
        expected = api_key_format.key_id_of(gw.scoped[label].encode())
        assert expected
        assert clients[label].acl_whoami() == expected
    assert clients["app"].acl_whoami() != clients["split"].acl_whoami()
    # as on Redis, ACL WHOAMI is only in @slow: a key limited to +@read may not run it
    denied(clients["read_app"].acl_whoami, command_denied("acl|whoami"))


def test_denials_are_counted(clients: dict[str, redis.Redis], db: redis.Redis) -> None:
    r = clients["app"]
    before = {reason: denials(reason) for reason in ("key", "command", "keyspace", "channel")}
    denied(lambda: r.get("other:1"), NOPERM_KEY)
    assert denials("key") == before["key"] + 1
    denied(lambda: r.keys("*"), keyspace_denied("KEYS"))
    assert denials("keyspace") == before["keyspace"] + 1
    denied(lambda: clients["read_app"].set("app:1", "x"), command_denied("set"))
    assert denials("command") == before["command"] + 1
    denied(lambda: clients["news"].publish("sport.1", "x"), NOPERM_CHANNEL)
    assert denials("channel") == before["channel"] + 1
    assert r.get("app:1") is None
    assert denials("key") == before["key"] + 1  # allowed commands are not counted


def test_denied_command_inside_multi_aborts_exec(gw: RunningGateway, db: redis.Redis) -> None:
    with gw.scoped_client("app", single_connection_client=True) as r:
        conn = r.connection
        assert conn is not None

        def send(*argv: str) -> Any:
            conn.send_command(*argv)
            return conn.read_response()

        assert send("MULTI") == b"OK"
        assert send("SET", "app:1", "queued") == b"QUEUED"
        denied(lambda: send("GET", "other:1"), NOPERM_KEY)
        with pytest.raises(redis.exceptions.ExecAbortError, match=r"^Transaction discarded"):
            send("EXEC")
        assert not db.exists("app:1")  # the queued SET never ran
        assert send("SET", "app:1", "after") == b"OK" and db.get("app:1") == b"after"
    with gw.scoped_client("app") as r:
        pipe = r.pipeline(transaction=True)
        pipe.set("app:2", "x").get("other:2")
        denied(
            pipe.execute,
            r"\(GET other:2\) of pipeline caused error: No permissions to access a key$",
        )
        assert not db.exists("app:2")


# --- differential: the gateway's verdict equals Redis's own ACL DRYRUN --------------------


DRYRUN_COMMANDS: list[list[str]] = [
    ["GET", "app:1"],
    ["GET", "other:1"],
    ["SET", "app:1", "v"],
    ["SET", "b:1", "v"],
    ["SET", "b:1", "v", "GET"],
    ["SET", "a:1", "v"],
    ["GET", "a:1"],
    ["GET", "b:1"],
    ["COPY", "a:1", "b:1"],
    ["COPY", "b:1", "a:1"],
    ["MGET", "app:1", "other:1"],
    ["MSET", "app:1", "1", "app:2", "2"],
    ["APPEND", "b:1", "x"],
    ["GETDEL", "b:1"],
    ["LMOVE", "a:l", "b:l", "LEFT", "RIGHT"],
    ["BITFIELD", "a:1", "GET", "u8", "0"],
    ["BITFIELD", "a:1", "SET", "u8", "0", "1"],
    ["BITFIELD_RO", "app:1", "GET", "u8", "0"],
    ["EVAL", "return 1", "1", "app:1"],
    ["EVAL", "return 1", "1", "other:1"],
    ["EVAL", "return 1", "0"],
    ["XREAD", "STREAMS", "app:s", "other:s", "0", "0"],
    ["ZUNIONSTORE", "other:d", "1", "app:z"],
    ["ZUNIONSTORE", "app:d", "1", "app:z"],
    ["LMPOP", "2", "app:l", "other:l", "LEFT"],
    ["SORT", "app:l", "STORE", "other:d"],
    ["GEORADIUS", "app:g", "15", "37", "200", "km", "STORE", "other:d"],
    ["RENAME", "app:r", "other:r"],
    ["DEL", "app:1", "other:1"],
    ["EXISTS", "a:1", "b:1"],
    ["PUBLISH", "news.1", "x"],
    ["PUBLISH", "sport.1", "x"],
    ["SPUBLISH", "news.1", "x"],
    ["SPUBLISH", "sport.1", "x"],
    ["STRLEN", "app:1"],
    ["INCR", "app:n"],
    ["INCR", "b:n"],
    ["PING"],
    ["ECHO", "x"],
    ["OBJECT", "ENCODING", "other:1"],
    ["OBJECT", "FREQ", "a:1"],
    ["MEMORY", "USAGE", "other:1"],
    ["XINFO", "STREAM", "other:s"],
    ["TOUCH", "app:1", "other:1"],
    ["GETEX", "app:1"],
    ["FCALL", "nosuchfunction", "1", "other:1"],
    ["SINTERCARD", "2", "app:a", "other:b"],
    ["PFCOUNT", "app:h", "other:h"],
    ["PFADD", "b:h", "x"],
    ["PFMERGE", "b:h", "a:h"],
    ["BITOP", "AND", "app:d", "other:1"],
    ["SORT_RO", "app:l"],
    ["EVAL_RO", "return 1", "1", "other:1"],
    ["TYPE", "b:1"],
    ["TTL", "a:1"],
    ["EXPIRE", "a:1", "10"],
    ["UNLINK", "b:1"],
    ["DEL", "b:1"],
    ["LPOS", "a:l", "x"],
    ["RPOPLPUSH", "a:l", "b:l"],
    ["GETSET", "b:1", "x"],
    ["HSET", "b:h2", "f", "v"],
    ["HGET", "b:h2", "f"],
    ["SETRANGE", "b:1", "0", "x"],
    ["GETRANGE", "a:1", "0", "1"],
    ["SMOVE", "a:s", "b:s", "x"],
    ["XADD", "b:x", "*", "f", "v"],
    ["RENAME", "a:1", "b:1"],
    ["SET", "app:1", "v"],
    ["SET", "k", "v"],
    ["GET", "k"],
    ["GET", ""],
    ["SET", "", "v"],
    ["TIME"],
    ["PUBSUB", "NUMSUB", "sport.1"],
    ["ACL", "WHOAMI"],
    ["CLIENT", "GETNAME"],
]
DRYRUN_SCOPES = [
    "read_app",
    "split",
    "app",
    "get_denied_last",
    "get_denied_first",
    "news",
    "read-only",
    "write-only",
    "pubsub-only",
    "prefix",
    "no_scripting",
]


@pytest.fixture(scope="module")
def acl_users(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """Redis users with the same rules as the scoped keys (only ever used by ACL DRYRUN)."""
    admin = redis.Redis(port=redis_server.port, password=redis_server.password)
    for label in DRYRUN_SCOPES:
        admin.execute_command(
            "ACL", "SETUSER", f"rg-scope-{label}", "reset", *SCOPES[label].split()
        )
    try:
        yield admin
    finally:
        for label in DRYRUN_SCOPES:
            admin.execute_command("ACL", "DELUSER", f"rg-scope-{label}")
        admin.close()


@pytest.mark.parametrize("label", DRYRUN_SCOPES)
def test_same_verdict_as_redis_acl(
    acl_users: redis.Redis, clients: dict[str, redis.Redis], db: redis.Redis, label: str
) -> None:
    r = clients[label]
    disagreements = []
    for argv in DRYRUN_COMMANDS:
        verdict = acl_users.execute_command("ACL", "DRYRUN", f"rg-scope-{label}", *argv)
        redis_allows = verdict == b"OK"
        try:
            r.execute_command(*argv)
            gateway_allows = True
        except redis.exceptions.NoPermissionError:
            gateway_allows = False
        except redis.ResponseError:
            gateway_allows = True  # ran, and Redis itself answered an error (WRONGTYPE …)
        if gateway_allows != redis_allows:
            disagreements.append((argv, gateway_allows, verdict))
    assert disagreements == []


def test_dryrun_commands_include_both_verdicts(acl_users: redis.Redis) -> None:
    """The differential test above compares something: each scope allows and denies some."""
    for label in DRYRUN_SCOPES:
        verdicts = {
            acl_users.execute_command("ACL", "DRYRUN", f"rg-scope-{label}", *argv) == b"OK"
            for argv in DRYRUN_COMMANDS
        }
        assert verdicts == {True, False}, label


# --- differential, inside scripts: the gateway's outcome equals a Redis user's -------------
#
# The same script, from the same data, run through the gateway with a scoped key and straight
# against Redis as a user given the scope's rules (`ACL SETUSER … reset on >pw <scope>`): the
# outcome (the reply, or Redis's error inside the script) is the same. A declared key outside
# the patterns is refused by both before the script runs (NOPERM, in their own words).

SCRIPT_SEED = {"app:1": "a1", "other:1": "o1", "a:1": "x", "b:1": "y", "k": "v"}
DIFF_SCRIPTS: list[tuple[str, tuple[str, ...]]] = [
    ("return redis.call('GET', KEYS[1])", ("app:1",)),
    ("return redis.call('GET', KEYS[1])", ("other:1",)),
    ("return redis.call('GET', 'app:1')", ()),
    ("return redis.call('GET', 'other:1')", ()),
    ("return redis.pcall('GET', 'other:1')", ()),
    ("return redis.call('SET', 'app:2', 'v')", ()),
    ("return redis.call('SET', 'other:2', 'v')", ()),
    ("return redis.call('SET', 'b:1', 'v')", ()),
    ("return redis.call('SET', 'b:1', 'v', 'GET')", ()),
    ("return redis.call('GET', 'a:1')", ()),
    ("return redis.call('GET', 'b:1')", ()),
    ("return redis.call('INCR', 'b:n')", ()),
    ("return redis.call('COPY', 'a:1', 'b:2')", ()),
    ("return redis.call('COPY', 'b:1', 'a:2')", ()),
    ("return redis.call('MGET', 'app:1', 'other:1')", ()),
    ("return redis.call('DEL', 'app:1', 'other:1')", ()),
    ("return redis.call('EXISTS', 'a:1', 'b:1')", ()),
    ("return redis.call('PUBLISH', 'news.1', 'x')", ()),
    ("return redis.call('PUBLISH', 'sport.1', 'x')", ()),
    ("return redis.call('GET', 'k')", ()),
    ("return redis.call('SET', 'k', 'w')", ()),
    ("return redis.call('STRLEN', 'app:1')", ()),
    ("redis.call('SET', 'app:3', 'z') return redis.call('GET', 'other:1')", ()),
]
DIFF_SCOPES = [label for label in DRYRUN_SCOPES if label != "pubsub-only"] + [
    "all",
    "read_app_scripts",
    "write_only_scripts",
    "prefix_scripts",
    "read_only_scripts",
]
DIFF_PASSWORD = "differential-password"


def outcome(call: Callable[[], Any]) -> object:
    try:
        return ("reply", call())
    except redis.exceptions.NoPermissionError:
        return "NOPERM"
    except redis.ResponseError as exc:
        return ("error", str(exc))


@pytest.fixture(scope="module")
def script_users(redis_server: RedisServer, gw: RunningGateway) -> Iterator[dict[str, str]]:
    """A Redis user per scope, with the scope's rules exactly (and SELECT of the scoped keys'
    db, which the connection needs); removed after, with the gateway's key users."""
    db = gw.dbs["main"]
    admin = redis.Redis(port=redis_server.port, password=redis_server.password)
    names = {label: f"rg-diff-{label}" for label in DIFF_SCOPES}
    for label, name in names.items():
        rules = str(SCOPES[label]).split()
        admin.execute_command(
            "ACL", "SETUSER", name, "reset", "on", f">{DIFF_PASSWORD}", *rules, f"+select|{db}"
        )
    try:
        yield names
    finally:
        for user in admin.execute_command("ACL", "USERS"):
            if user.startswith((b"rg-diff-", b"rg-key-")):
                admin.execute_command("ACL", "DELUSER", user)
        admin.close()


@pytest.mark.parametrize("label", DIFF_SCOPES)
def test_scripts_same_outcome_as_a_redis_user_with_the_same_rules(
    gw: RunningGateway,
    redis_server: RedisServer,
    script_users: dict[str, str],
    clients: dict[str, redis.Redis],
    db: redis.Redis,
    label: str,
) -> None:
    direct = redis.Redis(
        port=redis_server.port,
        username=script_users[label],
        password=DIFF_PASSWORD,
        db=gw.dbs["main"],
    )
    differences = []
    outcomes = set()
    try:
        for script, keys in DIFF_SCRIPTS:
            results = []
            for client in (clients[label], direct):
                db.flushdb()
                db.mset(SCRIPT_SEED)
                results.append(outcome(lambda c=client, s=script, k=keys: c.eval(s, len(k), *k)))
                results.append(sorted(db.keys()))  # and what it left behind
                results.append(db.mget(sorted(SCRIPT_SEED)))
            gateway, redis_user = results[:3], results[3:]
            outcomes.add(repr(gateway[0])[:12])
            if gateway != redis_user:
                differences.append((script, keys, gateway, redis_user))
    finally:
        direct.close()
    assert differences == []
    if parse_scope(str(SCOPES[label])).command_allowed("eval", "", ("scripting", "slow")):
        assert len(outcomes) > 1, outcomes  # the comparison covers allowed and refused calls
    else:
        assert outcomes == {"'NOPERM'"}


def test_script_differential_scopes_are_limited_to_patterns() -> None:
    """The scripts above run as the keys' backend users, not as the gateway's."""
    for label in DIFF_SCOPES:
        scope = parse_scope(str(SCOPES[label]))
        assert (scope.allkeys and scope.allchannels) == (label == "all"), label


# --- regressions (once bugs) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "keys"),
    [
        ("return redis.call('GET', 'other:1')", ()),
        ("return redis.call('GET', 'other:1')", ("app:1",)),
        ("return redis.call('KEYS', '*')", ()),
    ],
)
def test_scripts_cannot_reach_keys_outside_the_scope(
    clients: dict[str, redis.Redis], db: redis.Redis, script: str, keys: tuple[str, ...]
) -> None:
    db.set("other:1", "secret")
    with pytest.raises(redis.ResponseError):
        clients["app"].eval(script, len(keys), *keys)


def test_read_write_star_pattern_is_not_allkeys(redis_server: RedisServer, tmp_path: Path) -> None:
    text = "+@all %RW~*"
    assert not parse_scope(text).allkeys
    with (
        run_gateway(redis_server, tmp_path, scopes={"rw": text}) as own,
        own.scoped_client("rw") as r,
    ):
        assert r.get("k") is None
        denied(lambda: r.get(""), NOPERM_KEY)
