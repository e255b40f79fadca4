"""`redisgate proxy --workers 2`: a supervisor and two gateway processes on one port.

Started and stopped like the single process (`test_proxy_process.py`'s helpers). The
supervisor logs each worker's pid when it is ready and its metrics URL; the tests read both
from the log, and check every pid is gone at the end.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.wire.encode import encode_command
from redisgate.store import db
from tests.e2e.test_proxy_process import (  # noqa: F401  (fixtures)
    QUEUE,
    Proxy,
    client_blocked_in_blpop,
    is_refused,
    keys,
    start_proxy,
    wait_for,
)
from tests.integration.proxy.test_pg_source import backend_of, new_instance, new_key

FLEET_READY = re.compile(r"gateway ready in (\d+) workers \(pids [\d, ]+\) on [\d.]+:(\d+)")
WORKER_READY = re.compile(r"worker (\d+) \(pid (\d+)\) ready")
METRICS_URL = re.compile(r"gateway metrics on (http://\S+/metrics)")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Fleet:
    proxy: Proxy
    port: int
    metrics_url: str
    seen: set[int]  # every worker pid ever logged ready

    def pids(self) -> dict[int, int]:
        """The latest pid of each worker, from the log."""
        latest = {int(i): int(pid) for i, pid in WORKER_READY.findall(self.proxy.log)}
        self.seen.update(latest.values())
        return latest

    def scrape(self) -> Samples:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def stop(self) -> None:
        """SIGTERM: exit 0, and no worker left behind."""
        self.pids()
        self.proxy.proc.send_signal(signal.SIGTERM)
        assert self.proxy.wait() == 0, self.proxy.log
        assert self.proxy.gone()
        assert len(self.seen) >= 2 and not any(pid_alive(pid) for pid in self.seen)


def start_fleet(start: Callable[..., Proxy], *args: str) -> Fleet:
    proxy = start("--workers", "2", "--port", "0", *args)
    found: list[re.Match[str]] = []

    def ready() -> bool:
        if match := FLEET_READY.search(proxy.log):
            found.append(match)
            return True
        assert proxy.proc.poll() is None, f"the proxy exited early:\n{proxy.log}"
        return False

    wait_for(ready, "two workers to be ready", 30.0)
    url = METRICS_URL.search(proxy.log)
    assert url is not None and found[0].group(1) == "2", proxy.log
    fleet = Fleet(proxy, int(found[0].group(2)), url.group(1), set())
    assert len(fleet.pids()) == 2
    return fleet


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def total(found: Samples, name: str = "redisgate_commands_total") -> float:
    return sum(value for (sample, _), value in found.items() if sample == name)


def per_worker(found: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["worker"]: v for (sample, labels), v in found.items() if sample == name}


SETS = [[b"SET", b"e2e:workers:%d" % i, b"v"] for i in range(4)]


def open_clients(port: int, token: str, count: int) -> list[socket.socket]:
    """`count` connections, each having sent AUTH, four SETs and a PING and read the six
    one-line replies (so every command is counted before this returns); the caller closes
    them."""
    wire = b"".join(map(encode_command, [[b"AUTH", token.encode()], *SETS, [b"PING"]]))
    with ExitStack() as stack:
        socks = [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            for _ in range(count)
        ]
        for sock in socks:
            sock.sendall(wire)
        for sock in socks:
            data = b""
            while data.count(b"\r\n") < 6:
                chunk = sock.recv(4096)
                assert chunk, data
                data += chunk
            assert data == b"+OK\r\n" * 5 + b"+PONG\r\n"
        stack.pop_all()  # all went well: they stay open
    return socks


def serve_and_close(port: int, token: str, count: int) -> None:
    for sock in open_clients(port, token, count):
        sock.close()


def test_two_workers_share_the_port_and_one_scrape_sums_them(
    start_proxy: Callable[..., Proxy],  # noqa: F811
    keys: tuple[Path, str],  # noqa: F811
) -> None:
    keys_file, token = keys
    fleet = start_fleet(start_proxy, "--keys-file", str(keys_file))
    before = fleet.scrape()
    clients = open_clients(fleet.port, token, 40)  # held open: the gauge sees them all
    after = fleet.scrape()

    assert total(after) - total(before) == 40 * 6
    sent = {"auth": 40, "set": 160, "ping": 40}
    for command, count in sent.items():
        key = ("redisgate_commands_total", (("command", command), ("outcome", "ok")))
        assert after[key] - before.get(key, 0) == count
    assert after[("redisgate_client_connections", (("instance", "main"),))] == 40
    # Both processes served (each worker counts only its own connections' commands).
    served = per_worker(after, "redisgate_worker_commands_total")
    assert set(served) == {"0", "1"} and all(n > 0 for n in served.values()), served
    assert sum(served.values()) == total(after)
    assert per_worker(after, "redisgate_workers_up") == {"0": 1, "1": 1}
    starts = per_worker(after, "process_start_time_seconds")
    assert set(starts) == {"0", "1"}  # labelled, not summed
    assert "worker 0 redisgate.proxy.clients.gateway: gateway listening on" in fleet.proxy.log
    assert "worker 1 redisgate.proxy.clients.gateway: gateway listening on" in fleet.proxy.log

    for sock in clients:
        sock.close()
    wait_for(
        lambda: (
            fleet.scrape().get(("redisgate_client_connections", (("instance", "main"),)), 0) == 0
        ),
        "the connections to close",
    )
    fleet.stop()


def test_a_killed_worker_is_restarted_and_the_gateway_keeps_serving(
    start_proxy: Callable[..., Proxy],  # noqa: F811
    keys: tuple[Path, str],  # noqa: F811
) -> None:
    keys_file, token = keys
    fleet = start_fleet(start_proxy, "--keys-file", str(keys_file))
    serve_and_close(fleet.port, token, 20)
    counted = total(fleet.scrape())
    assert counted == 20 * 6

    victim = fleet.pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: f"worker 0 (pid {victim}) was killed by SIGKILL: restarting it" in fleet.proxy.log,
        "the supervisor to notice",
    )
    assert not pid_alive(victim)  # reaped by the supervisor
    serve_and_close(fleet.port, token, 10)  # worker 1 alone, meanwhile
    wait_for(lambda: fleet.pids()[0] != victim, "worker 0 to be restarted")
    serve_and_close(fleet.port, token, 10)

    found = fleet.scrape()
    # The dead worker's counts (as of the last scrape) still count: no counter went down.
    assert total(found) == counted + 20 * 6
    assert per_worker(found, "redisgate_workers_up") == {"0": 1, "1": 1}
    assert per_worker(found, "redisgate_worker_restarts_total") == {"0": 1, "1": 0}
    fleet.stop()


def test_sigterm_drains_every_worker_then_exits_0(
    start_proxy: Callable[..., Proxy],  # noqa: F811
    keys: tuple[Path, str],  # noqa: F811
    redis_server: RedisServer,
) -> None:
    keys_file, token = keys
    fleet = start_fleet(start_proxy, "--keys-file", str(keys_file), "--shutdown-timeout-s", "60")
    with (
        redis.Redis(port=redis_server.port, password=redis_server.password) as direct,
        client_blocked_in_blpop(fleet.port, token, direct, timeout=20) as (_, popped),
        redis.Redis(port=fleet.port, password=token, single_connection_client=True) as busy,
        ThreadPoolExecutor(1) as pool,
    ):
        idle = open_clients(fleet.port, token, 10)  # on both workers, nothing in flight
        fleet.pids()
        assert busy.set("e2e:drain", "v")
        direct.execute_command("CLIENT", "PAUSE", "1500", "ALL")  # holds the next GET
        in_flight = pool.submit(busy.get, "e2e:drain")
        time.sleep(0.2)
        fleet.proxy.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: is_refused(fleet.port), "every listener to close")
        for sock in idle:
            assert sock.recv(100) == b""  # closed at once
            sock.close()
        with pytest.raises(redis.ResponseError, match="UNBLOCKED the gateway is shutting down"):
            popped.result(15)  # a blocked command is answered at once
        assert fleet.proxy.proc.poll() is None  # one worker still owes the GET's reply
        assert in_flight.result(15) == b"v"
        assert fleet.proxy.wait() == 0, fleet.proxy.log
    log = fleet.proxy.log
    for index in (0, 1):
        assert f"worker {index} redisgate.signals: SIGTERM: shutting down gracefully" in log
    assert not any(pid_alive(pid) for pid in fleet.seen)


def test_a_second_sigterm_cuts_the_drains_short(
    start_proxy: Callable[..., Proxy],  # noqa: F811
    keys: tuple[Path, str],  # noqa: F811
    redis_server: RedisServer,
) -> None:
    keys_file, token = keys
    fleet = start_fleet(start_proxy, "--keys-file", str(keys_file), "--shutdown-timeout-s", "60")
    with (
        redis.Redis(port=redis_server.port, password=redis_server.password) as direct,
        redis.Redis(port=fleet.port, password=token, single_connection_client=True) as busy,
        ThreadPoolExecutor(1) as pool,
    ):
        assert busy.ping()
        fleet.pids()
        direct.execute_command("CLIENT", "PAUSE", "30000", "ALL")
        try:
            in_flight = pool.submit(busy.get, "e2e:drain")
            time.sleep(0.2)
            fleet.proxy.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: is_refused(fleet.port), "every listener to close")
            assert fleet.proxy.proc.poll() is None and not in_flight.done()
            fleet.proxy.proc.send_signal(signal.SIGTERM)
            assert fleet.proxy.wait() == 0, fleet.proxy.log
            with pytest.raises(redis.ConnectionError):
                in_flight.result(15)
        finally:
            direct.execute_command("CLIENT", "UNPAUSE")
    assert "SIGTERM again: stopping now" in fleet.proxy.log
    assert not any(pid_alive(pid) for pid in fleet.seen)


async def test_each_worker_flushes_usage_under_its_own_gateway_id(
    database_url: str,
    redis_server: RedisServer,
    start_proxy: Callable[..., Proxy],  # noqa: F811
) -> None:
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance)
        fleet = start_fleet(start_proxy, "--database-url", database_url)
        serve_and_close(fleet.port, key.token, 40)
        assert min(per_worker(fleet.scrape(), "redisgate_worker_commands_total").values()) > 0
        fleet.stop()  # the final flush of each worker
        commands = await conn.fetchval(
            "SELECT commands FROM usage_daily WHERE key_id = $1", key.key_id
        )
        gateways = await conn.fetchval("SELECT count(DISTINCT gateway_id) FROM usage_flushes")
    # Had the workers shared an id, the second one's first batch would have been skipped.
    assert commands == 40 * 5  # AUTH is not counted
    assert gateways == 2


@pytest.mark.parametrize(
    ("flags", "code", "message"),
    [
        (("--workers", "0"), 2, "proxy_workers = 0 (from flag --workers): must be 1-256"),
        (
            ("--workers", "2", "--proxy-unix-socket", "/tmp/rg.sock"),
            2,
            "proxy_unix_socket cannot be shared by 2 workers",
        ),
        (("--workers", "2", "--port", "TAKEN"), 1, "the gateway cannot listen on 127.0.0.1:"),
        (
            ("--workers", "2", "--keys-file", "/nonexistent/keys.toml"),
            2,
            "keys file /nonexistent/keys.toml does not",
        ),
    ],
    ids=["zero-workers", "unix-socket", "port-taken", "worker-fails-to-start"],
)
def test_bad_worker_settings_exit_with_a_clear_message(
    start_proxy: Callable[..., Proxy],  # noqa: F811
    keys: tuple[Path, str],  # noqa: F811
    flags: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    keys_file, _ = keys
    with socket.create_server(("127.0.0.1", 0)) as taken:  # a port another program listens on
        port = str(taken.getsockname()[1])
        args = [port if a == "TAKEN" else a for a in flags]
        if "--keys-file" not in args:
            args += ["--keys-file", str(keys_file)]
        if "--port" not in args:
            args += ["--port", "0"]
        proxy = start_proxy(*args)
        assert proxy.wait(30) == code, proxy.log
    assert proxy.gone()
    log = proxy.log
    assert message in log, log
    assert "Traceback" not in log, log
    assert not FLEET_READY.search(log), log
