"""The command path without a RESP connection (`clients.front_door.Caller`), driven directly
against a real gateway and redis-server: the same key lookup, scope check, rate limits, usage
and backend routing as a RESP client, and the same replies, byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.clients.front_door import Caller
from redisgate.proxy.wire.framing_limits import REQUEST_TOO_BIG_PREFIX
from tests.integration.proxy.conftest import RunningGateway, run_gateway
from tests.integration.proxy.test_basics import gateway_and_redis

SCOPES = {"app": "+@all ~app:*", "reader": "+@read allkeys"}
LIMITS = {"key:main": {"ops_per_second": 5, "burst": 5}}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with RedisServer(tmp_path_factory.mktemp("front-door-redis")) as backend:
        folder = tmp_path_factory.mktemp("front-door")
        with run_gateway(backend, folder, scopes=SCOPES) as running:
            yield running


def calls(gw: RunningGateway, token: str, *commands: tuple[bytes, ...]) -> list[bytes]:
    """Authenticate one caller with `token` and run `commands`; the replies, AUTH's first."""

    async def run() -> list[bytes]:
        caller = Caller(gw.gateway, "127.0.0.1:50000")
        try:
            replies = [await caller.authenticate(token.encode())]
            for command in commands:
                replies.append(await caller.call(command))
            return replies
        finally:
            caller.close()

    return gw.call_async(run())


def test_commands_reach_the_instance_and_answer_as_over_resp(gw: RunningGateway) -> None:
    replies = calls(
        gw,
        gw.tokens["main"],
        (b"SET", b"k", b"v"),
        (b"GET", b"k"),
        (b"INCR", b"k"),
        (b"NOSUCH", b"x"),
        (b"HSET", b"h", b"f", b"1"),
        (b"HGETALL", b"h"),
    )
    assert replies[:3] == [b"+OK\r\n", b"+OK\r\n", b"$1\r\nv\r\n"]
    ours = b"".join(replies[1:])
    body = b"SET k v\r\nGET k\r\nINCR k\r\nNOSUCH x\r\nHSET h f 1\r\nHGETALL h\r\n"
    _, theirs = gateway_and_redis(gw, body)  # the same commands straight to Redis
    assert ours == theirs
    with gw.direct() as direct:
        assert direct.get("k") == b"v"


def test_a_wrong_key_is_refused_as_auth_refuses_it(gw: RunningGateway) -> None:
    assert calls(gw, "rg_nosuchkeyid_" + "x" * 43) == [
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    ]


def test_the_keys_scope_applies(gw: RunningGateway) -> None:
    replies = calls(
        gw,
        gw.scoped["app"],
        (b"SET", b"app:1", b"v"),
        (b"SET", b"other", b"v"),
        (b"KEYS", b"*"),
    )
    assert replies[1] == b"+OK\r\n"
    assert replies[2] == b"-NOPERM No permissions to access a key\r\n"
    assert replies[3].startswith(b"-NOPERM")
    assert calls(gw, gw.scoped["reader"], (b"SET", b"x", b"1"))[1].startswith(b"-NOPERM")


def test_a_transaction_runs_on_a_dedicated_connection(gw: RunningGateway) -> None:
    replies = calls(
        gw,
        gw.tokens["main"],
        (b"MULTI",),
        (b"SET", b"t", b"1"),
        (b"INCR", b"t"),
        (b"EXEC",),
        (b"GET", b"t"),
    )
    assert replies[1:] == [
        b"+OK\r\n",
        b"+QUEUED\r\n",
        b"+QUEUED\r\n",
        b"*2\r\n+OK\r\n:2\r\n",
        b"$1\r\n2\r\n",
    ]
    assert gw.call(lambda: sum(pool.dedicated_in_use for pool in gw.gateway.pools)) == 0


def test_usage_is_counted_for_the_key(gw: RunningGateway) -> None:
    async def run() -> tuple[object, tuple[int, int, int, int, int]]:
        caller = Caller(gw.gateway, "127.0.0.1:50000")
        try:
            await caller.authenticate(gw.scoped["app"].encode())
            assert await caller.call((b"SET", b"app:u", b"12345")) == b"+OK\r\n"
            assert await caller.call((b"GET", b"other")) == (
                b"-NOPERM No permissions to access a key\r\n"
            )
            return caller.take_usage()
        finally:
            caller.close()

    principal, (commands, bytes_in, bytes_out, denied, limited) = gw.call_async(run())
    assert getattr(principal, "key_name", None) == "app"
    assert (commands, denied, limited) == (2, 1, 0)
    assert bytes_in == len(b"*3\r\n$3\r\nSET\r\n$5\r\napp:u\r\n$5\r\n12345\r\n") + len(
        b"*2\r\n$3\r\nGET\r\n$5\r\nother\r\n"
    )
    # as on the RESP port: AUTH's +OK (the key's use starts with its reply), SET's, the refusal
    assert bytes_out == 2 * len(b"+OK\r\n") + len(b"-NOPERM No permissions to access a key\r\n")


def test_daily_quotas_count_what_callers_run(redis_server: RedisServer, tmp_path: Path) -> None:
    quota = {"key:main": {"daily_commands": 3}}
    with run_gateway(redis_server, tmp_path, limits=quota) as limited:
        replies = calls(limited, limited.tokens["main"], *[(b"PING",)] * 3)
        assert replies[1:] == [b"+PONG\r\n"] * 3
        refused = calls(limited, limited.tokens["main"], (b"PING",))
    assert refused[1].startswith(b"-ERR max daily request limit exceeded (limit 3 commands")


def test_rate_limits_apply(redis_server: RedisServer, tmp_path: Path) -> None:
    with run_gateway(redis_server, tmp_path, limits=LIMITS) as limited:
        replies = calls(limited, limited.tokens["main"], *[(b"PING",)] * 8)
    refused = [reply for reply in replies[1:] if reply.startswith(b"-ERR max requests")]
    assert replies[1] == b"+PONG\r\n"
    assert 1 <= len(refused) <= 3  # a burst of 5, refilled at 5/s while the calls run


def test_an_oversized_command_gets_the_resp_ports_error(gw: RunningGateway) -> None:
    huge = b"x" * (gw.gateway.settings.max_request_bytes + 1)
    replies = calls(gw, gw.tokens["main"], (b"SET", b"big", huge), (b"PING",))
    assert replies[1].startswith(b"-ERR " + REQUEST_TOO_BIG_PREFIX.encode())
    assert replies[2] == b"+PONG\r\n"  # nothing lost: the caller goes on


def test_callers_run_side_by_side(gw: RunningGateway) -> None:
    async def run() -> list[bytes]:
        callers = [Caller(gw.gateway, f"127.0.0.1:{50000 + i}") for i in range(20)]
        try:
            for caller in callers:
                assert await caller.authenticate(gw.tokens["main"].encode()) == b"+OK\r\n"
            return await asyncio.gather(
                *(c.call((b"ECHO", b"%d" % i)) for i, c in enumerate(callers))
            )
        finally:
            for caller in callers:
                caller.close()

    replies = gw.call_async(run())
    assert replies == [b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(20)]
