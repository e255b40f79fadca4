"""The launcher starts real servers, waits for them, stops them, and explains failures."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redisgate.errors import ServiceError
from redisgate.launcher.binaries import find_postgres_bin_dir, find_redis_server
from redisgate.launcher.postgres import PostgresServer
from redisgate.launcher.process import ManagedProcess, free_port
from redisgate.launcher.redis import RedisServer


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; /proc tells.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


@pytest.fixture
def listening_socket() -> Iterator[int]:
    """A port somebody else already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_redis_start_ready_stop_leaves_no_process(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    assert server.process is not None and server.process.pid is not None
    pid = server.process.pid
    assert server.ping()
    server.stop()
    assert not alive(pid)
    assert not server.ping()
    server.stop()  # idempotent


def test_redis_requires_its_password(tmp_path: Path) -> None:
    with (
        RedisServer(tmp_path, password="pw-123") as server,
        socket.create_connection(("127.0.0.1", server.port)) as sock,
    ):
        sock.sendall(b"GET x\r\n")
        assert sock.recv(100).startswith(b"-NOAUTH")


def test_redis_port_taken_is_a_clear_error(tmp_path: Path, listening_socket: int) -> None:
    server = RedisServer(tmp_path, port=listening_socket)
    with pytest.raises(ServiceError, match=r"(?s)redis-server exited.*Address already in use"):
        server.start(timeout_s=10)
    assert server.process is not None and not server.process.running()


def test_redis_binary_missing_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"install the Debian package 'redis-server'"):
        RedisServer(tmp_path, binary="/nonexistent/redis-server").start()


def test_redis_binary_found_and_new_enough() -> None:
    assert find_redis_server().name == "redis-server"


def test_postgres_start_stop_ephemeral_cleans_up() -> None:
    server = PostgresServer()
    server.start()
    assert server.process is not None and server.process.pid is not None
    pid, base = server.process.pid, server.base_dir
    assert base is not None and (base / "data" / "PG_VERSION").exists()
    server.stop()
    assert not alive(pid)
    assert not base.exists()


def test_postgres_persistent_cluster_is_reused(tmp_path: Path) -> None:
    with PostgresServer(tmp_path / "pg") as first:
        password = first.password
    with PostgresServer(tmp_path / "pg") as second:
        assert second.password == password  # the same cluster, not a new initdb
    assert (tmp_path / "pg" / "data" / "PG_VERSION").exists()
    if os.geteuid() == 0:  # PostgreSQL ran as the unprivileged service user
        import pwd

        assert (tmp_path / "pg" / "data").stat().st_uid == pwd.getpwnam("redisgate").pw_uid


def test_postgres_port_taken_is_a_clear_error(listening_socket: int) -> None:
    server = PostgresServer(port=listening_socket)
    with pytest.raises(ServiceError, match=r"(?s)postgres exited.*already in use"):
        server.start(timeout_s=20)


def test_postgres_bin_dir_without_binaries(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"lacks initdb, postgres, pg_isready"):
        find_postgres_bin_dir(tmp_path)
    assert (find_postgres_bin_dir() / "postgres").exists()


def test_wait_ready_times_out_quoting_the_log(tmp_path: Path) -> None:
    script = "import sys, time; print('warming up', flush=True); time.sleep(60)"
    proc = ManagedProcess("sleeper", [sys.executable, "-c", script], tmp_path / "log")
    proc.start()
    pid = proc.pid
    with pytest.raises(ServiceError, match=r"(?s)sleeper was not ready after 0.5s.*warming up"):
        proc.wait_ready(lambda: False, 0.5, "ready")
    assert pid is not None and not alive(pid)


def test_child_that_dies_early_is_reported_with_its_log(tmp_path: Path) -> None:
    script = "import sys; print('bad config line 3'); sys.exit(3)"
    proc = ManagedProcess("crasher", [sys.executable, "-c", script], tmp_path / "log")
    proc.start()
    with pytest.raises(ServiceError, match=r"(?s)crasher exited \(code 3\).*bad config line 3"):
        proc.wait_ready(lambda: False, 10, "ready")


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = ManagedProcess("stubborn", [sys.executable, "-c", script], tmp_path / "log")
    proc.start()
    proc.wait_ready(lambda: "ready" in proc.log_tail(), 10, "ready")
    assert proc.stop(timeout_s=0.5) == -signal.SIGKILL
    assert not proc.running()


def test_missing_executable(tmp_path: Path) -> None:
    proc = ManagedProcess("ghost", ["/nonexistent/ghost"], tmp_path / "log")
    with pytest.raises(ServiceError, match=r"executable not found"):
        proc.start()


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_detached_child_keeps_running_and_popen_lets_it_go(tmp_path: Path) -> None:
    script = "import time; print('up', flush=True); time.sleep(60)"
    proc = ManagedProcess(
        "keeper", [sys.executable, "-c", script], tmp_path / "log", die_with_parent=False
    )
    proc.start()
    proc.wait_ready(lambda: "up" in proc.log_tail(), 10, "up")
    pid = proc.detach()
    assert pid is not None and alive(pid)
    assert not proc.running()
    assert proc.stop() is None  # no longer ours to stop
    assert proc.detach() is None
    gc.collect()  # the forgotten Popen must not warn (filterwarnings = error) nor reap it
    assert alive(pid)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
