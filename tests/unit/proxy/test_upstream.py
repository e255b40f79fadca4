"""UpstreamConnection driven as asyncio drives it, over a FakeTransport: no socket, no Redis.

The test plays the backing Redis: it reads what the connection wrote (`FakeTransport.writes`,
parsed) and answers with `data_received`. A real event loop runs (the connection flushes its
writes with `call_soon`), but nothing touches the network.
"""

from __future__ import annotations

from typing import Any

import hiredis
import pytest

from redisgate import metrics
from redisgate.backends import Backend
from redisgate.proxy.backend.upstream import PendingRequest, State, UpstreamConnection
from tests.unit.proxy.fakes import (
    FakeNetwork,
    FakeTransport,
    Recorder,
    bulk,
    hello_reply,
    parse_commands,
    turns,
    wire,
)

BACKEND = Backend(host="10.0.0.5", port=6379)
GET = wire("GET", "k")


def count_frames(data: bytes) -> int:
    reader = hiredis.Reader()
    reader.feed(data)
    n = 0
    while reader.gets() is not False:
        n += 1
    return n


def connected(
    backend: Backend = BACKEND, protocol: int = 2, **kwargs: Any
) -> tuple[UpstreamConnection, FakeTransport]:
    """A connection that asyncio has just connected (its handshake written, not answered)."""
    conn = UpstreamConnection(backend, protocol, **kwargs)
    transport = FakeTransport(peername=(backend.host, backend.port))
    transport.attach(conn)
    return conn, transport


def ready(**kwargs: Any) -> tuple[UpstreamConnection, FakeTransport]:
    """A connected connection whose handshake Redis has answered; its writes so far taken."""
    conn, transport = connected(**kwargs)
    conn.data_received(hello_reply())
    assert conn.handshake_done
    transport.take()
    return conn, transport


# --- Handshake ----------------------------------------------------------------------------


async def test_handshake_goes_first_with_commands_queued_while_connecting() -> None:
    backend = Backend(host="10.0.0.5", port=6379, db=3, username="app", password="s3cret")
    conn = UpstreamConnection(backend, 2)
    owner = Recorder()
    conn.send(owner.request(), GET)  # a client command queued before the socket is up
    transport = FakeTransport()
    transport.attach(conn)
    # One write: the handshake, then the queued command.
    assert len(transport.writes) == 1
    assert parse_commands(transport.writes[0]) == [
        [b"HELLO", b"2", b"AUTH", b"app", b"s3cret", b"SETNAME", b"redisgate"],
        [b"SELECT", b"3"],
        [b"GET", b"k"],
    ]
    conn.data_received(hello_reply() + b"+OK\r\n" + bulk(b"v"))
    assert owner.replies == [bulk(b"v")]  # the handshake's replies went to the handshake


async def test_handshake_without_password_or_db() -> None:
    _, transport = connected(protocol=3)
    assert parse_commands(transport.written) == [[b"HELLO", b"3", b"SETNAME", b"redisgate"]]
    _, transport2 = connected(Backend(host="h", port=1, password="pw"))
    assert parse_commands(transport2.written)[0][2:5] == [b"AUTH", b"default", b"pw"]


@pytest.mark.parametrize("protocol", [2, 3])
async def test_server_client_id_is_learned_from_hello(protocol: int) -> None:
    conn, _ = connected(Backend(host="h", port=1, db=1), protocol)
    readied: list[UpstreamConnection] = []
    conn.on_ready = readied.append
    assert conn.server_client_id is None
    conn.data_received(hello_reply(protocol=protocol, client_id=4242))
    assert conn.server_client_id == 4242
    assert readied == []  # SELECT is still unanswered
    conn.data_received(b"+OK\r\n")
    assert readied == [conn] and conn.handshake_done


async def test_a_refused_handshake_fails_the_connection_and_what_waits() -> None:
    closed: list[UpstreamConnection] = []
    conn, transport = connected(on_closed=closed.append)
    conn.label = "cache"
    owner = Recorder()
    conn.send(owner.request(), GET)
    conn.data_received(b"-WRONGPASS invalid username-password pair\r\n")
    assert conn.state is State.CLOSED and transport.aborted
    assert closed == [conn]
    [reply] = owner.replies
    assert reply.startswith(b"-BACKEND instance 'cache' is unavailable: the instance's Redis ")
    assert b"refused HELLO: WRONGPASS" in reply
    await turns()
    assert transport.writes == [transport.writes[0]]  # the GET was never sent


