"""Limits and timeouts a gateway enforces, and a backend that is down from the start.

Raw sockets are used where the exact bytes and the moment the gateway closes matter; redis-py
where a real client's view is the point. Timeouts are checked by waiting (bounded) for the
gateway's once-a-second sweep, never by measuring time.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redisgate.launcher.redis import RedisServer
from tests.integration.proxy.conftest import RunningGateway, run_gateway

NO_RETRY = Retry(NoBackoff(), 0)  # surface every error instead of reconnecting behind our back


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Poll `condition` until it holds (a bounded loop, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout_s:g}s")
        time.sleep(0.02)


@contextlib.contextmanager
def raw_client(port: int, token: str | None = None) -> Iterator[socket.socket]:
    """A raw socket to the gateway, authenticated with `token` if given."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if token is not None:
            sock.sendall(b"AUTH " + token.encode() + b"\r\n")
            assert recv_exactly(sock, 5) == b"+OK\r\n"
        yield sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the gateway sends until it closes the connection (FIN or RST)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def is_closed(sock: socket.socket) -> bool:
    """Whether the peer has closed `sock` (without blocking; nothing else is expected on it)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # a socket with a timeout would wait for MSG_DONTWAIT too
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(timeout)


def client_states(gw: RunningGateway) -> list[tuple[int, bool]]:
    """(commands in flight, transport reading?) of each client, read on the gateway's loop."""
    return gw.call(
        lambda: [
            (c.inflight, c.transport.is_reading())
            for c in gw.gateway.clients
            if c.transport is not None and c.session is not None and c.session.authenticated
        ]
    )


# --- max_clients ---------------------------------------------------------------------------------


def test_max_clients_refuses_the_next_client_until_one_leaves(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, max_clients=2) as gw:
        token = gw.tokens["main"]
        with raw_client(gw.port, token) as first, raw_client(gw.port, token):
            with raw_client(gw.port) as third:
                assert read_until_closed(third) == b"-ERR max number of clients reached\r\n"
            with (
                redis.Redis(port=gw.port, password=token, retry=NO_RETRY) as r,
                pytest.raises(redis.ConnectionError, match="max number of clients reached"),
            ):
                r.ping()
            first.sendall(b"PING\r\n")
            assert recv_exactly(first, 7) == b"+PONG\r\n"  # the admitted ones are untouched
            first.close()

            def admitted() -> bool:  # the gateway notices the close in its own time
                with raw_client(gw.port) as sock:
                    sock.sendall(b"AUTH " + token.encode() + b"\r\nPING\r\n")
                    reply = recv_exactly(sock, 12)
                    if reply.startswith(b"-ERR max number of clients"):
                        return False
                    assert reply == b"+OK\r\n+PONG\r\n"
                    return True

            wait_for(admitted, "a client admitted after one left")


# --- auth_timeout_s and client_idle_timeout_s ----------------------------------------------------


