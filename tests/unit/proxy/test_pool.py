"""InstancePool and PoolRegistry with connections over FakeTransports.

The running loop's `create_connection` is replaced by a `FakeNetwork`: each connection the
pool opens is a real `UpstreamConnection` on a `FakeTransport`, and the test plays Redis. The
pool's clock is injected, so backoff is driven without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from redisgate.backends import Backend
from redisgate.errors import UpstreamUnavailable
from redisgate.proxy.backend import pool as pool_module
from redisgate.proxy.backend.pool import InstancePool, PoolRegistry
from redisgate.proxy.backend.upstream import State, UpstreamConnection
from redisgate.proxy.keys.principals import Instance
from tests.unit.proxy.fakes import FakeNetwork, Recorder, bulk, instance, turns, wire

INSTANCE = instance("cache")
GET = wire("GET", "k")


def state_of(conn: UpstreamConnection) -> State:
    return conn.state  # (read through a call: mypy keeps no narrowing across calls)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def network(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    return FakeNetwork().install(monkeypatch)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_pool(clock: Clock) -> AsyncIterator[Any]:
    pools: list[InstancePool] = []

    def make(**kwargs: Any) -> InstancePool:
        pool = InstancePool(kwargs.pop("instance", INSTANCE), clock=clock, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()
    await turns()


# --- Shared connections -------------------------------------------------------------------


async def test_a_shared_connection_opens_on_first_use_and_carries_what_queued(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    assert network.attempts == []
    owners = [Recorder() for _ in range(3)]
    for owner in owners:
        pool.send(owner.request(), GET, 2)
    await turns()
    assert network.attempts == [("10.0.0.5", 6379)]
    [redis] = network.redis
    assert [c[0] for c in redis.commands()] == [b"HELLO", b"GET", b"GET", b"GET"]
    assert len(redis.transport.writes) == 1  # queued while connecting: one write
    redis.handshake()
    redis.reply(bulk(b"a") + bulk(b"b") + bulk(b"c"))
    assert [o.replies for o in owners] == [[bulk(b"a")], [bulk(b"b")], [bulk(b"c")]]
    assert repr(pool) == "<InstancePool cache [1 shared, 0 dedicated, 0 idle]>"
    assert redis.protocol.label == "cache"


async def test_each_owner_keeps_to_one_of_the_shared_connections(
    network: FakeNetwork, make_pool: Any
) -> None:
    # Redis keeps the order of one connection's commands only: a client's SET and the GET
    # after it must go the same way, however many shared connections there are.
    pool = make_pool(shared_connections=2)
    owners = [Recorder(str(i)) for i in range(16)]
    for round_ in range(3):
        for owner in owners:
            pool.send(owner.request(), wire("GET", f"{owner.name}:{round_}"), 2)
    await turns()
    assert len(network.redis) == 2  # both are used, and no more are opened
    where: dict[bytes, set[int]] = {}
    for i, redis in enumerate(network.redis):
        for command in redis.commands()[1:]:
            where.setdefault(command[1].split(b":")[0], set()).add(i)
    assert all(len(conns) == 1 for conns in where.values()), where
    assert len(where) == 16
    assert pool.connection_counts()["shared"] == 2


async def test_resp2_and_resp3_clients_never_share_a_connection(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    pool.send(Recorder().request(), GET, 2)
    pool.send(Recorder().request(), GET, 3)
    await turns()
    assert [r.commands()[0][:2] for r in network.redis] == [[b"HELLO", b"2"], [b"HELLO", b"3"]]


async def test_shared_connections_get_the_pools_window(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool(max_inflight_commands=2, max_inflight_bytes=1 << 20)
    for _ in range(4):
        pool.send(Recorder().request(), GET, 2)
    await turns()
    [redis] = network.redis
    # The handshake's reply is owed too: HELLO and one GET fill a window of two.
    assert [c[0] for c in redis.commands()] == [b"HELLO", b"GET"]
    assert redis.protocol.held == 3


# --- Failures and backoff -----------------------------------------------------------------


async def test_a_down_backend_fails_commands_at_once_until_the_backoff_ends(
    network: FakeNetwork, make_pool: Any, clock: Clock
) -> None:
    pool = make_pool()
    network.refuse = ConnectionRefusedError(111, "Connection refused")
    first = Recorder()
    pool.send(first.request(), GET, 2)
    await turns()
    assert b"cannot connect" in first.replies[0]
    during = Recorder()
    pool.send(during.request(), GET, 2)  # within the backoff: no new attempt
    assert len(network.attempts) == 1
    assert during.replies == [pool.down_reply()]
    assert b"(retrying)" in during.replies[0] and b"Connection refused" in during.replies[0]
    with pytest.raises(UpstreamUnavailable):
        await pool.acquire_dedicated(2, Recorder())
    clock.now += 0.1  # the first backoff is over: the next command tries again
    pool.send(Recorder().request(), GET, 2)
    await turns()
    assert len(network.attempts) == 2
    clock.now += 0.1  # failed again: the backoff doubled
    pool.send(Recorder().request(), GET, 2)
    assert len(network.attempts) == 2
    clock.now += 0.1
    network.refuse = None
    late = Recorder()
    pool.send(late.request(), GET, 2)
    await turns()
    [redis] = network.redis
    redis.handshake()
    redis.reply(b"+OK\r\n")
    assert late.replies == [b"+OK\r\n"]


async def test_a_working_connection_that_drops_is_replaced_at_once(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    victim = Recorder()
    pool.send(victim.request(), GET, 2)
    await turns()
    network.redis[0].handshake()
    network.redis[0].transport.drop(ConnectionResetError("reset"))
    assert victim.replies[0].startswith(b"-BACKEND instance 'cache' is unavailable: ")
    survivor = Recorder()
    pool.send(survivor.request(), GET, 2)  # no backoff after a working connection dropped
    await turns()
    assert len(network.redis) == 2
    network.redis[1].handshake()
    network.redis[1].reply(bulk(b"v"))
    assert survivor.replies == [bulk(b"v")]


async def test_the_watchdog_fails_a_connection_that_stopped_answering(
    network: FakeNetwork, make_pool: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "_WATCHDOG_INTERVAL_S", 0.0)  # every loop turn
    pool = make_pool(timeout_s=5.0)
    stuck = Recorder()
    pool.send(stuck.request(), GET, 2)
    await turns()
    network.redis[0].handshake()
    await turns()
    clock.now += 4.9
    await turns()
    assert stuck.replies == []
    clock.now += 0.2
    await turns()
    [reply] = stuck.replies
    assert b"no reply from the instance's Redis within 5s" in reply
    assert network.redis[0].transport.aborted


# --- Dedicated connections ----------------------------------------------------------------


async def test_a_clean_dedicated_connection_is_reused(network: FakeNetwork, make_pool: Any) -> None:
    pool = make_pool()
    owner = Recorder()
    conn = await pool.acquire_dedicated(2, owner)
    assert conn.owner is owner and conn.state is State.READY
    assert pool.dedicated_in_use == 1
    network.redis[0].handshake()
    pool.release_dedicated(conn, clean=True)
    assert conn.owner is None and pool.dedicated_in_use == 0
    assert pool.connection_counts()["idle"] == 1
    other = Recorder()
    again = await pool.acquire_dedicated(2, other)
    assert again is conn and again.owner is other
    assert len(network.attempts) == 1


async def test_an_unclean_dedicated_connection_is_closed(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    conn = await pool.acquire_dedicated(2, Recorder())
    network.redis[0].handshake()
    pool.release_dedicated(conn, clean=False)
    assert conn.state is State.CLOSED and network.redis[0].transport.aborted
    assert pool.connection_counts() == {"shared": 0, "dedicated": 0, "idle": 0, "key_user": 0}
    await pool.acquire_dedicated(2, Recorder())
    assert len(network.attempts) == 2  # a new one, not the closed one


async def test_a_dedicated_connection_with_replies_owed_is_not_kept(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    conn = await pool.acquire_dedicated(2, Recorder())  # its HELLO is still unanswered
    pool.release_dedicated(conn, clean=True)
    assert conn.state is State.CLOSED  # "clean" or not, a reply could still come
    assert pool.connection_counts()["idle"] == 0


async def test_idle_dedicated_connections_are_capped(network: FakeNetwork, make_pool: Any) -> None:
    pool = make_pool(max_idle_dedicated=1)
    first = await pool.acquire_dedicated(3, Recorder())
    second = await pool.acquire_dedicated(3, Recorder())
    for redis in network.redis:
        redis.handshake()
    pool.release_dedicated(first, clean=True)
    pool.release_dedicated(second, clean=True)
    assert first.state is State.READY and second.state is State.CLOSED
    assert pool.connection_counts()["idle"] == 1
    # An idle RESP3 connection is no use to a RESP2 client.
    await pool.acquire_dedicated(2, Recorder())
    assert len(network.attempts) == 3


async def test_a_dedicated_connection_that_cannot_connect_raises(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    network.refuse = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(UpstreamUnavailable, match="cannot connect"):
        await pool.acquire_dedicated(2, Recorder())
    assert pool.dedicated_in_use == 0


async def test_a_lent_connection_that_dies_tells_its_owner_and_is_forgotten(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    owner = Recorder()
    conn = await pool.acquire_dedicated(2, owner)
    network.redis[0].handshake()
    network.redis[0].transport.drop()
    assert owner.lost and pool.dedicated_in_use == 0
    pool.release_dedicated(conn, clean=True)  # the client gives it back later: nothing happens
    assert pool.connection_counts()["idle"] == 0


# --- Throttling and closing ---------------------------------------------------------------


async def test_throttling_pauses_reading_on_every_connection(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    pool.send(Recorder().request(), GET, 2)
    lent = await pool.acquire_dedicated(2, Recorder())
    idle = await pool.acquire_dedicated(3, Recorder())
    await turns()
    for redis in network.redis:
        redis.handshake()
    pool.release_dedicated(idle, clean=True)
    pool.set_throttled(True)
    assert [r.transport.read_paused for r in network.redis] == [True, True, True]
    pool.send(Recorder().request(), GET, 3)  # a new connection starts held
    await turns()
    assert network.redis[3].transport.read_paused
    pool.set_throttled(False)
    assert not any(r.transport.read_paused for r in network.redis)
    assert lent.state is State.READY


async def test_close_closes_what_the_pool_holds_and_fails_what_waits(
    network: FakeNetwork, make_pool: Any
) -> None:
    pool = make_pool()
    waiting = Recorder()
    pool.send(waiting.request(), GET, 2)
    lent = await pool.acquire_dedicated(2, Recorder())
    await turns()
    pool.close()
    [shared] = [r for r in network.redis if r.protocol is not lent]
    assert shared.transport.aborted and shared.protocol.closed_on_purpose
    assert waiting.replies and waiting.replies[0].startswith(b"-BACKEND ")
    assert lent.state is State.READY  # a lent connection closes with its client
    after = Recorder()
    pool.send(after.request(), GET, 2)
    assert after.replies == [pool.down_reply()]
    assert len(network.attempts) == 2
    with pytest.raises(UpstreamUnavailable):
        await pool.acquire_dedicated(2, Recorder())
    pool.release_dedicated(lent, clean=True)  # given back after the close: closed
    assert state_of(lent) is State.CLOSED


async def test_close_while_connecting_fails_the_queued_command(
    network: FakeNetwork, make_pool: Any
) -> None:
    network.hang = True
    pool = make_pool()
    queued = Recorder()
    pool.send(queued.request(), GET, 2)
    await turns()
    pool.close()
    assert queued.replies and queued.replies[0].startswith(b"-BACKEND ")
    await turns()
    assert network.redis == []  # the connection attempt was cancelled, not completed


# --- Command metadata ---------------------------------------------------------------------


async def test_fetch_command_table_reports_a_refusal(network: FakeNetwork, make_pool: Any) -> None:
    pool = make_pool()
    task = asyncio.ensure_future(pool.fetch_command_table())
    await turns()
    [redis] = network.redis
    assert redis.commands()[1:] == [[b"COMMAND", b"INFO"], [b"COMMAND", b"DOCS"]]
    redis.handshake()
    redis.reply(b"-NOPERM no\r\n-NOPERM no\r\n")
    with pytest.raises(UpstreamUnavailable):
        await task
    assert redis.transport.aborted  # the metadata connection is closed either way


# --- PoolRegistry -------------------------------------------------------------------------


async def test_the_registry_keeps_one_pool_per_instance_and_backend(
    network: FakeNetwork, make_pool: Any
) -> None:
    registry = PoolRegistry(lambda inst: make_pool(instance=inst))
    cache = registry.get(INSTANCE)
    assert registry.get(INSTANCE) is cache
    moved = Instance("cache", "cache", Backend(host="10.0.0.6", port=6379))
    assert registry.get(moved) is not cache  # same instance, new backend: a new pool
    other = registry.get(instance("other"))
    assert set(registry) == {cache, registry.get(moved), other}
    registry.discard("cache")
    assert cache.closed and not other.closed
    assert list(registry) == [other]
    registry.close()
    assert other.closed and list(registry) == []