# --- FIFO pairing -------------------------------------------------------------------------


async def test_replies_complete_requests_in_fifo_order() -> None:
    conn, transport = ready()
    owners = [Recorder(str(i)) for i in range(3)]
    for i, owner in enumerate(owners):
        conn.send(owner.request(), wire("GET", f"k{i}"))
    await turns()
    assert parse_commands(transport.written) == [[b"GET", b"k0"], [b"GET", b"k1"], [b"GET", b"k2"]]
    conn.data_received(bulk(b"v0") + b"$-1\r\n" + b"-ERR wrong type\r\n")  # one read, 3 replies
    assert [o.replies for o in owners] == [[bulk(b"v0")], [b"$-1\r\n"], [b"-ERR wrong type\r\n"]]
    assert conn.idle and conn.replies == 4  # the handshake's reply counts


async def test_a_reply_split_across_reads_completes_once_whole() -> None:
    conn, _ = ready()
    first, second = Recorder(), Recorder()
    conn.send(first.request(), GET)
    conn.send(second.request(), GET)
    replies = bulk(b"x" * 50) + b"*2\r\n:1\r\n$2\r\nhi\r\n"
    for i in range(len(replies)):  # one byte per read
        conn.data_received(replies[i : i + 1])
        if i < len(bulk(b"x" * 50)) - 1:
            assert first.replies == []
    assert first.replies == [bulk(b"x" * 50)]
    assert second.replies == [b"*2\r\n:1\r\n$2\r\nhi\r\n"]


async def test_every_split_of_a_read_gives_the_same_pairing() -> None:
    replies = [b"+OK\r\n", bulk(b"abc"), b":12\r\n", b"*1\r\n$1\r\nz\r\n"]
    data = b"".join(replies)
    for cut in range(1, len(data)):
        conn, _ = ready()
        owners = [Recorder() for _ in replies]
        for owner in owners:
            conn.send(owner.request(), GET)
        conn.data_received(data[:cut])
        conn.data_received(data[cut:])
        assert [o.replies for o in owners] == [[r] for r in replies], cut


async def test_a_run_slot_gets_its_replies_joined() -> None:
    conn, _ = ready()
    run, after = Recorder(), Recorder()
    conn.send(run.request(count=3), GET * 3)
    conn.send(after.request(), GET)
    conn.data_received(bulk(b"a") + bulk(b"b"))
    assert run.replies == []
    conn.data_received(bulk(b"c") + bulk(b"d"))
    assert run.replies == [bulk(b"a") + bulk(b"b") + bulk(b"c")]
    assert after.replies == [bulk(b"d")]


async def test_a_cancelled_request_keeps_its_slot_and_its_reply_is_dropped() -> None:
    conn, _ = ready()
    gone, stays = Recorder("gone"), Recorder("stays")
    gone_request = gone.request()
    conn.send(gone_request, GET)
    conn.send(stays.request(), GET)
    gone_request.cancelled = True  # the client left
    conn.data_received(bulk(b"for-gone") + bulk(b"for-stays"))
    assert gone.replies == []
    assert stays.replies == [bulk(b"for-stays")]


async def test_a_push_frame_on_a_shared_connection_answers_nobody() -> None:
    conn, _ = ready()
    owner = Recorder()
    conn.send(owner.request(), GET)
    push = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
    conn.data_received(push + bulk(b"mine"))
    assert owner.replies == [bulk(b"mine")]
    assert conn.state is State.READY


async def test_a_push_among_a_runs_replies_is_dropped_and_the_run_still_pairs() -> None:
    conn, _ = ready()
    run, after = Recorder(), Recorder()
    conn.send(run.request(count=3), GET * 3)
    conn.send(after.request(), GET)
    push = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
    attribute = b"|1\r\n+ttl\r\n:3\r\n" + bulk(b"b")  # an annotated reply: not a push
    conn.data_received(bulk(b"a") + push + attribute + bulk(b"c") + bulk(b"d"))
    assert run.replies == [bulk(b"a") + attribute + bulk(b"c")]
    assert after.replies == [bulk(b"d")]
    assert conn.state is State.READY and not conn.fifo


