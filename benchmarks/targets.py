"""The benchmark's targets: one redis-server, the gateway in front of it, the floor, twemproxy.

Each is its own process on loopback; `Target` is what a load needs to reach one (port, password
or API key, pid for CPU and RSS readings). `seed` writes the data every GET load reads.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from benchlib import BlockingClient
from mixed import prepare

from redisgate.backends import Backend
from redisgate.launcher.process import ManagedProcess, free_port
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.keys.static import add_key, set_instance

BIG_KEY, BIG_SIZE = "bench:big", 100 * 1024
KEYSPACE = 100_000  # redis-benchmark -r: keys key:000000000000 … key:000000099999
DATA = "xxx"  # redis-benchmark's default 3-byte value


@dataclass
class Target:
    name: str
    port: int
    password: str | None  # the Redis password, or the gateway's API key
    pid: int
    http_port: int | None = None  # a gateway's HTTP command API (the HTTP loads)


def make_keys_file(
    workdir: Path, redis: RedisServer, scopes: str | None, name: str = "keys"
) -> tuple[Path, str]:
    """A keys file with one instance (the benchmark Redis) and one key; returns the token."""
    keys = workdir / f"{name}.toml"
    set_instance(keys, "bench", Backend(host="127.0.0.1", port=redis.port, password=redis.password))
    return keys, add_key(keys, "bench", "bench", scopes).token


def start_gateway(
    workdir: Path,
    source: list[str],
    max_clients: int,
    tag: str,
    extra: tuple[str, ...] = (),
    code: Path | None = None,
    http_port: int = 0,
) -> tuple[ManagedProcess, int]:
    """A `redisgate proxy` process reading keys from `source` (`--keys-file F` or
    `--database-url URL`), with `extra` settings flags; `code`: run the `redisgate` package
    of that checkout instead of this one (`python -m` imports from its working folder);
    `http_port`: its HTTP command API's (0: any free one, when no load uses it)."""
    port = free_port()
    proc = ManagedProcess(
        f"redisgate-{tag}",
        [
            *(sys.executable, "-m", "redisgate", "proxy"),
            *source,
            *("--port", str(port)),
            *("--max-clients", str(max_clients), "--log-level", "warning"),
            *("--metrics-port", "0"),  # several gateways run at once
            *extra,
        ],
        workdir / f"gateway-{tag}.log",
        stop_signal=signal.SIGINT,
        cwd=code,
        # The HTTP port as a variable, not a flag: a baseline checkout from before the HTTP
        # command API refuses the flag (and only warns about the variable).
        env={**os.environ, "REDISGATE_HTTP_PORT": str(http_port)},
    )
    proc.start()
    proc.wait_ready(
        lambda: _answers(port) and (not http_port or _answers(http_port)), 30, "listening"
    )
    return proc, port


def start_twemproxy(workdir: Path, redis: RedisServer, tag: str) -> tuple[ManagedProcess, int]:
    binary = shutil.which("nutcracker")
    assert binary is not None
    port = free_port()
    conf = workdir / f"nutcracker-{tag}.yml"
    conf.write_text(
        "bench:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  redis: true\n"
        f"  redis_auth: {redis.password}\n"
        "  server_connections: 1\n"
        "  servers:\n"
        f"    - 127.0.0.1:{redis.port}:1\n"
    )
    argv = [binary, "-c", str(conf), "-o", str(workdir / f"nutcracker-{tag}.trace")]
    # Its stats port (default 22222) would clash with the next nutcracker's.
    argv += ["-a", "127.0.0.1", "-s", str(free_port())]
    proc = ManagedProcess(f"nutcracker-{tag}", argv, workdir / f"nutcracker-{tag}.log")
    proc.start()
    proc.wait_ready(lambda: _answers(port), 30, "listening")
    return proc, port


def start_floor(workdir: Path, redis: RedisServer, tag: str) -> tuple[ManagedProcess, int]:
    """benchmarks/floor.py in front of `redis`: the smallest uvloop forwarder, one shared
    connection to Redis (which it authenticates itself); its clients send no AUTH."""
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve().parent / "floor.py")]
    argv += ["--port", str(port), "--backend", f"127.0.0.1:{redis.port}"]
    if redis.password:
        argv += ["--password", redis.password]
    proc = ManagedProcess(
        f"floor-{tag}", argv, workdir / f"floor-{tag}.log", stop_signal=signal.SIGINT
    )
    proc.start()
    proc.wait_ready(lambda: _answers(port), 30, "listening")
    return proc, port


def pid_of(proc: ManagedProcess | None) -> int:
    pid: int | None = None if proc is None else proc.pid
    assert pid is not None, "a started process has a pid"
    return pid


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def seed(redis: RedisServer) -> str:
    """The data every load reads, written once to direct Redis; returns the mixed script's SHA."""
    with BlockingClient("127.0.0.1", redis.port, redis.password) as client:
        for start in range(0, KEYSPACE, 10_000):
            keys = range(start, min(start + 10_000, KEYSPACE))
            client.call("MSET", *[x for i in keys for x in (f"key:{i:012d}", DATA)])
        client.pipeline([("DEL", "mylist"), ("RPUSH", "mylist", *[DATA] * 100)])
        client.call("SET", BIG_KEY, "x" * BIG_SIZE)
    return prepare("127.0.0.1", redis.port, redis.password)
