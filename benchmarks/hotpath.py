"""The Python cost of one forwarded command, without sockets: the gateway's hot path beside the
floor's (benchmarks/floor.py), in µs per command.

`make bench` measures whole processes, where system calls (a read and a write per client
read, about 9 µs on loopback here) and a shared machine's noise hide the interpreter's share.
This drives the same classes through the fakes of the unit tests (`tests/unit/proxy/fakes.py`:
`FakeTransport` records writes, `FakeRedisSide` plays Redis): `clients` connections each send
a command (or a pipeline of `depth`), the loop turns once (the backend write), Redis answers
all of them in one read, the loop turns again (the client writes). The gateway runs its full
policy path (an API key, its scope, a rate limit and a daily quota far above the load, usage,
metrics); the floor runs `floor.Client` and `floor.Upstream` on the same fakes. The best of
seven repetitions is kept, less the harness's own cost; what is left is Python work, so a
change's effect reads in hundredths of a µs where the process benchmark's noise is ±15%.

    .venv/bin/python benchmarks/hotpath.py                          # c50 P1, c500 P1, c50 P16
    .venv/bin/python benchmarks/hotpath.py --load 2000x1 --command set
    .venv/bin/python benchmarks/hotpath.py --baseline ../base       # the same, another checkout
    .venv/bin/python benchmarks/hotpath.py --profile --load 50x1    # cProfile of the gateway

With more clients the cost grows where the floor's does not: what one command touches per
client (objects, deques) stops fitting in the CPU caches (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The package and the fakes of the checkout being measured (`--code`), ahead of this one's.
sys.path[:0] = [os.environ.get("HOTPATH_CODE", str(HERE.parent)), str(HERE)]

import floor  # noqa: E402
import uvloop  # noqa: E402

from redisgate.config import Settings  # noqa: E402
from tests.unit.proxy.fakes import (  # noqa: E402
    FakeGateway,
    FakeNetwork,
    FakeTransport,
    bulk,
    instance,
    turns,
    wire,
)

COMMANDS = {
    "get": (wire("GET", "key:000000000001"), bulk(b"xxx")),
    "set": (wire("SET", "key:000000000001", "xxx"), b"+OK\r\n"),
}
LIMITS = {  # as benchmarks/tenant.py sets them: checked per read, never refusing
    "default_ops_per_second": 10_000_000,
    "default_burst": 10_000_000,
    "default_daily_commands": 10**15,
    "default_daily_bytes": 10**18,
}


class Redis:
    """Answers whatever was written to the backend transport, in one read."""

    def __init__(self, transport: FakeTransport, deliver: Callable[[bytes], None], reply: bytes):
        self.transport, self.deliver, self.reply = transport, deliver, reply
        self.marker = b"\r\n*"  # every command but the first of a write starts after a CRLF
        self.replies: dict[int, bytes] = {}

    def answer(self) -> None:
        writes = self.transport.writes
        if not writes:
            return
        count = sum(w.count(self.marker) + (w[:1] == b"*") for w in writes)
        writes.clear()
        data = self.replies.get(count)
        if data is None:
            data = self.replies[count] = self.reply * count
        self.deliver(data)


async def gateway_clients(clients: int, command: str) -> tuple[list[FakeTransport], Redis]:
    loop = asyncio.get_running_loop()
    network = FakeNetwork()
    loop.create_connection = network.create_connection  # type: ignore[method-assign,assignment]
    gateway = FakeGateway(network, Settings(**LIMITS))  # type: ignore[arg-type]
    where = instance("cache")
    key = gateway.keys.add(where)
    transports = []
    for i in range(clients):
        transport = gateway.connect(("127.0.0.1", 10000 + i))
        transport.protocol.data_received(wire("AUTH", key.token))  # type: ignore[union-attr]
        await turns()
        transports.append(transport)
    request, reply = COMMANDS[command]
    transports[0].take()
    transports[0].protocol.data_received(request)  # type: ignore[union-attr]
    await turns()
    side = network.redis[0]
    side.handshake()
    redis = Redis(side.transport, side.protocol.data_received, reply)
    redis.transport.writes[:] = [request]  # the first command, written with the handshake
    redis.answer()
    await turns()
    for transport in transports:
        transport.take()
    return transports, redis


async def floor_clients(clients: int, command: str) -> tuple[list[FakeTransport], Redis]:
    upstream = floor.Upstream(None)
    side = FakeTransport()
    side.attach(upstream)
    transports = []
    for _ in range(clients):
        transport = FakeTransport()
        transport.attach(floor.Client(upstream))
        transports.append(transport)
    return transports, Redis(side, upstream.data_received, COMMANDS[command][1])


async def measure(kind: str, clients: int, depth: int, command: str, profile: bool) -> float:
    """µs of Python per command: the best of seven repetitions, less the harness's cost."""
    make = gateway_clients if kind == "gateway" else floor_clients
    transports, redis = await make(clients, command)
    request, reply = COMMANDS[command]
    request *= depth
    protocols = [t.protocol for t in transports]
    rounds = max(20_000 // (clients * depth), 20)

    async def run(n: int, work: bool = True) -> float:
        start = time.perf_counter()
        for _ in range(n):
            if work:
                for protocol in protocols:
                    protocol.data_received(request)  # type: ignore[union-attr]
            await asyncio.sleep(0)
            if work:
                redis.answer()
            await asyncio.sleep(0)
            if work:
                for transport in transports:
                    transport.writes.clear()
        return time.perf_counter() - start

    await run(rounds)  # warm up (the window learns the reply size)

    async def settle() -> None:  # everything sent is answered (those over the window too)
        for _ in range(1000):
            await run(1, work=False)
            if not redis.transport.writes:
                return
            redis.answer()

    await settle()  # then a check: one more command, and its reply comes back
    transports[0].writes.clear()
    protocols[0].data_received(request)  # type: ignore[union-attr]
    await settle()
    got = transports[0].take()
    assert got == reply * depth, f"the harness lost a reply: {got[:80]!r} {len(got)}"
    harness = min([await run(rounds, work=False) for _ in range(3)])
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    best = min([await run(rounds) for _ in range(7)])
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return (best - harness) / (rounds * clients * depth) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--load",
        nargs="+",
        default=["50x1", "500x1", "50x16"],
        help="CLIENTSxDEPTH (default: 50x1 500x1 50x16)",
    )
    parser.add_argument("--command", choices=sorted(COMMANDS), default="get")
    parser.add_argument("--baseline", type=Path, help="also measure another checkout's gateway")
    parser.add_argument("--profile", action="store_true", help="cProfile the gateway's runs")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: KIND:CLIENTS:DEPTH
    args = parser.parse_args()
    if args.one:
        kind, clients, depth = args.one.split(":")
        cost = uvloop.run(measure(kind, int(clients), int(depth), args.command, args.profile))
        print(f"{cost:.3f}")
        return 0

    def one(kind: str, load: str, code: Path | None = None) -> float:
        clients, depth = load.split("x")
        env = {**os.environ, "HOTPATH_CODE": str((code or HERE.parent).resolve())}
        argv = [sys.executable, __file__, "--command", args.command]
        argv += ["--one", f"{kind}:{clients}:{depth}"] + (["--profile"] if args.profile else [])
        out = subprocess.run(argv, env=env, capture_output=not args.profile, text=True)
        if out.returncode:
            raise SystemExit(f"{kind} {load} failed: {out.stderr}")
        return float((out.stdout or "nan").strip().splitlines()[-1])

    if args.profile:  # the profiles are the output
        for load in args.load:
            one("gateway", load)
        return 0
    head = f"| load ({args.command.upper()}) | floor µs/cmd | gateway µs/cmd | gateway - floor |"
    rows = ["", head, "|---|---|---|---|"]
    if args.baseline:
        rows[1] = head + " baseline µs/cmd | gateway - baseline |"
        rows[2] += "---|---|"
    for load in args.load:
        floor_cost = one("floor", load)
        cost = one("gateway", load)
        row = f"| {load} | {floor_cost:.2f} | {cost:.2f} | {cost - floor_cost:+.2f} |"
        if args.baseline:
            base = one("gateway", load, args.baseline)
            row += f" {base:.2f} | {cost - base:+.2f} |"
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