async def test_a_transform_applies_to_replies_not_to_errors() -> None:
    conn, _ = ready()
    owner = Recorder()
    conn.send(PendingRequest(owner, transform=lambda r: r.upper()), GET)
    conn.send(PendingRequest(owner, transform=lambda r: r.upper()), GET)
    conn.data_received(b"+ok\r\n-ERR no\r\n")
    assert owner.replies == [b"+OK\r\n", b"-ERR no\r\n"]


# --- Coalesced writes ---------------------------------------------------------------------


async def test_commands_sent_in_one_loop_turn_are_one_write() -> None:
    conn, transport = ready()
    owners = [Recorder() for _ in range(50)]
    for i, owner in enumerate(owners):
        conn.send(owner.request(), wire("GET", f"k{i}"))
    assert transport.writes == []  # nothing written until the turn ends
    await turns(1)
    assert len(transport.writes) == 1
    assert parse_commands(transport.writes[0]) == [[b"GET", b"k%d" % i] for i in range(50)]
    conn.send(Recorder().request(), GET)  # the next turn: its own write
    await turns(1)
    assert len(transport.writes) == 2


async def test_a_large_buffer_is_written_at_once() -> None:
    conn, transport = ready()
    big = wire("SET", "k", b"x" * (256 * 1024))
    conn.send(Recorder().request(), GET)
    conn.send(Recorder().request(), big)
    assert len(transport.writes) == 1  # over the threshold: flushed within the call
    assert transport.writes[0] == GET + big
    await turns()
    assert len(transport.writes) == 1  # and nothing left for the turn's flush


# --- Desynchronisation: fail everything ---------------------------------------------------


async def test_a_malformed_reply_fails_every_pending_request_in_order() -> None:
    closed: list[UpstreamConnection] = []
    conn, transport = ready(on_closed=closed.append)
    order: list[str] = []

    class Owner(Recorder):
        def reply_ready(self, request: PendingRequest) -> None:
            order.append(self.name)
            super().reply_ready(request)

    owners = [Owner(str(i)) for i in range(3)]
    for owner in owners:
        conn.send(owner.request(), GET)
    # A good reply, then garbage, in one read: the good one is not trusted either.
    conn.data_received(bulk(b"v") + b"?what\r\n")
    assert order == ["0", "1", "2"]
    for owner in owners:
        [reply] = owner.replies
        assert reply.startswith(b"-BACKEND ") and b"invalid RESP" in reply
    assert conn.state is State.CLOSED and transport.aborted and closed == [conn]
    late = Recorder()
    conn.send(late.request(), GET)  # a closed connection answers at once, with the error
    assert late.replies == owners[0].replies


async def test_a_reply_nobody_waits_for_fails_the_connection() -> None:
    conn, transport = ready()
    conn.data_received(b"+OK\r\n")
    assert conn.state is State.CLOSED and transport.aborted
    assert "nobody was waiting" in conn.close_reason


async def test_connection_lost_gives_each_pending_request_an_error() -> None:
    closed: list[UpstreamConnection] = []
    conn, transport = ready(on_closed=closed.append, max_inflight_commands=3)
    conn.set_window(3, 1 << 30)
    single, run, held = Recorder("single"), Recorder("run"), Recorder("held")
    conn.send(single.request(), GET)
    conn.send(run.request(count=2), GET * 2)
    conn.send(held.request(), GET)  # over the window of 3: waits in the gateway
    assert conn.held == 1
    conn.data_received(bulk(b"one"))
    await turns()
    transport.drop(ConnectionResetError("reset by peer"))
    assert single.replies == [bulk(b"one")]
    [run_reply] = run.replies
    [held_reply] = held.replies
    assert held_reply.startswith(b"-BACKEND ") and b"reset by peer" in held_reply
    assert b"may or may not have run" in held_reply
    assert run_reply == held_reply * 2  # one error per command of the run
    assert conn.dropped and closed == [conn]
    await turns()
    assert closed == [conn]  # told once


async def test_a_dedicated_owner_sees_every_frame_after_the_handshake() -> None:
    conn, transport = connected()
    owner = Recorder()
    conn.owner = owner
    conn.write(wire("SUBSCRIBE", "news"))
    await turns()
    message = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
    conn.data_received(hello_reply() + confirm + message)  # the handshake's reply first
    assert owner.frames == [confirm, message]
    transport.drop()
    assert owner.lost and "lost" in owner.lost[0]


# --- The reply window ---------------------------------------------------------------------


