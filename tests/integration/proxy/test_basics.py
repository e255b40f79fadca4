"""Everyday use through the gateway with real clients: data types, pipelines, auth, tenancy."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redisgate import api_key_format
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.wire.replies import ReplyFramer
from tests.integration.proxy.conftest import RunningGateway, run_gateway


def raw_exchange(port: int, payload: bytes, expect_close: bool = False) -> bytes:
    """Send bytes on a raw socket and read until the reply stops (or the gateway closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        if not expect_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def gateway_and_redis(
    gw: RunningGateway, body: bytes, *, resp3: bool = False
) -> tuple[bytes, bytes]:
    """Send the same commands through the gateway and straight to Redis; return both replies
    after the authentication preamble (which necessarily differs)."""
    token, password = gw.tokens["main"].encode(), gw.backend.password.encode()
    if resp3:
        via_gateway = b"HELLO 3 AUTH default " + token + b"\r\n"
        direct = b"HELLO 3 AUTH default " + password + b"\r\n"
    else:
        via_gateway, direct = b"AUTH " + token + b"\r\n", b"AUTH " + password + b"\r\n"
    direct += b"SELECT %d\r\n" % gw.dbs["main"]
    with gw.direct() as db:
        db.flushdb()
        ours = raw_exchange(gw.port, via_gateway + body)
        db.flushdb()
        theirs = raw_exchange(gw.backend.port, direct + body)
    skip = ReplyFramer().feed(ours)[0]
    skip_direct = b"".join(ReplyFramer().feed(theirs)[:2])
    return ours[len(skip) :], theirs[len(skip_direct) :]


def test_common_commands_of_every_data_type(gw: RunningGateway) -> None:
    r = gw.client(decode_responses=True)
    assert r.ping()
    assert r.set("s", "v") and r.get("s") == "v"
    assert r.incr("n") == 1 and r.incrby("n", 5) == 6
    assert r.append("s", "w") == 2 and r.strlen("s") == 2
    assert r.mset({"a": "1", "b": "2"}) and r.mget("a", "b", "zz") == ["1", "2", None]
    assert r.expire("s", 100) and 0 < r.ttl("s") <= 100
    assert r.rpush("l", "x", "y", "z") == 3 and r.lrange("l", 0, -1) == ["x", "y", "z"]
    assert r.lpop("l") == "x" and r.llen("l") == 2
    assert r.hset("h", mapping={"f1": "1", "f2": "2"}) == 2
    assert r.hgetall("h") == {"f1": "1", "f2": "2"}
    assert r.sadd("set", "a", "b") == 2 and r.smembers("set") == {"a", "b"}
    assert r.zadd("z", {"a": 1, "b": 2}) == 2 and r.zrange("z", 0, -1, withscores=True) == [
        ("a", 1.0),
        ("b", 2.0),
    ]
    assert r.pfadd("hll", "a", "b") == 1 and r.pfcount("hll") == 2
    assert r.setbit("bits", 7, 1) == 0 and r.bitcount("bits") == 1
    assert r.geoadd("geo", (13.361389, 38.115556, "Palermo")) == 1
    entry = r.xadd("stream", {"k": "v"})
    assert r.xrange("stream")[0][0] == entry
    assert sorted(r.keys("*")) == sorted(
        ["s", "n", "a", "b", "l", "h", "set", "z", "hll", "bits", "geo", "stream"]
    )
    assert r.dbsize() == 12
    assert r.type("h") == "hash" and r.exists("a", "b") == 2
    assert r.delete("a") == 1 and r.get("a") is None


def test_pipeline_of_ten_thousand_commands(gw: RunningGateway) -> None:
    r = gw.client()
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.set(f"k{i}", i)
    for i in range(10_000):
        pipe.get(f"k{i}")
    results = pipe.execute()
    assert results[:10_000] == [True] * 10_000
    assert results[10_000:] == [str(i).encode() for i in range(10_000)]


def test_big_values_round_trip(gw: RunningGateway) -> None:
    r = gw.client()
    value = bytes(range(256)) * 40_000  # 10 MB, every byte value, CRLF inside
    r.set("big", value)
    assert r.get("big") == value


def test_two_instances_on_one_server_cannot_see_each_other(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, instances=("alpha", "beta")) as gw:
        alpha, beta = gw.client("alpha"), gw.client("beta")
        alpha.set("secret", "a")
        beta.set("secret", "b")
        assert alpha.get("secret") == b"a" and beta.get("secret") == b"b"
        assert alpha.keys("*") == [b"secret"] and beta.dbsize() == 1
        alpha.flushdb()
        assert beta.get("secret") == b"b"
        assert gw.direct("beta").get("secret") == b"b"


def test_select_is_virtualised(gw: RunningGateway) -> None:
    r = gw.client()
    assert r.execute_command("SELECT", 0)
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", 1)
    with pytest.raises(redis.ResponseError, match="value is not an integer"):
        r.execute_command("SELECT", "x")
    r.set("here", 1)
    assert gw.direct().get("here") == b"1"  # db 0 of the client is the instance's db


@pytest.mark.parametrize(
    "command",
    [
        ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("DEBUG", "SLEEP", "0"),
        ("SHUTDOWN",),
        ("MODULE", "LIST"),
        ("REPLICAOF", "NO", "ONE"),
        ("SLAVEOF", "NO", "ONE"),
        ("SYNC",),
        ("PSYNC", "?", "-1"),
        ("MONITOR",),
        ("ACL", "LIST"),
        ("ACL", "SETUSER", "x"),
        ("FAILOVER",),
        ("SAVE",),
        ("BGSAVE",),
        ("BGREWRITEAOF",),
        # CLIENT LIST/KILL/UNBLOCK/NO-EVICT act on the instance's own gateway connections
        # (test_inspection.py); PAUSE would stall the gateway's shared connections.
        ("CLIENT", "PAUSE", "10"),
        ("CLIENT", "UNPAUSE"),
        ("CLUSTER", "INFO"),
        ("LATENCY", "LATEST"),
        ("SLOWLOG", "GET"),
        ("MIGRATE", "h", "1", "k", "0", "1"),
        ("MOVE", "k", "1"),
        ("SWAPDB", "0", "1"),
        ("FLUSHALL",),
        ("FUNCTION", "FLUSH"),
        ("SCRIPT", "KILL"),
        ("PUBSUB", "CHANNELS"),
    ],
)
def test_admin_and_cross_tenant_commands_are_refused(
    shared_gw: RunningGateway, command: tuple[str, ...]
) -> None:
    r = shared_gw.client()
    with pytest.raises(redis.exceptions.NoPermissionError, match="through RedisGate"):
        r.execute_command(*command)
    assert r.ping()  # the connection stays usable


def test_unknown_commands_use_redis_wording(gw: RunningGateway) -> None:
    r = gw.client()
    with pytest.raises(redis.ResponseError) as info:
        r.execute_command("NOSUCH", "a", "b")
    assert str(info.value) == "unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
    with pytest.raises(redis.ResponseError, match=r"unknown subcommand 'nope'. Try OBJECT HELP"):
        r.execute_command("OBJECT", "nope", "k")
    assert r.ping()


def test_auth_rules(gw: RunningGateway) -> None:
    no_retry = Retry(NoBackoff(), 0)  # redis-py would retry a failed AUTH for seconds
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=gw.port, password="rg_wrongwrongwr_" + "x" * 43, retry=no_retry).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=gw.port, password="not-even-a-key", retry=no_retry).ping()
    with pytest.raises(redis.AuthenticationError, match="Authentication required"):
        redis.Redis(port=gw.port, protocol=2, retry=no_retry).get("x")
    with pytest.raises(redis.AuthenticationError, match="HELLO must be called"):
        redis.Redis(port=gw.port, protocol=3, retry=no_retry).get("x")  # as Redis answers
    token = gw.tokens["main"]
    assert redis.Redis(port=gw.port, username="default", password=token).ping()
    assert redis.Redis(port=gw.port, username="anything", password=token).ping()
    assert redis.Redis(port=gw.port, password=token, protocol=3).ping()


