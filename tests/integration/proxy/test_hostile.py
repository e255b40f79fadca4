"""Hostile clients (issue 13): each attack scaled to seconds, asserting the bounds it breaks
when unbounded (the attacker is paused or cut, buffered bytes stay under their caps, nothing
leaks), never timings. `benchmarks/attacks.py` runs the full-size attacks and measures another
tenant's latency during each."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from redisgate import metrics
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.wire.encode import encode_command
from tests.integration.proxy.conftest import RunningGateway, run_gateway


def wait_for(
    predicate: Callable[[], bool],
    timeout_s: float = 5.0,
    message: Callable[[], str] = lambda: "condition not reached in time",
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, message()
        time.sleep(0.01)


def authed_socket(gw: RunningGateway, instance: str = "main") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.port))
    sock.sendall(encode_command(["AUTH", gw.tokens[instance]]))
    assert read_reply(sock) == b"+OK\r\n"
    return sock


def read_reply(sock: socket.socket, timeout_s: float = 5.0) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def set_big(gw: RunningGateway) -> None:
    """The 100 KB value `big` the reply floods ask for."""
    with gw.client() as r:
        r.set("big", b"x" * 100_000)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def blocked_on_backend(backend: RedisServer) -> int:
    with redis.Redis(port=backend.port, password=backend.password) as direct:
        return int(direct.info("clients")["blocked_clients"])


# --- 1. Departed clients keep nothing --------------------------------------------------------


def test_a_client_that_leaves_mid_blpop_takes_its_work_with_it(
    gw: RunningGateway, redis_server: RedisServer
) -> None:
    baseline_fds = open_fds()
    for _ in range(30):
        sock = authed_socket(gw)
        sock.sendall(encode_command(["BLPOP", "q", "0"]))
        sock.close()
    wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 0)
    wait_for(lambda: gw.dedicated_in_use() == 0)
    wait_for(lambda: blocked_on_backend(redis_server) == 0)
    # Nobody is waiting on q any more: a push stays in the list for the next reader.
    with gw.client() as r:
        r.rpush("q", "x")
        assert r.llen("q") == 1
    # What stays is the pool's: shared connections and up to 8 idle dedicated ones for
    # reuse (30 blocked clients left: had they kept anything, this would be 60 more).
    wait_for(lambda: open_fds() <= baseline_fds + 12, message=lambda: f"{open_fds()} fds")


def test_a_client_that_leaves_mid_xread_block_and_wait_is_freed_too(gw: RunningGateway) -> None:
    for command in (["XREAD", "BLOCK", "0", "STREAMS", "s", "$"], ["WAIT", "1", "0"]):
        sock = authed_socket(gw)
        sock.sendall(encode_command(command))
        time.sleep(0.05)  # blocked on the backend before the EOF arrives
        sock.close()
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 0)
        wait_for(lambda: gw.dedicated_in_use() == 0)


def test_half_close_still_gets_every_reply(gw: RunningGateway) -> None:
    with gw.client() as r:
        r.rpush("ready", "item")
    sock = authed_socket(gw)
    sock.sendall(
        encode_command(["MULTI"])
        + encode_command(["INCR", "n"])
        + encode_command(["EXEC"])
        + encode_command(["BLPOP", "ready", "0"])  # answers at once: the list has an item
        + encode_command(["GET", "n"])
    )
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(5)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    assert data == (b"+OK\r\n+QUEUED\r\n*1\r\n:1\r\n*2\r\n$5\r\nready\r\n$4\r\nitem\r\n$1\r\n1\r\n")


def test_eof_while_blocked_ends_the_command_as_a_timeout_then_closes(
    gw: RunningGateway, redis_server: RedisServer
) -> None:
    sock = authed_socket(gw)
    sock.sendall(encode_command(["SET", "a", "1"]) + encode_command(["BLPOP", "never", "0"]))
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(5)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    # The blocked command ends as if it timed out (CLIENT UNBLOCK): nothing is popped for it.
    assert data == b"+OK\r\n*-1\r\n"
    wait_for(lambda: blocked_on_backend(redis_server) == 0)


def test_many_departed_blocked_clients_do_not_exhaust_descriptors(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, max_clients=50) as gw:
        for _ in range(200):  # four times max_clients: each must be gone before the next
            sock = authed_socket(gw)
            sock.sendall(encode_command(["BLPOP", "q", "0"]))
            sock.close()
            wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) < 50)
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 0)
        with gw.client() as r:
            assert r.ping()


# --- 7. A drain that ends --------------------------------------------------------------------


def test_shutdown_ends_with_blocked_subscribed_and_half_open_clients(gw: RunningGateway) -> None:
    blocked = authed_socket(gw)
    blocked.sendall(encode_command(["BLPOP", "q", "0"]))
    subscribed = authed_socket(gw)
    subscribed.sendall(encode_command(["SUBSCRIBE", "news"]))
    assert read_reply(subscribed).startswith(b"*3\r\n$9\r\nsubscribe\r\n")
    half_open = authed_socket(gw)
    half_open.sendall(encode_command(["BLPOP", "other", "0"]))
    half_open.shutdown(socket.SHUT_WR)
    idle = authed_socket(gw)
    time.sleep(0.1)  # everything has reached the backend
    assert gw.dedicated_in_use() == 2
    # A drain that waited on any of them would take its whole timeout (60 s here).
    started = time.monotonic()
    gw.call_async(gw.gateway.shutdown(timeout_s=60), timeout_s=30)
    assert time.monotonic() - started < 30
    assert read_reply(blocked) == b"-UNBLOCKED the gateway is shutting down; reconnect\r\n"
    assert read_reply(half_open) == b"*-1\r\n"  # ended as if timed out when it left
    for sock in (blocked, subscribed, half_open, idle):
        sock.settimeout(5)
        assert sock.recv(100) == b""  # closed by the gateway, not reset
        sock.close()
    assert gw.call(lambda: len(gw.gateway.clients)) == 0


# --- 3. Pre-AUTH floods ----------------------------------------------------------------------


def test_anonymous_pipeline_flood_is_cut_after_a_few_commands(gw: RunningGateway) -> None:
    victim = gw.client()
    assert victim.ping()
    attackers = []
    for _ in range(10):
        sock = socket.create_connection(("127.0.0.1", gw.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        attackers.append(sock)
    flood = b"PING\r\n" * 200_000  # 1.2 MB each, never read
    for sock in attackers:
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.send(flood)
    for _ in range(50):
        assert victim.ping()
    # Each attacker got NOAUTH for 32 commands at most, then an error and the close.
    for sock in attackers:
        sock.setblocking(True)
        sock.settimeout(5)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:  # closed with its flood unread: the kernel resets
            pass
        assert data.count(b"-NOAUTH") <= 32
        sock.close()
    wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 1)
    victim.close()


def test_anonymous_sockets_per_address_are_capped_and_never_lock_out_a_tenant(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, max_clients=400, max_anonymous_per_address=20) as gw:
        flood = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(200)]
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) <= 20)
        with gw.client() as tenant:  # a new client, from the flooding address too
            assert tenant.ping()
        closed = 0
        for sock in flood:
            sock.settimeout(5)
            try:
                if sock.recv(200).startswith(b"-ERR closed: too many connections waiting"):
                    closed += 1
            except TimeoutError:
                pass  # among the newest: still open
            sock.close()
        assert closed >= 180
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 0)


def test_anonymous_sockets_take_only_their_share_of_max_clients(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, max_clients=100, max_anonymous_per_address=1000) as gw:
        tenants = [gw.client() for _ in range(60)]
        for tenant in tenants:
            assert tenant.ping()  # authenticated: 60 of 100 slots
        flood = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(300)]
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) <= 60 + 25)
        with gw.client() as late:  # the anonymous share is full, yet a new tenant gets in
            assert late.ping()
        for tenant in tenants:
            assert tenant.ping()
            tenant.close()
        for sock in flood:
            sock.close()
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 0)


# --- 2. Replies in flight are bounded ----------------------------------------------------------


class BackendMemory:
    """Polls the backend's memory for client output buffers (`mem_clients_normal`)."""

    def __init__(self, backend: RedisServer) -> None:
        self.direct = redis.Redis(port=backend.port, password=backend.password)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            used = int(self.direct.info("memory")["mem_clients_normal"])
            self.peak = max(self.peak, used)
            time.sleep(0.005)

    def __enter__(self) -> BackendMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.direct.close()


