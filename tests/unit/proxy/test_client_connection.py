"""ClientConnection through its asyncio.Protocol interface only, over FakeTransports.

A client's bytes go in with `data_received` on its `FakeTransport`'s protocol; they pass the
session, a real `Authenticator` and a real pool, and come out as writes on the upstream
connection's `FakeTransport` (`FakeRedisSide`, where the test plays Redis); Redis's replies
come back out of the client's transport. The gateway is a `FakeGateway` (the `ClientHost`
Protocol), so nothing here depends on how the connection is built inside.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from redisgate import api_key_format
from redisgate.config import Settings
from redisgate.proxy.keys.principals import Instance
from tests.unit.proxy.fakes import (
    FakeGateway,
    FakeNetwork,
    FakeRedisSide,
    FakeTransport,
    bulk,
    instance,
    turns,
    wire,
)

CACHE = instance("cache")
OK = b"+OK\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


@pytest.fixture
async def network(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    return FakeNetwork().install(monkeypatch)


@pytest.fixture
async def gateway(network: FakeNetwork) -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway(network)
    yield gateway
    gateway.close()
    await turns()


def feed(client: FakeTransport, data: bytes) -> None:
    """The client's bytes arrive, as one read."""
    protocol = client.protocol
    assert isinstance(protocol, asyncio.Protocol)
    protocol.data_received(data)


def eof(client: FakeTransport) -> bool | None:
    protocol = client.protocol
    assert isinstance(protocol, asyncio.Protocol)
    return protocol.eof_received()


def protocol_of(client: FakeTransport) -> asyncio.Protocol:
    protocol = client.protocol
    assert isinstance(protocol, asyncio.Protocol)
    return protocol


async def signed_in(
    gateway: FakeGateway, where: Instance = CACHE, peer: tuple[str, int] = ("203.0.113.9", 5000)
) -> FakeTransport:
    """A client connected and authenticated with a key of its own."""
    key = gateway.keys.add(where)
    client = gateway.connect(peer)
    feed(client, wire("AUTH", key.token))
    await turns()
    assert client.take() == OK
    return client


async def upstream(network: FakeNetwork, index: int = 0) -> FakeRedisSide:
    """The index-th upstream connection, its handshake answered and its writes so far read."""
    await turns()
    redis = network.redis[index]
    if not redis.protocol.handshake_done:
        redis.handshake()
    return redis


# --- Authentication -----------------------------------------------------------------------