def test_before_auth_only_a_few_commands_are_served(gw: RunningGateway) -> None:
    reply = raw_exchange(gw.port, b"PING\r\nGET x\r\nECHO hi\r\nQUIT\r\n")
    assert reply == b"-NOAUTH Authentication required.\r\n" * 3 + b"+OK\r\n"


def test_inline_commands_after_auth(gw: RunningGateway) -> None:
    token = gw.tokens["main"].encode()
    reply = raw_exchange(
        gw.port, b"AUTH " + token + b'\r\nSET greeting "hello world"\r\nGET greeting\r\nQUIT\r\n'
    )
    assert reply == b"+OK\r\n+OK\r\n$11\r\nhello world\r\n+OK\r\n"


def test_malformed_resp_gets_one_error_then_close(gw: RunningGateway) -> None:
    reply = raw_exchange(gw.port, b"*1\r\n$4\r\nPING\r\n*2\r\nxx\r\n", expect_close=True)
    assert (
        reply
        == b"-NOAUTH Authentication required.\r\n-ERR Protocol error: expected '$', got 'x'\r\n"
    )


def test_oversized_request_before_auth_is_refused(gw: RunningGateway) -> None:
    reply = raw_exchange(gw.port, b"*2\r\n$4\r\nAUTH\r\n$100000\r\n", expect_close=True)
    assert reply.startswith(b"-ERR Protocol error: ")


