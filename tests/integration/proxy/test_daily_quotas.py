"""Daily quotas through real gateways on one real PostgreSQL: one gateway stops exactly at the
limit, a fresh gateway starts from what the fleet flushed today, and a fleet overshoots by no
more than what the other gateways had not flushed (docs/limits.md, "Daily quotas")."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import asyncpg
import pytest
import redis

from redisgate.launcher.redis import RedisServer
from redisgate.limits import Limits
from redisgate.proxy.wire.encode import encode_command
from redisgate.store import limits as limit_store
from tests.integration.proxy.test_pg_source import (
    PgGateway,
    backend_of,
    conn,
    direct,
    new_instance,
    new_key,
    run_pg_gateway,
)

__all__ = ["conn", "direct"]  # fixtures

QUOTA = 100


@pytest.fixture
def two_gateways(database_url: str) -> Iterator[tuple[PgGateway, PgGateway]]:
    with run_pg_gateway(database_url) as first, run_pg_gateway(database_url) as second:
        yield first, second


class Client:
    """A raw RESP connection (redis-py would spend quota on its CLIENT SETINFO handshake)."""

    def __init__(self, gw: PgGateway, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        self.file = self.sock.makefile("rb")
        assert self.call(b"AUTH", token.encode()) == b"+OK\r\n"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        self.sock.close()

    def call(self, *args: bytes) -> bytes:
        self.sock.sendall(encode_command(list(args)))
        return self.file.readline()

    def incr(self) -> bytes:
        return self.call(b"INCR", b"quota:counter")

    def refused(self) -> bool:
        reply = self.incr()
        assert reply.startswith((b":", b"-ERR max daily request limit exceeded")), reply
        return reply.startswith(b"-")


def run_until_refused(client: Client, limit: int = 10 * QUOTA) -> tuple[int, bytes]:
    """INCR until the gateway refuses: (commands that ran, the refusal)."""
    for ran in range(limit):
        reply = client.incr()
        if reply.startswith(b"-"):
            return ran, reply
    raise AssertionError(f"{limit} commands ran without a refusal")


async def flushed(conn: asyncpg.Connection, key_id: str) -> int:
    """The key's commands today in usage_daily that no limit refused."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(commands - limited), 0) FROM usage_daily WHERE key_id = $1", key_id
    )
    return int(value)


async def test_one_gateway_runs_exactly_the_quota_then_refuses_naming_limit_and_reset(
    database_url: str, conn: asyncpg.Connection, redis_server: RedisServer
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    key = await new_key(conn, instance)
    await limit_store.set_limits(conn, "api_keys", key.key_id, Limits(daily_commands=QUOTA))
    with run_pg_gateway(database_url) as gw, Client(gw, key.token) as client:
        ran, refusal = run_until_refused(client)
        assert ran == QUOTA
        assert refusal == (
            b"-ERR max daily request limit exceeded (limit %d commands per UTC day;"
            b" resets at 00:00 UTC)\r\n" % QUOTA
        )
        assert client.refused()  # and stays refused
    assert await flushed(conn, key.key_id) == QUOTA  # the refusals are counted as limited


async def test_a_fresh_gateway_starts_from_what_the_fleet_flushed_today(
    two_gateways: tuple[PgGateway, PgGateway],
    conn: asyncpg.Connection,
    redis_server: RedisServer,
) -> None:
    first, second = two_gateways
    instance = await new_instance(conn, backend_of(redis_server))
    key = await new_key(conn, instance)
    await limit_store.set_limits(conn, "api_keys", key.key_id, Limits(daily_commands=QUOTA))
    with Client(first, key.token) as client:
        assert run_until_refused(client)[0] == QUOTA
    # The client left, so its counts are harvested (once the gateway saw it go): flush them.
    deadline = time.monotonic() + 10
    while await flushed(conn, key.key_id) < QUOTA:
        assert time.monotonic() < deadline
        first.run(first.gateway.usage.flush())
    assert await flushed(conn, key.key_id) == QUOTA
    with Client(second, key.token) as client:
        # AUTH works; commands are refused from the first one
        assert run_until_refused(client)[0] == 0


async def test_the_fleet_overshoots_by_at_most_the_unflushed_share_then_every_gateway_refuses(
    two_gateways: tuple[PgGateway, PgGateway],
    conn: asyncpg.Connection,
    redis_server: RedisServer,
    direct: redis.Redis,
) -> None:
    first, second = two_gateways
    instance = await new_instance(conn, backend_of(redis_server))
    key = await new_key(conn, instance)
    await limit_store.set_limits(conn, "api_keys", key.key_id, Limits(daily_commands=QUOTA))
    unflushed = 30
    with (
        Client(first, key.token) as on_first,
        Client(second, key.token) as on_second,
    ):
        for _ in range(unflushed):
            on_first.incr()
        ran_on_second, _ = run_until_refused(on_second)
        # The second gateway may not have heard of the first one's commands yet, and never
        # runs more than the quota by itself: the overshoot is at most the unflushed share.
        assert QUOTA - unflushed <= ran_on_second <= QUOTA
        # Within a usage flush and a sync (5 s each by default) the first hears of the second.
        # Polling runs commands on the first gateway until it hears: part of the overshoot.
        started, polled = time.monotonic(), 0
        while not on_first.refused():
            polled += 1
            assert time.monotonic() - started < 30
            await asyncio.sleep(0.01)
        print(f"\nthe first gateway refused {time.monotonic() - started:.2f}s later")
        assert on_second.refused()
    assert int(direct.get("quota:counter") or 0) == unflushed + ran_on_second + polled


async def test_daily_bytes_count_requests_and_replies_and_refuse_once_spent(
    database_url: str, conn: asyncpg.Connection, redis_server: RedisServer
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    key = await new_key(conn, instance)
    await limit_store.set_limits(conn, "instances", instance.id, Limits(daily_bytes=4000))
    value = b"v" * 1000
    with run_pg_gateway(database_url) as gw, Client(gw, key.token) as client:
        started, sent = time.monotonic(), 0
        while (reply := client.call(b"SET", b"quota:big", value)) == b"+OK\r\n":
            sent += 1
            assert time.monotonic() - started < 10
            await asyncio.sleep(0.05)  # bytes are tallied by the once-a-second harvest
        assert reply == (
            b"-ERR max daily bandwidth limit exceeded (limit 4000 bytes per UTC day;"
            b" resets at 00:00 UTC)\r\n"
        )
        assert sent >= 4  # at least the quota's worth ran (about 1 KB each)
        assert client.call(b"PING").startswith(b"-ERR max daily bandwidth")