def test_a_reply_flood_from_departing_clients_is_never_asked_of_the_backend(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    window = 2 * 1024 * 1024
    with run_gateway(redis_server, tmp_path, upstream_max_inflight_bytes=window) as gw:
        set_big(gw)
        flood = encode_command(["GET", "big"]) * 1000  # 100 MB of replies asked for
        before = metrics.UNSENT_DROPPED["commands"]
        with BackendMemory(redis_server) as memory:
            for _ in range(8):
                sock = authed_socket(gw)
                sock.sendall(flood)
                sock.close()
            with gw.client() as victim:
                assert victim.ping()
        # Redis never held more than the window (and a reply or two) for the gateway.
        assert memory.peak < window + 4 * 100_000 + 2 * 1024 * 1024
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 0)
        assert metrics.UNSENT_DROPPED["commands"] > before  # dropped unsent, not read and lost


# --- 5. Memory across clients ------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_partial_requests_of_many_clients_stay_under_the_total_cap(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    cap = 48 * 1024 * 1024
    with run_gateway(redis_server, tmp_path, max_total_request_bytes=cap) as gw:
        victim = gw.client()
        assert victim.ping()
        baseline_rss = rss_mb()
        peak = 0
        chunk = b"x" * (1024 * 1024)
        attackers = []
        for _ in range(2):  # rounds: memory must come back each time
            for _ in range(8):  # 8 x 12 MB of values that never end: 96 MB asked for
                sock = authed_socket(gw)
                sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$31457280\r\n")
                attackers.append(sock)
            for _ in range(12):
                for sock in attackers:
                    with contextlib.suppress(OSError):
                        sock.sendall(chunk)
                peak = max(peak, gw.call(lambda: gw.gateway.request_bytes))
                assert victim.ping()
            cut = 0
            for sock in attackers:
                sock.settimeout(5)
                with contextlib.suppress(OSError):
                    if b"max_total_request_bytes" in sock.recv(1000):
                        cut += 1
                sock.close()
            attackers.clear()
            assert cut >= 3  # the largest holders were told why
            wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 1)
            assert gw.call(lambda: gw.gateway.request_bytes) == 0
        assert peak <= cap + 1024 * 1024  # a read over it at most, then the largest is cut
        assert rss_mb() < baseline_rss + 64  # what the attack held came back
        victim.close()


