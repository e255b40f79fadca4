"""`redisgate proxy` as an operator runs it: a process that serves, drains on SIGTERM and exits.

Each test starts `python -m redisgate proxy --port 0` in front of the session's redis-server
(a keys file made with the same functions as `redisgate keys add-instance` / `keys new`) and
learns the port from the "gateway listening on" log line.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redisgate.backends import Backend
from redisgate.launcher.process import free_port
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.keys.static import add_key, set_instance
from tests.conftest import TEST_SECRET_KEY

LISTENING = re.compile(r"gateway listening on \('127\.0\.0\.1', (\d+)\)")
NO_RETRY = Retry(NoBackoff(), 0)
QUEUE = "e2e:proxy:queue"


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Poll `condition` until it holds (a bounded loop, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout_s:g}s")
        time.sleep(0.02)


class Proxy:
    """One `python -m redisgate proxy` process; its stderr (the log) goes to a file."""

    def __init__(self, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("REDISGATE_")}
        # The keyring this test process seals backend passwords with (tests/conftest.py).
        env["REDISGATE_BACKEND_SECRET_KEYS"] = TEST_SECRET_KEY
        with log_path.open("w") as log:
            self.proc = subprocess.Popen(
                # metrics on a free port: tests may run several proxies at once
                [
                    sys.executable,
                    "-m",
                    "redisgate",
                    "proxy",
                    "--metrics-port",
                    "0",
                    "--http-port",
                    "0",
                    *args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def port(self) -> int:
        """The port from the "gateway listening on" line (waits for it)."""
        found: list[int] = []

        def listening() -> bool:
            if match := LISTENING.search(self.log):
                found.append(int(match.group(1)))
                return True
            assert self.proc.poll() is None, f"the proxy exited early:\n{self.log}"
            return False

        wait_for(listening, "the proxy to listen")
        return found[0]

    def wait(self, timeout_s: float = 15.0) -> int:
        return self.proc.wait(timeout_s)

    def gone(self) -> bool:
        """Exited and reaped: no process left with its pid."""
        return self.proc.poll() is not None and not Path(f"/proc/{self.proc.pid}").exists()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(15)


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[Callable[..., Proxy]]:
    """Start proxies with given flags; any still running at the end is killed."""
    started: list[Proxy] = []

    def start(*args: str) -> Proxy:
        proxy = Proxy(tmp_path / f"proxy-{len(started)}.log", *args)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def keys(redis_server: RedisServer, tmp_path: Path) -> tuple[Path, str]:
    """A keys file with instance "main" (db 0 of the session's Redis) and its key's token."""
    keys_file = tmp_path / "keys.toml"
    backend = Backend(host="127.0.0.1", port=redis_server.port, password=redis_server.password)
    set_instance(keys_file, "main", backend)
    with redis.Redis(port=redis_server.port, password=redis_server.password) as direct:
        direct.delete(QUEUE, "e2e:proxy:cli")
    return keys_file, add_key(keys_file, "main", "e2e").token


def is_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def blocked_in_blpop(direct: redis.Redis) -> bool:
    return any(client["cmd"] == "blpop" for client in direct.client_list())


@contextlib.contextmanager
def client_blocked_in_blpop(
    port: int, token: str, direct: redis.Redis, timeout: int
) -> Iterator[tuple[redis.Redis, Future[Any]]]:
    """A client whose `BLPOP QUEUE timeout` has reached Redis; yields it and its future."""
    with (
        redis.Redis(
            port=port,
            password=token,
            retry=NO_RETRY,
            single_connection_client=True,
            socket_timeout=30,
        ) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        assert client.ping()
        popped = pool.submit(client.blpop, [QUEUE], timeout)
        wait_for(lambda: blocked_in_blpop(direct), "BLPOP to reach Redis")
        yield client, popped


def test_redis_cli_through_the_proxy_process(
    start_proxy: Callable[..., Proxy], keys: tuple[Path, str], tmp_path: Path
) -> None:
    keys_file, token = keys
    unix = tmp_path / "gw.sock"
    proxy = start_proxy(
        "--keys-file", str(keys_file), "--port", "0", "--proxy-unix-socket", str(unix)
    )
    port = proxy.port()
    auth = ["--user", "default", "--pass", token, "--no-auth-warning"]

    def run(*command: str, via: tuple[str, ...] = ("-h", "127.0.0.1", "-p", str(port))) -> str:
        argv = ["redis-cli", *via, *auth, *command]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert run("PING") == "PONG"
    assert run("SET", "e2e:proxy:cli", "hello") == "OK"
    assert run("GET", "e2e:proxy:cli") == "hello"
    assert run("GET", "e2e:proxy:cli", via=("-s", str(unix))) == "hello"
    assert run("CONFIG", "SET", "maxmemory", "0").startswith("NOPERM")
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.wait() == 0, proxy.log
    assert proxy.gone()
    assert "SIGTERM: shutting down gracefully" in proxy.log
    assert not unix.exists()


def test_sigterm_answers_a_blocked_client_drains_in_flight_commands_then_exits_0(
    start_proxy: Callable[..., Proxy], keys: tuple[Path, str], redis_server: RedisServer
) -> None:
    keys_file, token = keys
    proxy = start_proxy("--keys-file", str(keys_file), "--port", "0", "--shutdown-timeout-s", "60")
    port = proxy.port()
    with (
        redis.Redis(port=redis_server.port, password=redis_server.password) as direct,
        client_blocked_in_blpop(port, token, direct, timeout=20) as (client, popped),
        redis.Redis(port=port, password=token, single_connection_client=True) as busy,
        ThreadPoolExecutor(1) as pool,
        socket.create_connection(("127.0.0.1", port), timeout=10) as idle,
    ):
        idle.sendall(b"AUTH " + token.encode() + b"\r\n")
        assert idle.recv(100) == b"+OK\r\n"
        assert busy.set("e2e:drain", "v")
        direct.execute_command("CLIENT", "PAUSE", "1500", "ALL")  # holds the next GET
        in_flight = pool.submit(busy.get, "e2e:drain")
        time.sleep(0.2)  # the GET is in flight, waiting on the paused backend

        proxy.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: is_refused(port), "the listener to close")
        assert idle.recv(100) == b""  # a client with nothing in flight is closed at once
        # A blocked command is answered at once: it could wait forever.
        with pytest.raises(redis.ResponseError, match="UNBLOCKED the gateway is shutting down"):
            popped.result(15)
        assert proxy.proc.poll() is None  # still draining the GET
        assert in_flight.result(15) == b"v"  # answered once the backend resumed
        assert proxy.wait() == 0, proxy.log
        # The BLPOP went with its connection: a later push stays for the next reader.
        wait_for(lambda: not blocked_in_blpop(direct), "the backend's BLPOP to go away")
        direct.rpush(QUEUE, "job")
        assert direct.llen(QUEUE) == 1
        with pytest.raises(redis.ConnectionError):
            client.ping()
    assert proxy.gone()


def test_second_sigterm_forces_exit_while_a_command_is_still_in_flight(
    start_proxy: Callable[..., Proxy], keys: tuple[Path, str], redis_server: RedisServer
) -> None:
    keys_file, token = keys
    # A drain that would take a minute: only the second signal can end it sooner.
    proxy = start_proxy("--keys-file", str(keys_file), "--port", "0", "--shutdown-timeout-s", "60")
    port = proxy.port()
    with (
        redis.Redis(port=redis_server.port, password=redis_server.password) as direct,
        redis.Redis(port=port, password=token, single_connection_client=True) as busy,
        ThreadPoolExecutor(1) as pool,
    ):
        assert busy.ping()
        direct.execute_command("CLIENT", "PAUSE", "30000", "ALL")
        try:
            in_flight = pool.submit(busy.get, "e2e:drain")
            time.sleep(0.2)
            proxy.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: is_refused(port), "the listener to close")
            assert proxy.proc.poll() is None and not in_flight.done()
            proxy.proc.send_signal(signal.SIGTERM)
            assert proxy.wait() == 0, proxy.log
            assert "SIGTERM again: stopping now" in proxy.log
            with pytest.raises(redis.ConnectionError):
                in_flight.result(15)  # cut off without a reply
        finally:
            direct.execute_command("CLIENT", "UNPAUSE")
    assert proxy.gone()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ((), "the gateway has no key source: set database_url"),
        (("--keys-file", "/nonexistent/keys.toml"), "keys file /nonexistent/keys.toml does not"),
        (("--port", "99999"), "proxy_port = 99999 (from flag --port): must be a TCP port"),
        (
            ("--proxy-tls-key-file", "/nonexistent/key.pem"),
            "proxy_tls_key_file = PosixPath('/nonexistent/key.pem') "
            "(from flag --proxy-tls-key-file): is not an existing file",
        ),
        (("--proxy-tls-port", "TLS"), "proxy_tls_cert_file and proxy_tls_key_file must name"),
    ],
    ids=["no-keys-file", "missing-keys-file", "bad-port", "missing-tls-key", "tls-without-cert"],
)
def test_bad_settings_exit_2_with_a_clear_message(
    start_proxy: Callable[..., Proxy],
    keys: tuple[Path, str],
    flags: tuple[str, ...],
    message: str,
) -> None:
    keys_file, _ = keys
    args = ["--port", "0", *flags]
    if "--keys-file" not in flags and flags:
        args[:0] = ["--keys-file", str(keys_file)]
    args = [str(free_port()) if a == "TLS" else a for a in args]
    proxy = start_proxy(*args)
    assert proxy.wait() == 2, proxy.log
    assert proxy.gone()
    log = proxy.log
    assert log.startswith("redisgate: ") or "\nredisgate: " in log, log
    assert message in log, log
    assert "Traceback" not in log, log