def test_client_identity_commands(gw: RunningGateway) -> None:
    r = gw.client()
    assert r.client_setname("worker-1")
    assert r.client_getname() in (b"worker-1", "worker-1")  # redis-py decodes it on RESP3
    client_id = r.client_id()
    info = r.client_info()
    key_id = api_key_format.key_id_of(gw.tokens["main"].encode())
    assert info["id"] == client_id and info["name"] == "worker-1" and info["user"] == key_id
    assert r.execute_command("ACL", "WHOAMI") == key_id.encode()
    with pytest.raises(redis.ResponseError, match="Client names cannot contain spaces"):
        r.client_setname("two words")


def test_info_hides_the_host_and_other_tenants(gw: RunningGateway) -> None:
    """On an instance owning its server INFO is Redis's, less the host (test_inspection.py
    checks every field; the shared server's INFO is there too)."""
    r = gw.client()
    r.set("mine", 1)
    info = r.info()
    backend = gw.direct().info("server")
    assert info["redis_version"].startswith("7.")
    assert info["redis_mode"] == "standalone"
    assert info["db0"]["keys"] == 1
    for leak in ("process_id", "executable", "config_file"):
        assert leak not in info, leak
    assert info["tcp_port"] == gw.port and info["connected_clients"] == 1
    assert info["run_id"] != backend["run_id"] and " " not in info["os"]
    assert "used_memory" in info
    assert [k for k in info if k.startswith("db")] == ["db0"]


def test_redis_cli_through_the_gateway(gw: RunningGateway) -> None:
    base = ["redis-cli", "-u", gw.url(), "--no-auth-warning"]
    assert (
        subprocess.run(
            [*base, "SET", "cli", "ok"], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "OK"
    )
    out = subprocess.run([*base, "GET", "cli"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
    subprocess.run([*base, "HSET", "h", "f", "v"], capture_output=True, check=True)
    out = subprocess.run([*base, "-3", "HGETALL", "h"], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["f", "v"]  # a RESP3 map (redis-cli prints it flat)


async def test_asyncio_client_resp2_and_resp3(gw: RunningGateway) -> None:
    import redis.asyncio as aredis

    for protocol in (2, 3):
        r = aredis.Redis.from_url(gw.url(), protocol=protocol)
        try:
            await r.hset("ah", mapping={"a": "1"})
            assert await r.hgetall("ah") == {b"a": b"1"}
            async with r.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.incr(f"counter{protocol}")
                assert await pipe.execute() == list(range(1, 101))
        finally:
            await r.aclose()


def test_scripts_and_pubsub_are_refused_on_a_shared_server(shared_gw: RunningGateway) -> None:
    r = shared_gw.client()
    for command in (
        ("EVAL", "return 1", "0"),
        ("FCALL", "f", "0"),
        ("PUBLISH", "c", "m"),
        ("SUBSCRIBE", "c"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError, match="dedicated server"):
            r.execute_command(*command)
    assert r.ping()


def test_command_table_comes_from_the_backend(gw: RunningGateway) -> None:
    assert gw.client().ping()
    tables = gw.gateway.tables.by_server
    table = tables[("127.0.0.1", gw.backend.port)].result()
    info = gw.direct().info("server")
    assert table.redis_version == info["redis_version"]
    assert len(list(table.walk())) == len(gw.direct().command_list())  # with subcommands
