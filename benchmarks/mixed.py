"""A mixed-command load: MGET of 10 keys, HSET/HGETALL, LPUSH/LRANGE 0 9, INCR, EVALSHA.

redis-benchmark runs one command per test, so it cannot show how a proxy copes with a stream
of different commands (multi-key fan-out, aggregate replies, scripts) on the same connections.
This generator keeps `clients` connections busy, each strictly request/reply (one command in
flight, no pipelining, like most application clients), cycling through the mix below in a
fixed order (each connection starts at a different place) until `seconds` have passed, and
reports operations/s and p50/p99 latency, overall and per command.

It is one Python process on raw asyncio protocols (uvloop when installed), the same for every
target, so comparisons between targets are fair; its own CPU use competes with the target on a
small machine, which compresses the differences (redis-benchmark rows do not have that cost).

    python benchmarks/mixed.py --port 6380 --password TOKEN --clients 50 --seconds 5 --prepare
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from benchlib import BlockingClient, encode, percentile, reply_end

OPS = ("MGET", "HSET", "HGETALL", "LPUSH", "LRANGE", "INCR", "EVALSHA")
SCRIPT = "return redis.call('GET', KEYS[1])"
MGET_KEYS = [f"mx:s:{i}" for i in range(10)]
VALUE = "v" * 32


def prepare(host: str, port: int, password: str | None) -> str:
    """Seed the keys MGET reads, empty the lists, load the script; return its SHA1.

    Run against direct Redis (twemproxy does not forward SCRIPT LOAD), before the first run.
    """
    with BlockingClient(host, port, password) as client:
        client.pipeline([("MSET", *[x for k in MGET_KEYS for x in (k, VALUE)])])
        lists = [f"mx:l:{w}" for w in range(1000)]
        client.pipeline([("DEL", *lists[i : i + 100]) for i in range(0, len(lists), 100)])
        reply = client.call("SCRIPT", "LOAD", SCRIPT)
    if not reply.startswith(b"$40\r\n"):
        raise RuntimeError(f"SCRIPT LOAD failed: {reply[:200]!r}")
    return reply[5:45].decode()


def commands(worker: int, sha: str) -> dict[str, bytes]:
    """The encoded commands of one connection: its own hash, list and counter keys."""
    h, lst, c = f"mx:h:{worker}", f"mx:l:{worker}", f"mx:c:{worker}"
    return {
        "MGET": encode("MGET", *MGET_KEYS),
        "HSET": encode("HSET", h, f"f{worker % 10}", VALUE),
        "HGETALL": encode("HGETALL", h),
        "LPUSH": encode("LPUSH", lst, VALUE),
        "LRANGE": encode("LRANGE", lst, 0, 9),
        "INCR": encode("INCR", c),
        "EVALSHA": encode("EVALSHA", sha, 1, c),
    }


class _Conn(asyncio.Protocol):
    """One request/reply connection. `request` sends a command and returns a future of its
    reply (setup and preflight); `drive` then runs the load from the protocol callbacks: each
    reply is timed and answered with the next command at once, without a task switch or a
    future per command, so the generator's own CPU per command stays small."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None
        self.plan: list[tuple[list[int], bytes]] = []
        self.step = 0
        self.sent_at = 0
        self.stop_at = 0
        self.done = 0
        self.errors = 0
        self.finished: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end = reply_end(buf)
        if end < 0:
            self.buf = buf
            return
        self.buf = buf[end:]  # nothing, unless a target sent more than one reply
        if self.waiter is not None:
            waiter, self.waiter = self.waiter, None
            waiter.set_result(buf[:end])
            return
        now = time.perf_counter_ns()
        self.plan[self.step][0].append(now - self.sent_at)
        self.done += 1
        if buf[0] == 45:  # "-": an error reply
            self.errors += 1
        if now >= self.stop_at:
            if self.finished is not None and not self.finished.done():
                self.finished.set_result(None)
            return
        self._send_next()

    def _send_next(self) -> None:
        assert self.transport is not None
        self.step = (self.step + 1) % len(self.plan)
        self.sent_at = time.perf_counter_ns()
        self.transport.write(self.plan[self.step][1])

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError(f"connection lost: {exc}")
        for fut in (self.waiter, self.finished):
            if fut is not None and not fut.done():
                fut.set_exception(error)

    def request(self, payload: bytes) -> asyncio.Future[bytes]:
        assert self.transport is not None
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        self.transport.write(payload)
        return waiter

    def drive(
        self, plan: list[tuple[list[int], bytes]], first: int, stop_at: int
    ) -> asyncio.Future[None]:
        """Cycle through `plan` (latency list, command) from `first` until `stop_at` (ns)."""
        self.plan, self.step, self.stop_at = plan, first - 1, stop_at
        self.finished = asyncio.get_running_loop().create_future()
        self._send_next()
        return self.finished