async def test_requests_over_the_command_window_wait_and_go_in_order() -> None:
    conn, transport = ready(max_inflight_commands=3, max_inflight_bytes=1 << 30)
    owners = [Recorder(str(i)) for i in range(5)]
    for i, owner in enumerate(owners):
        conn.send(owner.request(), wire("GET", f"k{i}"))
    await turns()
    assert [c[1] for c in parse_commands(transport.take())] == [b"k0", b"k1", b"k2"]
    assert conn.held == 2
    conn.data_received(bulk(b"0"))  # one answered: room for one more
    await turns()
    assert [c[1] for c in parse_commands(transport.take())] == [b"k3"]
    conn.data_received(bulk(b"1") + bulk(b"2") + bulk(b"3"))
    await turns()
    assert [c[1] for c in parse_commands(transport.take())] == [b"k4"]
    conn.data_received(bulk(b"4"))
    assert [o.replies for o in owners] == [[bulk(b"%d" % i)] for i in range(5)]
    assert conn.held == 0 and conn.idle


async def test_the_byte_window_follows_the_size_of_replies() -> None:
    # 16 replies of the first estimate (1,000 bytes) fill a window of 16,000 bytes.
    conn, transport = ready(max_inflight_commands=1000, max_inflight_bytes=16_000)
    conn.set_window(1000, 16_000)
    conn.send(Recorder().request(), GET)
    await turns()
    transport.take()
    conn.data_received(bulk(b"x" * 7000))  # replies are about 7 KB: two fit in the window
    for _ in range(5):
        conn.send(Recorder().request(), GET)
    await turns()
    assert len(parse_commands(transport.take())) == 2
    assert conn.held == 3


async def test_a_held_request_whose_client_left_is_never_sent() -> None:
    conn, transport = ready(max_inflight_commands=1, max_inflight_bytes=1 << 30)
    first, gone, last = Recorder(), Recorder(), Recorder()
    conn.send(first.request(), wire("GET", "first"))
    gone_request = gone.request()
    conn.send(gone_request, wire("GET", "gone"))
    conn.send(last.request(), wire("GET", "last"))
    await turns()
    transport.take()
    gone_request.cancelled = True
    dropped = metrics.UNSENT_DROPPED["commands"]
    conn.data_received(bulk(b"1"))
    await turns()
    assert parse_commands(transport.take()) == [[b"GET", b"last"]]
    assert metrics.UNSENT_DROPPED["commands"] == dropped + 1
    conn.data_received(bulk(b"3"))
    assert (first.replies, gone.replies, last.replies) == ([bulk(b"1")], [], [bulk(b"3")])


async def test_a_run_larger_than_the_window_is_sent_in_parts_in_order() -> None:
    conn, transport = ready(max_inflight_commands=4, max_inflight_bytes=1 << 30)
    run, after = Recorder("run"), Recorder("after")
    conn.send(run.request(count=10), b"".join(wire("GET", f"r{i}") for i in range(10)))
    conn.send(after.request(), wire("GET", "after"))
    await turns()
    sent = [c[1] for c in parse_commands(transport.take())]
    assert sent == [b"r0", b"r1", b"r2", b"r3"]
    replies = [bulk(b"%d" % i) for i in range(10)]
    conn.data_received(b"".join(replies[:4]))
    await turns()
    assert [c[1] for c in parse_commands(transport.take())] == [b"r4", b"r5", b"r6", b"r7"]
    conn.data_received(b"".join(replies[4:8]))
    await turns()
    # The run's last two, then what waited behind it.
    assert [c[1] for c in parse_commands(transport.take())] == [b"r8", b"r9", b"after"]
    conn.data_received(b"".join(replies[8:]) + bulk(b"mine"))
    # (With a byte window this large the first size estimate is 64 MB, so the run's replies
    # are handed over as they come: what counts is that all of them arrive, in order.)
    assert run.received == b"".join(replies)
    assert len(run.replies) == 1
    assert after.replies == [bulk(b"mine")]