# --- Fair share under overload -----------------------------------------------------------------


def reply_floods(gw: RunningGateway, seconds: float) -> None:
    """Connect, pipeline 2,000 GETs of 100 KB, leave; again and again."""
    flood = encode_command(["GET", "big"]) * 2000
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock = authed_socket(gw)
        sock.sendall(flood)
        sock.close()
        time.sleep(0.02)


def test_a_flooding_tenant_is_held_back_while_another_is_in_use(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, instances=("main", "victim")) as gw:
        set_big(gw)
        holds = metrics.FAIR_SHARE_HOLDS["holds"]
        reply_floods(gw, 1.0)  # one tenant alone is never held, however busy
        assert metrics.FAIR_SHARE_HOLDS["holds"] == holds

        stop = threading.Event()
        answered: list[bool] = []

        def victim() -> None:
            with gw.client("victim") as v:
                while not stop.is_set():
                    answered.append(v.ping())
                    time.sleep(0.005)

        pinger = threading.Thread(target=victim)
        pinger.start()
        try:
            flooding = threading.Thread(target=reply_floods, args=(gw, 1.0))
            flooding.start()
            time.sleep(0.2)
            # However fast this machine, make the loop late once: the instance that moved
            # the most bytes since the last late tick (the flood's) must be held.
            gw.loop.call_soon_threadsafe(time.sleep, 0.02)
            flooding.join(10)
        finally:
            stop.set()
            pinger.join(10)
        assert metrics.FAIR_SHARE_HOLDS["holds"] > holds
        assert answered and all(answered)  # and the other tenant was served throughout
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 0)
        # Once the flood is over, nothing stays held.
        wait_for(lambda: gw.call(lambda: not any(p.throttled for p in gw.gateway.pools)))


def test_unsent_replies_of_slow_readers_stay_under_the_total_cap(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    cap = 16 * 1024 * 1024
    with run_gateway(redis_server, tmp_path, max_total_reply_bytes=cap) as gw:
        set_big(gw)
        victim = gw.client()
        assert victim.ping()
        readers = []
        for _ in range(6):  # each asks for 20 MB of replies and reads none of them
            sock = authed_socket(gw)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(encode_command(["GET", "big"]) * 200)
            readers.append(sock)
        peak = 0
        for _ in range(100):
            peak = max(peak, gw.call(lambda: gw.gateway.reply_bytes))
            assert victim.ping()
            time.sleep(0.01)
        # The gateway held at most the cap (and a flush over it) for slow readers, cutting
        # the largest holder each time it was passed.
        assert peak <= cap + 4 * 1024 * 1024
        assert metrics.CLIENTS_CUT["reply_memory"] > 0
        for sock in readers:
            sock.close()
        wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 1)
        assert gw.call(lambda: gw.gateway.reply_bytes) == 0
        victim.close()