async def test_auth_then_a_get_travels_to_the_upstream_and_back(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(client, wire("GET", "k"))
    await turns()
    [redis] = network.redis
    assert redis.commands() == [[b"HELLO", b"2", b"SETNAME", b"redisgate"], [b"GET", b"k"]]
    assert client.writes == []
    redis.handshake()
    redis.reply(bulk(b"value"))
    await turns()
    assert client.take() == bulk(b"value")
    assert not client.closed


async def test_a_wrong_or_unknown_key_is_refused_and_the_connection_stays(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    key = gateway.keys.add(CACHE)
    wrong_secret = key.token[:-6] + ("AAAAAA" if not key.token.endswith("AAAAAA") else "BBBBBB")
    unknown = api_key_format.mint().token
    client = gateway.connect()
    feed(client, wire("AUTH", wrong_secret))
    await turns()
    feed(client, wire("AUTH", unknown))
    await turns()
    feed(client, wire("GET", "k"))
    await turns()
    assert client.take() == WRONGPASS + WRONGPASS + NOAUTH
    assert network.attempts == [] and not client.closed
    feed(client, wire("AUTH", key.token))  # and the right key still works
    await turns()
    assert client.take() == OK


async def test_commands_before_auth_get_noauth_and_reach_no_upstream(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = gateway.connect()
    feed(client, wire("GET", "k") + wire("SET", "k", "v") + b"PING\r\n")
    await turns()
    assert client.take() == NOAUTH * 3
    assert network.attempts == [] and not client.closed


async def test_a_pipeline_waiting_on_auth_runs_after_it_in_order(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    key = gateway.keys.add(CACHE)
    client = gateway.connect()
    feed(client, wire("AUTH", key.token) + wire("GET", "k"))  # AUTH and GET in one read
    redis = await upstream(network)
    assert redis.commands() == [[b"GET", b"k"]]
    redis.reply(bulk(b"v"))
    await turns()
    assert client.take() == OK + bulk(b"v")


# --- Pipelines and ordering ---------------------------------------------------------------


async def test_a_pipeline_is_one_upstream_write_and_its_replies_come_back_in_order(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(client, wire("SET", "a", "1") + wire("GET", "a") + wire("INCR", "n") + wire("GET", "x"))
    await turns()
    [redis] = network.redis
    assert len(redis.transport.writes) == 1  # handshake and the pipeline, one write
    redis.handshake()
    assert [c[0] for c in redis.commands()] == [b"SET", b"GET", b"INCR", b"GET"]
    redis.reply(OK + bulk(b"1"))
    await turns()
    # Part of a run's replies: held until the run is answered (or streamed when large).
    redis.reply(b":7\r\n$-1\r\n")
    await turns()
    assert client.take() == OK + bulk(b"1") + b":7\r\n$-1\r\n"


async def test_a_run_of_big_replies_streams_out_as_it_comes_in_one_write_a_turn(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(client, wire("GET", "a") + wire("GET", "b") + wire("GET", "c") + wire("GET", "d"))
    redis = await upstream(network)
    big = [bulk(bytes([65 + i]) * 200_000) for i in range(4)]
    redis.reply(big[0])
    redis.reply(big[1])  # over _STREAM_BYTES in: handed to the client
    await turns()
    assert client.writes == [big[0] + big[1]]  # both replies, one write (writelines)
    [[first, second]] = client.vectors
    assert first is big[0] and second is big[1]  # the bytes as read, never copied
    redis.reply(big[2][:1000])
    redis.reply(big[2][1000:] + big[3])
    await turns()
    assert client.take() == b"".join(big)


async def test_a_local_reply_waits_for_the_forwarded_replies_before_it(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(
        client,
        wire("GET", "a") + wire("CLIENT", "GETNAME") + wire("GET", "b") + wire("CLIENT", "ID"),
    )
    redis = await upstream(network)
    assert [c[1] for c in redis.commands()] == [b"a", b"b"]  # the CLIENT commands stay here
    assert client.writes == []  # their answers are ready, but GET a comes first
    redis.reply(bulk(b"A"))
    await turns()
    assert client.take() == bulk(b"A") + b"$-1\r\n"  # CLIENT ID waits for GET b
    redis.reply(bulk(b"B"))
    await turns()
    assert client.take() == bulk(b"B") + b":1\r\n"


async def test_two_clients_on_one_shared_connection_get_only_their_own_replies(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    alice = await signed_in(gateway, peer=("203.0.113.1", 1))
    bob = await signed_in(gateway, peer=("203.0.113.2", 2))
    feed(alice, wire("GET", "alice:1"))
    feed(bob, wire("GET", "bob:1") + wire("GET", "bob:2"))
    feed(alice, wire("GET", "alice:2"))
    redis = await upstream(network)
    assert len(network.redis) == 1  # one shared connection carries both
    order = [c[1] for c in redis.commands()]
    assert order == [b"alice:1", b"bob:1", b"bob:2", b"alice:2"]
    redis.reply(b"".join(bulk(b"for " + name) for name in order))
    await turns()
    assert alice.take() == bulk(b"for alice:1") + bulk(b"for alice:2")
    assert bob.take() == bulk(b"for bob:1") + bulk(b"for bob:2")


async def test_a_departed_clients_reply_reaches_nobody(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    gone = await signed_in(gateway, peer=("203.0.113.1", 1))
    stays = await signed_in(gateway, peer=("203.0.113.2", 2))
    feed(gone, wire("GET", "secret"))
    feed(stays, wire("GET", "mine"))
    redis = await upstream(network)
    gone.drop()  # the first client goes away with its reply owed
    assert gateway.forgotten == [gone.protocol]
    redis.reply(bulk(b"gone's secret") + bulk(b"stays' value"))
    await turns()
    assert stays.take() == bulk(b"stays' value")
    assert gone.writes == []
    assert not redis.transport.closed  # the shared connection carries on


async def test_a_slow_client_never_pauses_the_shared_connection(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    slow = await signed_in(gateway, peer=("203.0.113.1", 1))
    fast = await signed_in(gateway, peer=("203.0.113.2", 2))
    feed(slow, wire("GET", "a"))
    feed(fast, wire("GET", "b"))
    redis = await upstream(network)
    protocol_of(slow).pause_writing()  # the slow client's socket buffer is full
    assert slow.read_paused
    redis.reply(bulk(b"a") + bulk(b"b"))
    await turns()
    assert not redis.transport.read_paused
    assert fast.take() == bulk(b"b")
    assert slow.take() == bulk(b"a")  # queued in its transport, which buffers it


# --- Flow control -------------------------------------------------------------------------


async def test_pause_writing_stops_reading_and_resume_writing_restarts_it(
    gateway: FakeGateway,
) -> None:
    client = await signed_in(gateway)
    protocol_of(client).pause_writing()
    assert client.read_paused
    protocol_of(client).resume_writing()
    assert not client.read_paused
    assert (client.pauses, client.resumes) == (1, 1)


async def test_reading_stops_at_max_pending_per_client(network: FakeNetwork) -> None:
    gateway = FakeGateway(network, Settings(max_pending_per_client=2))
    try:
        client = await signed_in(gateway)
        feed(client, wire("GET", "1") + wire("GET", "2") + wire("GET", "3"))
        redis = await upstream(network)
        assert [c[1] for c in redis.commands()] == [b"1", b"2"]  # the third waits
        assert client.read_paused
        redis.reply(bulk(b"1") + bulk(b"2"))
        await turns()
        assert [c[1] for c in redis.commands()] == [b"3"]
        assert not client.read_paused
        redis.reply(bulk(b"3"))
        await turns()
        assert client.take() == bulk(b"1") + bulk(b"2") + bulk(b"3")
    finally:
        gateway.close()


async def test_a_client_that_reads_nothing_is_cut_past_its_output_cap(
    network: FakeNetwork,
) -> None:
    gateway = FakeGateway(network, Settings(max_client_output_bytes=1000))
    try:
        client = await signed_in(gateway)
        feed(client, wire("GET", "big"))
        redis = await upstream(network)
        client.buffer_size = 5000  # what the transport could not send yet
        redis.reply(bulk(b"x" * 4000))
        await turns()
        assert client.aborted
        assert gateway.forgotten == [client.protocol]
    finally:
        gateway.close()


# --- Closing ------------------------------------------------------------------------------


async def test_quit_answers_what_came_before_then_half_closes(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(client, wire("GET", "k") + wire("QUIT") + wire("GET", "after"))
    redis = await upstream(network)
    assert redis.commands() == [[b"GET", b"k"]]  # nothing after QUIT runs
    assert not client.eof_written  # GET's reply is still owed
    redis.reply(bulk(b"v"))
    await turns()
    assert client.take() == bulk(b"v") + OK
    assert client.eof_written and not client.closed  # our side done; theirs may still read
    feed(client, wire("GET", "ignored"))  # what it sends meanwhile is dropped
    await turns()
    assert redis.commands() == [] and client.writes == []
    assert eof(client) is False  # its EOF: the transport may close now
    client.drop()
    assert gateway.forgotten == [client.protocol]


async def test_a_protocol_error_is_answered_once_after_what_came_before_then_closes(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(client, wire("GET", "k") + b"*2\r\n$3\r\nGET\r\n+k\r\n" + wire("GET", "never"))
    redis = await upstream(network)
    assert redis.commands() == [[b"GET", b"k"]]
    redis.reply(bulk(b"v"))
    await turns()
    assert client.take() == bulk(b"v") + b"-ERR Protocol error: expected '$', got '+'\r\n"
    assert client.eof_written
    feed(client, wire("GET", "more"))
    await turns()
    assert redis.commands() == [] and client.writes == []


async def test_a_protocol_error_before_auth_closes_too(gateway: FakeGateway) -> None:
    client = gateway.connect()
    feed(client, b"*1\r\n$-5\r\n")
    await turns()
    assert client.take().startswith(b"-ERR Protocol error")
    assert client.eof_written


async def test_eof_with_commands_in_flight_answers_them_then_closes(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(client, wire("GET", "a") + wire("GET", "b"))
    assert eof(client) is True  # keep the transport open: replies are owed
    redis = await upstream(network)
    assert not client.closed
    redis.reply(bulk(b"A"))
    await turns()
    assert not client.closed
    redis.reply(bulk(b"B"))
    await turns()
    assert client.take() == bulk(b"A") + bulk(b"B")
    assert client.closed and not client.aborted and not client.eof_written
    await turns()
    assert gateway.forgotten == [client.protocol]


async def test_eof_with_nothing_owed_closes_at_once(gateway: FakeGateway) -> None:
    client = await signed_in(gateway)
    eof(client)
    assert client.closed
    await turns()
    assert gateway.forgotten == [client.protocol]


async def test_a_lost_upstream_gives_each_in_flight_command_an_error(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(client, wire("GET", "a") + wire("GET", "b"))
    redis = await upstream(network)
    redis.reply(bulk(b"A"))
    feed(client, wire("GET", "c"))
    await turns()
    redis.transport.drop(ConnectionResetError("reset by peer"))
    await turns()
    replies = client.take()
    error = b"-BACKEND instance 'cache' is unavailable: the connection to the instance's Redis"
    assert replies.startswith(bulk(b"A") + error)
    assert replies.count(error) == 2  # GET b and GET c
    assert not client.closed  # the client stays; its next command reconnects
    feed(client, wire("GET", "d"))
    again = await upstream(network, 1)
    assert again.commands() == [[b"GET", b"d"]]
    again.reply(bulk(b"D"))
    await turns()
    assert client.take() == bulk(b"D")


# --- A dedicated connection ---------------------------------------------------------------


async def test_a_transaction_runs_on_a_dedicated_connection_given_back_clean(
    gateway: FakeGateway, network: FakeNetwork
) -> None:
    client = await signed_in(gateway)
    feed(client, wire("GET", "before") + wire("MULTI") + wire("SET", "k", "v") + wire("EXEC"))
    shared = await upstream(network)
    assert shared.commands() == [[b"GET", b"before"]]
    assert len(network.redis) == 1  # MULTI waits for the shared reply (order across conns)
    shared.reply(bulk(b"b"))
    dedicated = await upstream(network, 1)
    assert dedicated.commands() == [[b"MULTI"], [b"SET", b"k", b"v"], [b"EXEC"]]
    dedicated.reply(OK + b"+QUEUED\r\n" + b"*1\r\n+OK\r\n")
    await turns()
    assert client.take() == bulk(b"b") + OK + b"+QUEUED\r\n" + b"*1\r\n+OK\r\n"
    pool = gateway.pools.get(CACHE)
    assert pool.connection_counts()["idle"] == 1  # clean after EXEC: back for reuse


async def test_one_clients_commands_keep_their_order_with_several_shared_connections(
    network: FakeNetwork,
) -> None:
    # Redis runs one connection's commands in order, but two connections' in any order: a
    # client whose SET and GET went to different shared connections could read a stale value.
    gateway = FakeGateway(network, Settings(upstream_connections=2))
    try:
        client = await signed_in(gateway)
        feed(client, wire("SET", "k", "new"))
        feed(client, wire("GET", "k"))  # a second read: a second slot
        await turns()
        sent = [(i, c) for i, redis in enumerate(network.redis) for c in redis.commands()]
        assert [i for i, c in sent if c[0] in (b"SET", b"GET")] == [0, 0], sent
    finally:
        gateway.close()
