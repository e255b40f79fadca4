"""Many idle authenticated connections: memory per connection, and that service goes on.

A multi-tenant gateway holds a connection per application worker, most of them idle most of
the time, so its memory per idle client and its answer time with thousands of them open matter
as much as throughput. This opens `count` connections (in batches, so the listen backlog never
overflows), authenticates each, then leaves them idle and measures:

- the target process's RSS (`/proc/PID/status` VmRSS) after one warm-up client and with all
  of them open: the difference divided by the count is the RSS per idle connection;
- a new client's connect + AUTH + PING time, 20 times in a row (median and max);
- that every idle connection still answers PING afterwards (none was dropped).

The per-connection figure is only meaningful on a freshly started process: memory freed by
earlier loads would be reused and hide the cost, so the suite starts a new target for it.

    python benchmarks/idle.py --port 6380 --password TOKEN --pid GATEWAY_PID --count 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time
from typing import Any

from benchlib import BlockingClient, encode, raise_open_files_limit, reply_end, rss_bytes
from mixed import run_loop

PROBES = 20
_PING = encode("PING")  # not inline: twemproxy only takes RESP arrays
BATCH = 200


async def _read_reply(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    buf = b""
    while reply_end(buf) < 0:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ConnectionError("closed by the server")
        buf += chunk
    return buf


async def _open_one(host: str, port: int, auth: bytes | None) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (host, port))
        if auth is not None:
            await loop.sock_sendall(sock, auth)
            reply = await _read_reply(sock)
            if not reply.startswith(b"+OK"):
                raise RuntimeError(f"AUTH refused: {reply[:120]!r}")
    except BaseException:
        sock.close()
        raise
    return sock


async def _ping(sock: socket.socket) -> bool:
    try:
        await asyncio.get_running_loop().sock_sendall(sock, _PING)
        return (await asyncio.wait_for(_read_reply(sock), 10)).startswith(b"+PONG")
    except (OSError, ConnectionError, TimeoutError):
        return False


def probe_ms(host: str, port: int, password: str | None) -> float:
    """One new client's connect + AUTH + PING, in milliseconds."""
    started = time.perf_counter()
    with BlockingClient(host, port, password) as client:
        reply = client.call("PING")
    elapsed = (time.perf_counter() - started) * 1000
    if not reply.startswith(b"+PONG"):
        raise RuntimeError(f"PING answered {reply[:120]!r}")
    return elapsed


async def measure_idle(
    host: str, port: int, password: str | None, pid: int, count: int
) -> dict[str, Any]:
    """Open `count` idle authenticated clients against the process `pid` listening on `port`."""
    auth = encode("AUTH", password) if password else None
    probe_ms(host, port, password)  # warm-up: upstream connection, command table, key cache
    await asyncio.sleep(0.2)
    rss_before = rss_bytes(pid)
    socks: list[socket.socket] = []
    error = ""
    started = time.perf_counter()
    try:
        while len(socks) < count:
            n = min(BATCH, count - len(socks))
            opened = await asyncio.gather(
                *(_open_one(host, port, auth) for _ in range(n)), return_exceptions=True
            )
            for item in opened:
                if isinstance(item, BaseException):
                    error = error or f"{type(item).__name__}: {item}"
                else:
                    socks.append(item)
            if error:
                break
        open_s = time.perf_counter() - started
        await asyncio.sleep(0.5)  # let the target finish any per-connection work
        rss_after = rss_bytes(pid)
        probes: list[float] = []
        probe_error = ""
        for _ in range(PROBES):
            try:
                probes.append(probe_ms(host, port, password))
            except (OSError, RuntimeError) as exc:
                probe_error = f"{type(exc).__name__}: {exc}"
        alive = 0
        for i in range(0, len(socks), 1000):
            alive += sum(await asyncio.gather(*(_ping(s) for s in socks[i : i + 1000])))
    finally:
        for sock in socks:
            sock.close()
    opened_n = len(socks)
    return {
        "count": count,
        "opened": opened_n,
        "error": error,
        "open_s": open_s,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "bytes_per_conn": (rss_after - rss_before) / opened_n if opened_n else float("nan"),
        "probe_p50_ms": statistics.median(probes) if probes else float("nan"),
        "probe_max_ms": max(probes) if probes else float("nan"),
        "probe_failures": PROBES - len(probes),
        "probe_error": probe_error,
        "alive": alive,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password", help="Redis password, or a RedisGate API key")
    parser.add_argument("--pid", type=int, required=True, help="the target's process id")
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    limit = raise_open_files_limit(args.count + 200)
    if limit < args.count + 200:
        parser.error(f"open-files limit {limit} is too low for {args.count} connections")
    result = run_loop(measure_idle(args.host, args.port, args.password, args.pid, args.count))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