async def _connect(host: str, port: int, password: str | None) -> _Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Conn, host, port)
    if password:
        reply = await conn.request(encode("AUTH", password))
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"AUTH failed: {reply[:200]!r}")
    return conn


@dataclass
class MixedResult:
    ops: int = 0
    seconds: float = 0.0
    errors: int = 0
    client_cpu_s: float = 0.0  # this generator's own CPU time during the run
    latencies_ns: dict[str, list[int]] = field(default_factory=lambda: {op: [] for op in OPS})
    skipped: dict[str, str] = field(default_factory=dict)  # op -> why the target cannot run it

    def summary(self) -> dict[str, Any]:
        every = sorted(x for lat in self.latencies_ns.values() for x in lat)
        per_op = {}
        for op, lat in self.latencies_ns.items():
            if op in self.skipped:
                continue
            lat = sorted(lat)
            per_op[op] = {
                "count": len(lat),
                "p50_ms": percentile(lat, 50) / 1e6,
                "p99_ms": percentile(lat, 99) / 1e6,
            }
        return {
            "rps": self.ops / self.seconds if self.seconds else 0.0,
            "p50_ms": percentile(every, 50) / 1e6,
            "p99_ms": percentile(every, 99) / 1e6,
            "commands": self.ops,
            "seconds": self.seconds,
            "errors": self.errors,
            "client_cpu_s": self.client_cpu_s,
            "per_op": per_op,
            "skipped": self.skipped,
        }


async def preflight(host: str, port: int, password: str | None, sha: str) -> dict[str, str]:
    """Send each command once; the ones a target answers with an error are left out for it."""
    conn = await _connect(host, port, password)
    skipped: dict[str, str] = {}
    try:
        for op, payload in commands(0, sha).items():
            reply = await asyncio.wait_for(conn.request(payload), 10)
            if reply.startswith(b"-"):
                skipped[op] = reply[1:].strip().decode(errors="replace")[:120]
    finally:
        assert conn.transport is not None
        conn.transport.close()
    return skipped


async def run_mixed(
    host: str, port: int, password: str | None, *, clients: int, seconds: float, sha: str
) -> MixedResult:
    """Connect and authenticate every client first, then run the mix for `seconds`."""
    result = MixedResult(skipped=await preflight(host, port, password, sha))
    skip = result.skipped
    conns = await asyncio.gather(*(_connect(host, port, password) for _ in range(clients)))
    plans = [
        [(result.latencies_ns[op], cmd) for op, cmd in commands(i, sha).items() if op not in skip]
        for i in range(clients)
    ]
    if not plans[0]:
        raise RuntimeError("the target cannot run any command of the mix")
    began = time.perf_counter_ns()
    stop_at = began + int(seconds * 1e9)
    cpu = time.process_time()
    runs = [conn.drive(plans[i], i % len(plans[i]), stop_at) for i, conn in enumerate(conns)]
    await asyncio.gather(*runs)
    result.seconds = (time.perf_counter_ns() - began) / 1e9
    result.client_cpu_s = time.process_time() - cpu
    result.ops = sum(conn.done for conn in conns)
    result.errors = sum(conn.errors for conn in conns)
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    return result


def run_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on uvloop when it is installed (it is a gateway dependency)."""
    runner: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - plain asyncio is slower but correct
        pass
    return runner(coro)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password", help="Redis password, or a RedisGate API key")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--prepare", action="store_true", help="seed keys, load the script")
    parser.add_argument("--sha", help="SHA1 of the loaded script (without --prepare)")
    args = parser.parse_args()
    if args.prepare:
        sha = prepare(args.host, args.port, args.password)
    elif args.sha:
        sha = args.sha
    else:
        parser.error("pass --prepare or --sha")
    result: MixedResult = run_loop(
        run_mixed(
            args.host, args.port, args.password, clients=args.clients, seconds=args.seconds, sha=sha
        )
    )
    print(json.dumps(result.summary(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