async def test_a_run_cancelled_part_way_is_owed_only_what_was_sent() -> None:
    conn, transport = ready(max_inflight_commands=4, max_inflight_bytes=1 << 30)
    run, after = Recorder("run"), Recorder("after")
    run_request = run.request(count=10)
    conn.send(run_request, b"".join(wire("GET", f"r{i}") for i in range(10)))
    conn.send(after.request(), wire("GET", "after"))
    await turns()
    assert len(parse_commands(transport.take())) == 4
    conn.data_received(bulk(b"0") + bulk(b"1"))  # two answered: two more of the run go
    await turns()
    assert [c[1] for c in parse_commands(transport.take())] == [b"r4", b"r5"]
    run_request.cancelled = True  # the client leaves with 4 of the run's replies owed
    conn.data_received(bulk(b"2") + bulk(b"3"))
    await turns()
    assert [c[1] for c in parse_commands(transport.take())] == [b"after"]  # r6..r9 never
    conn.data_received(bulk(b"4") + bulk(b"5") + bulk(b"for-after"))
    assert run.replies == []
    assert after.replies == [bulk(b"for-after")]
    assert conn.state is State.READY and conn.idle


async def test_losing_a_run_sent_in_part_errors_each_of_its_commands() -> None:
    conn, transport = ready(max_inflight_commands=4, max_inflight_bytes=1 << 30)
    run = Recorder()
    conn.send(run.request(count=10), GET * 10)
    await turns()
    conn.data_received(bulk(b"a") * 4)
    await turns()
    transport.drop()
    assert count_frames(run.received) == 10  # 4 replies and 6 errors, nothing more or less
    assert run.received.startswith(bulk(b"a") * 4 + b"-BACKEND ")


# --- Reply streaming ----------------------------------------------------------------------


async def test_a_run_of_big_replies_is_handed_over_as_it_comes() -> None:
    conn, _ = ready()  # no window: the first reply size estimate is 0
    run = Recorder()
    conn.send(run.request(count=4), GET * 4)
    big = [bulk(bytes([65 + i]) * 200_000) for i in range(4)]
    conn.data_received(big[0])
    assert run.progress == []  # 200 KB in: under the streaming threshold
    conn.data_received(big[1])
    assert run.progress == [big[0] + big[1]]  # 400 KB: handed over, not kept
    conn.data_received(big[2] + big[3])
    assert run.replies == [big[2] + big[3]]  # the rest, at the end


# --- Flow control -------------------------------------------------------------------------


async def test_throttling_and_a_slow_client_pause_reading_together() -> None:
    conn, transport = ready()
    conn.set_throttled(True)
    assert transport.read_paused
    conn.pause_reading()  # also paused for its client: still one pause
    conn.set_throttled(False)
    assert transport.read_paused  # the client still reads too slowly
    conn.resume_reading()
    assert not transport.read_paused
    assert (transport.pauses, transport.resumes) == (1, 1)


async def test_a_connection_throttled_while_connecting_starts_paused() -> None:
    conn = UpstreamConnection(BACKEND, 2)
    conn.set_throttled(True)
    transport = FakeTransport()
    transport.attach(conn)
    assert transport.read_paused


async def test_pause_writing_loses_nothing() -> None:
    conn, transport = ready()
    conn.pause_writing()  # Redis reads slowly: the transport buffers; nothing is dropped
    owner = Recorder()
    conn.send(owner.request(), GET)
    await turns()
    assert parse_commands(transport.take()) == [[b"GET", b"k"]]
    conn.resume_writing()
    conn.data_received(b"+OK\r\n")
    assert owner.replies == [b"+OK\r\n"]


# --- Connecting ---------------------------------------------------------------------------


async def test_connect_refused_fails_what_was_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    network = FakeNetwork().install(monkeypatch)
    network.refuse = ConnectionRefusedError(111, "Connection refused")
    conn = UpstreamConnection(BACKEND, 2)
    owner = Recorder()
    conn.send(owner.request(), GET)
    await conn.connect(1.0, None)
    assert network.attempts == [("10.0.0.5", 6379)]
    assert conn.state is State.CLOSED
    assert owner.replies == [conn.error_reply()]
    assert b"cannot connect to the instance's Redis: Connection refused" in owner.replies[0]


async def test_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    network = FakeNetwork().install(monkeypatch)
    network.hang = True
    conn = UpstreamConnection(BACKEND, 2)
    await conn.connect(0.001, None)
    assert conn.state is State.CLOSED and "timed out after 0.001s" in conn.close_reason


async def test_connect_through_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    network = FakeNetwork().install(monkeypatch)
    conn = UpstreamConnection(BACKEND, 3)
    await conn.connect(1.0, None)
    [redis] = network.redis
    assert redis.protocol is conn and conn.state is State.READY
    assert redis.commands() == [[b"HELLO", b"3", b"SETNAME", b"redisgate"]]
    redis.handshake(client_id=9)
    assert conn.server_client_id == 9