def test_auth_timeout_closes_only_unauthenticated_connections(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with (
        run_gateway(redis_server, tmp_path, auth_timeout_s=0.5) as gw,
        gw.client(retry=NO_RETRY, single_connection_client=True) as authenticated,
    ):
        assert authenticated.ping()  # connected (and authenticated) first
        client_id = authenticated.client_id()
        with raw_client(gw.port) as silent, raw_client(gw.port) as chatty:
            chatty.sendall(b"PING\r\n")  # answered before AUTH, but no substitute for it
            assert recv_exactly(chatty, 34) == b"-NOAUTH Authentication required.\r\n"
            assert read_until_closed(silent) == b"-ERR authentication timeout\r\n"
            assert read_until_closed(chatty) == b"-ERR authentication timeout\r\n"
        # Older than the unauthenticated ones, seen by the same sweeps, still open.
        assert authenticated.ping() and authenticated.client_id() == client_id


def test_idle_timeout_closes_idle_clients_but_not_busy_blocked_or_subscribed_ones(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with (
        run_gateway(redis_server, tmp_path, client_idle_timeout_s=0.5) as gw,
        gw.client(retry=NO_RETRY, single_connection_client=True) as busy,
        gw.client(retry=NO_RETRY, single_connection_client=True) as blocked,
        gw.direct() as direct,
        raw_client(gw.port, gw.tokens["main"]) as subscriber,
        ThreadPoolExecutor(1) as pool,
    ):
        busy_id = busy.client_id()
        subscriber.sendall(b"SUBSCRIBE idle-timeout:channel\r\n")
        confirmation = b"*3\r\n$9\r\nsubscribe\r\n$20\r\nidle-timeout:channel\r\n:1\r\n"
        assert recv_exactly(subscriber, len(confirmation)) == confirmation
        blocked.ping()
        popped = pool.submit(blocked.blpop, ["idle-timeout:queue"], 0)
        wait_for(
            lambda: any(c["cmd"] == "blpop" for c in direct.client_list()), "BLPOP to reach Redis"
        )
        with raw_client(gw.port, gw.tokens["main"]) as idle:

            def idle_closed() -> bool:
                assert busy.ping()  # one command every poll keeps it busy
                return is_closed(idle)

            wait_for(idle_closed, "the idle client to be closed")
            assert read_until_closed(idle) == b""  # dropped without a reply
        assert busy.ping() and busy.client_id() == busy_id
        # Idle for longer than the timeout, but blocked or subscribed: kept, as Redis does.
        assert not is_closed(subscriber)
        subscriber.sendall(b"PING\r\n")
        pong = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        assert recv_exactly(subscriber, len(pong)) == pong
        assert not popped.done()
        direct.rpush("idle-timeout:queue", "v")
        assert popped.result(10) == (b"idle-timeout:queue", b"v")
        assert blocked.ping()


def test_idle_timeout_closes_clients_idle_in_a_transaction(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, client_idle_timeout_s=0.5) as gw:
        token = gw.tokens["main"]
        with raw_client(gw.port, token) as in_multi, raw_client(gw.port, token) as watching:
            in_multi.sendall(b"MULTI\r\n")
            watching.sendall(b"WATCH k\r\n")
            assert recv_exactly(in_multi, 5) == recv_exactly(watching, 5) == b"+OK\r\n"
            with raw_client(gw.port, token) as plain:  # idle for less long than those two
                wait_for(lambda: is_closed(plain), "the plain idle client to be closed")
            # The sweep that closed it found the other two idle for longer.
            wait_for(
                lambda: is_closed(in_multi) and is_closed(watching),
                "the clients idle in MULTI and WATCH to be closed",
                timeout_s=2,
            )
        wait_for(lambda: gw.dedicated_in_use() == 0, "their dedicated connections to go back")


# --- max_request_bytes ---------------------------------------------------------------------------

LIMIT = 1024


def send_oversized_header(gw: RunningGateway, value_size: int) -> tuple[bytes, bytes]:
    """AUTH, then the header of `SET k <value_size bytes>` and no body: the reply, and what the
    gateway sent after it before closing (the body is never sent)."""
    with raw_client(gw.port, gw.tokens["main"]) as sock:
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % value_size)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            assert chunk, f"closed without a reply (got {reply!r})"
            reply += chunk
        return reply, read_until_closed(sock)


@pytest.fixture
def small_requests_gw(redis_server: RedisServer, tmp_path: Path) -> Iterator[RunningGateway]:
    with run_gateway(redis_server, tmp_path, max_request_bytes=LIMIT) as gw:
        yield gw


def test_request_just_over_max_request_bytes_is_refused_from_its_header(
    small_requests_gw: RunningGateway,
) -> None:
    gw = small_requests_gw
    with gw.client() as r:  # just under the limit: served
        assert r.set("k", b"x" * (LIMIT - 64)) and r.strlen("k") == LIMIT - 64
    # 27 header bytes + 1000 value bytes + CRLF > 1024: known from the header alone.
    reply, rest = send_oversized_header(gw, 1000)
    assert reply == b"-ERR max request size exceeded (limit 1024 bytes)\r\n"
    assert rest == b""  # and the connection closed
    with gw.direct() as direct:
        assert direct.strlen("k") == LIMIT - 64  # nothing reached Redis


def test_value_far_over_max_request_bytes_is_refused_naming_the_limit(
    small_requests_gw: RunningGateway,
) -> None:
    reply, rest = send_oversized_header(small_requests_gw, 10 * 1024 * 1024)
    assert rest == b""
    assert reply == b"-ERR max request size exceeded (limit 1024 bytes)\r\n"


# --- max_pending_per_client ----------------------------------------------------------------------


def test_pipeline_beyond_max_pending_per_client_is_paused_and_resumed_losslessly(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with (
        run_gateway(redis_server, tmp_path, max_pending_per_client=4) as gw,
        gw.client() as r,
        gw.direct() as direct,
        ThreadPoolExecutor(1) as pool,
    ):
        assert r.ping()  # the shared upstream connection is open
        # Writes wait while the backend is paused, so the gateway's 4-command budget fills up.
        direct.execute_command("CLIENT", "PAUSE", "20000", "WRITE")
        try:

            def pipeline() -> list[Any]:
                pipe = r.pipeline(transaction=False)
                for _ in range(1000):
                    pipe.incr("pending:counter")
                replies: list[Any] = pipe.execute()
                return replies

            replies = pool.submit(pipeline)
            wait_for(lambda: client_states(gw) == [(4, False)], "reading paused at 4 in flight")
        finally:
            direct.execute_command("CLIENT", "UNPAUSE")
        assert replies.result(30) == list(range(1, 1001))
        assert client_states(gw) == [(0, True)]  # reading resumed
        assert direct.get("pending:counter") == b"1000"


# --- A backend that is down from the start -------------------------------------------------------

# Every such error names the instance and the reason; commands during the retry backoff add
# that the gateway is retrying.
BACKEND_DOWN = (
    r"^BACKEND instance 'main' is unavailable: "
    r"cannot connect to the instance's Redis: Connection refused"
)


@pytest.fixture
def gw_with_backend_down(tmp_path: Path) -> Iterator[tuple[RunningGateway, RedisServer]]:
    """A gateway whose instance's Redis was stopped before any client came (its port closed);
    also a server to start on that port, with that password, when the test wants it back."""
    backend = RedisServer(tmp_path / "backend")
    with backend:
        port, password = backend.port, backend.password
        # A long connect timeout: errors must come from the refused connection, not a timer.
        with run_gateway(backend, tmp_path, upstream_connect_timeout_s=60) as gw:
            backend.stop()
            again = RedisServer(tmp_path / "backend", port=port, password=password)
            try:
                yield gw, again
            finally:
                again.stop()


def down_client(gw: RunningGateway) -> redis.Redis:
    # socket_timeout: a reply that waited for upstream_connect_timeout_s (60 s) fails here.
    return gw.client(retry=NO_RETRY, single_connection_client=True, socket_timeout=10)


def test_backend_down_gives_backend_errors_and_the_connection_recovers(
    gw_with_backend_down: tuple[RunningGateway, RedisServer],
) -> None:
    gw, backend = gw_with_backend_down
    with down_client(gw) as r:
        client_id = r.client_id()  # answered by the gateway itself
        with pytest.raises(redis.ResponseError, match=BACKEND_DOWN):
            r.get("k")
        with pytest.raises(redis.ResponseError, match=BACKEND_DOWN):
            r.set("k", "v")
        # After AUTH, PING is forwarded to the instance's Redis, as a health check means it:
        # an honest BACKEND error, not a PONG from a gateway that cannot reach the data.
        with pytest.raises(redis.ResponseError, match=BACKEND_DOWN):
            r.ping()
        assert r.client_id() == client_id  # the same connection, still open

        backend.start()

        def pong() -> bool:
            with contextlib.suppress(redis.ResponseError):
                return bool(r.ping())  # BACKEND until the pool's retry backoff has passed
            return False

        wait_for(pong, "PING to reach the restarted backend")
        assert r.set("k", "v") and r.get("k") == b"v"
        pipe = r.pipeline(transaction=True)
        pipe.incr("n").incr("n")
        assert pipe.execute() == [1, 2]
        assert r.client_id() == client_id


def pools_retrying(gw: RunningGateway) -> bool:
    """Whether no pool is inside a retry backoff (the next command really tries to connect)."""
    return gw.call(lambda: all(p._clock() >= p._down_until for p in gw.gateway.pools))


def test_backend_down_multi_gets_a_backend_error_and_the_connection_stays_open(
    gw_with_backend_down: tuple[RunningGateway, RedisServer],
) -> None:
    gw, _ = gw_with_backend_down
    with down_client(gw) as r:
        client_id = r.client_id()
        wait_for(lambda: pools_retrying(gw), "the pool to be out of its retry backoff")
        with pytest.raises(redis.ResponseError, match=BACKEND_DOWN):
            r.execute_command("MULTI")  # needs a dedicated connection
        with pytest.raises(redis.ResponseError, match=BACKEND_DOWN):
            r.ping()
        assert r.client_id() == client_id


def test_backend_down_answers_concurrent_clients_each_with_errors(
    gw_with_backend_down: tuple[RunningGateway, RedisServer],
) -> None:
    gw, _ = gw_with_backend_down

    def one_client(n: int) -> None:
        with down_client(gw) as r:
            for i in range(20):
                pipe = r.pipeline(transaction=False)
                pipe.set(f"k{n}", i).get(f"k{n}").ping()
                results = pipe.execute(raise_on_error=False)
                assert len(results) == 3
                for result in results:
                    assert isinstance(result, redis.ResponseError), result
                    assert str(result).startswith("BACKEND "), result
            assert r.execute_command("CLIENT", "SETNAME", f"c{n}")
            assert r.execute_command("CLIENT", "GETNAME") == f"c{n}".encode()

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(one_client, n) for n in range(8)]:
            future.result(30)
