"""Hostile tenants against a real stack: another tenant's PING latency during each attack.

Starts, on loopback: two redis-servers (the "victim" instance and the "attacker" instance),
a keys file with one API key for each, and the gateway in front of both (`redisgate proxy`,
its own process). A separate process (so the attack's Python does not share its GIL) keeps one
authenticated victim connection and sends PING every `--interval-ms` (5 ms), recording the
round trip; a PING that fails or gets no +PONG within a second is an error, and the
connection is opened again. A sampler thread polls the gateway's RSS and open descriptors
(`/proc/PID`) and the attacker's Redis (`INFO memory`, `INFO clients`, directly on the
backend) every 100 ms and keeps the highest values.

First a baseline with no attack, then each attack alone for `--seconds`, with a pause between
them for the gateway to settle ("after" values are read at the end of that pause):

1. `departed-blocked`: connect, AUTH as the attacker, `BLPOP q 0`, close; in a loop, by
   `--concurrency` workers, up to `--departed` times. Gateway descriptors before and after,
   and the attacker Redis's connected and blocked clients.
2. `reply-flood`: the attacker SETs a 100 KB `big`, then `--flood-rate` times a second a new
   connection AUTHs, sends `--gets` x `GET big` in one write and closes at once. The attacker
   Redis's `used_memory` and `mem_clients_normal` (its client output buffers) and the
   gateway's RSS.
3. `preauth-bytes`: `--preauth-conns` unauthenticated connections each send 1.2 MB of inline
   `PING\\r\\n` and never read. `preauth-conns`: `--flood-conns` unauthenticated connections
   opened and left open; then new victim clients connect + AUTH + PING (timed).
4. `partial-bulk`: `--partial-clients` authenticated attacker clients each send the start of
   a 30 MB SET (`$31457280` and all its bytes but the last), never finished. Gateway RSS
   during and after.

The script measures and does not judge: the attacker may be refused, cut off or paused (the
gateway's limits decide that), and its column counts what happened to it: cycles done, error
replies (with the first one quoted), connections cut by the gateway, connects refused, bytes
it managed to send. A safety cap (`--memory-cap-mb`, on the gateway's RSS and the attacker
Redis's used_memory) ends an attack early on a machine others share; the notes say so.

Prints one Markdown table and writes `results/attacks-<time>.{json,md}`. Every process it
starts is stopped at the end, also on Ctrl-C or SIGTERM.

    python benchmarks/attacks.py                    # 5 s per attack (`make bench-attacks`)
    python benchmarks/attacks.py --seconds 2 --only departed-blocked reply-flood
    python benchmarks/attacks.py --gateway-flag=--max-client-output-bytes=1048576
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

from benchlib import (
    BlockingClient,
    encode,
    percentile,
    raise_open_files_limit,
    rss_bytes,
    write_report,
)
from targets import pid_of, start_gateway

from redisgate.backends import Backend
from redisgate.launcher.process import ManagedProcess
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.keys.static import add_key, set_instance

HOST = "127.0.0.1"
MB = 1024 * 1024
BIG_SIZE = 100 * 1024
PREAUTH_BYTES = 1_200_000
PARTIAL_SIZE = 30 * MB
CHUNK = 64 * 1024
ATTACKS = ("departed-blocked", "reply-flood", "preauth-bytes", "preauth-conns", "partial-bulk")


# --- The victim: PING from its own process ---------------------------------------------------


def _victim_client(port: int, token: str) -> BlockingClient:
    return BlockingClient(HOST, port, token, timeout=1.0)


def _pinger(ctl: Connection, port: int, token: str, interval_s: float) -> None:
    """The victim's loop (a child process): PING every `interval_s` on one connection.

    The parent sends "begin" (start a period), "end" (reply with the period's figures) and
    "stop"; a closed pipe (the parent died) ends the loop too.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    client: BlockingClient | None = None
    latencies: list[float] = []
    errors = 0
    first_error = ""
    next_at = time.monotonic()
    while True:
        try:
            while ctl.poll():
                message = ctl.recv()
                if message == "stop":
                    return
                if message == "begin":
                    latencies, errors, first_error = [], 0, ""
                elif message == "end":
                    ctl.send(_victim_figures(latencies, errors, first_error))
        except (EOFError, OSError):
            return
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        next_at = max(next_at + interval_s, time.monotonic())
        try:
            if client is None:
                client = _victim_client(port, token)
            began = time.perf_counter()
            reply = client.call("PING")
            took = time.perf_counter() - began
            if reply == b"+PONG\r\n":
                latencies.append(took)
                continue
            error = f"reply {reply[:80]!r}"
        except (OSError, ConnectionError, RuntimeError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:120]
        errors += 1
        first_error = first_error or error
        if client is not None:
            client.close()
            client = None


def _victim_figures(latencies: list[float], errors: int, first_error: str) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "pings": len(ordered),
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": (ordered[-1] * 1000) if ordered else float("nan"),
        "errors": errors,
        "first_error": first_error,
    }


class Victim:
    """The pinger process and its control pipe."""

    def __init__(self, port: int, token: str, interval_s: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.ctl, child = context.Pipe()
        self.proc = context.Process(
            target=_pinger, args=(child, port, token, interval_s), name="victim", daemon=True
        )
        self.proc.start()
        child.close()

    def begin(self) -> None:
        self.ctl.send("begin")

    def end(self) -> dict[str, Any]:
        self.ctl.send("end")
        if not self.ctl.poll(10):
            raise RuntimeError("the victim's pinger did not answer")
        figures: dict[str, Any] = self.ctl.recv()
        return figures

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.ctl.send("stop")
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.ctl.close()


# --- What the gateway and the attacker's Redis hold -----------------------------------------


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _info_fields(reply: bytes) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in reply.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if value.isdigit():
            fields[name.decode()] = int(value)
    return fields


BACKEND_FIELDS = ("used_memory", "mem_clients_normal", "connected_clients", "blocked_clients")


def backend_info(redis: RedisServer) -> dict[str, int]:
    """The attacker Redis's memory and client counts, read directly (not through the gateway);
    -1 each when it does not answer within 5 s (busy with what an attack left it)."""
    try:
        with BlockingClient(HOST, redis.port, redis.password, timeout=5.0) as client:
            memory, clients = client.pipeline([("INFO", "memory"), ("INFO", "clients")])
    except (OSError, ConnectionError, RuntimeError):
        return dict.fromkeys(BACKEND_FIELDS, -1)
    fields = {**_info_fields(memory), **_info_fields(clients)}
    return {name: fields.get(name, -1) for name in BACKEND_FIELDS}


def snapshot(gateway_pid: int, redis: RedisServer) -> dict[str, int]:
    return {"fds": open_fds(gateway_pid), "rss": rss_bytes(gateway_pid), **backend_info(redis)}


class Sampler(threading.Thread):
    """Polls the gateway and the attacker Redis every `interval_s`; keeps each maximum, and
    trips (`tripped` says why) when the gateway's RSS or Redis's used_memory pass `cap`."""

    def __init__(self, gateway_pid: int, redis: RedisServer, cap: int, interval_s: float = 0.1):
        super().__init__(name="sampler", daemon=True)
        self.gateway_pid = gateway_pid
        self.redis = redis
        self.cap = cap
        self.interval_s = interval_s
        self.highest: dict[str, int] = {}
        self.tripped = ""
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._client: BlockingClient | None = None

    def reset(self) -> None:
        with self._lock:
            self.highest = {}
            self.tripped = ""

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                sample = {"fds": open_fds(self.gateway_pid), "rss": rss_bytes(self.gateway_pid)}
            except OSError:
                return  # the gateway is gone; the main loop notices
            sample.update(self._backend())
            with self._lock:
                for name, value in sample.items():
                    self.highest[name] = max(self.highest.get(name, value), value)
                if not self.tripped and sample["rss"] > self.cap:
                    self.tripped = f"gateway RSS passed {self.cap // MB} MB"
                if not self.tripped and sample.get("used_memory", 0) > self.cap:
                    self.tripped = f"attacker Redis used_memory passed {self.cap // MB} MB"

    def _backend(self) -> dict[str, int]:
        try:
            if self._client is None:
                self._client = BlockingClient(HOST, self.redis.port, self.redis.password, 2.0)
            memory, clients = self._client.pipeline([("INFO", "memory"), ("INFO", "clients")])
        except (OSError, ConnectionError, RuntimeError):
            if self._client is not None:
                self._client.close()
                self._client = None
            return {}
        fields = {**_info_fields(memory), **_info_fields(clients)}
        return {name: fields[name] for name in BACKEND_FIELDS if name in fields}

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        if self._client is not None:
            self._client.close()


# --- The attacks ------------------------------------------------------------------------------


@dataclass
class Attacker:
    """What happened to the attacker during one attack."""

    done: int = 0  # cycles completed (connections, floods, clients)
    errors: int = 0  # error replies
    cut: int = 0  # connections the gateway closed (reset, EOF, broken pipe)
    refused: int = 0  # connects that failed or timed out
    sent_bytes: int = 0
    first_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def error(self, text: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or text[:120]

    def summary(self) -> str:
        parts = [f"{self.done:,} done", f"{self.errors:,} errors", f"{self.cut:,} cut"]
        if self.refused:
            parts.append(f"{self.refused:,} refused")
        if self.sent_bytes:
            parts.append(f"sent {self.sent_bytes / MB:,.1f} MB")
        parts += [f"{k} {v}" for k, v in self.extra.items()]
        if self.first_error:
            parts.append(f"first error: {self.first_error}")
        return "; ".join(parts)


@dataclass
class Context:
    port: int
    token: str  # the attacker's key
    victim_token: str
    args: argparse.Namespace
    sampler: Sampler
    deadline: float = 0.0  # loop time

    def running(self) -> bool:
        return asyncio.get_running_loop().time() < self.deadline and not self.sampler.tripped

    async def until_deadline(self) -> None:
        """Wait out the attack's time (the sampler's safety cap ends it sooner)."""
        loop = asyncio.get_running_loop()
        while not self.sampler.tripped:
            remaining = self.deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(0.05, remaining))


_CUT = (ConnectionError, asyncio.IncompleteReadError, BrokenPipeError)


async def _connect(ctx: Context, who: Attacker) -> tuple[asyncio.StreamReader, Any] | None:
    try:
        async with asyncio.timeout(5):
            return await asyncio.open_connection(HOST, ctx.port)
    except (OSError, TimeoutError):
        who.refused += 1
        return None


async def _auth(reader: asyncio.StreamReader, writer: Any, token: str, who: Attacker) -> bool:
    """AUTH; False (counted) if refused, cut or silent for 5 s."""
    try:
        writer.write(encode("AUTH", token))
        async with asyncio.timeout(5):
            line = await reader.readline()
    except _CUT:
        who.cut += 1
        return False
    except TimeoutError:
        who.error("AUTH: no reply within 5 s")
        return False
    if not line:
        who.cut += 1
        return False
    if line != b"+OK\r\n":
        who.error(f"AUTH: {line.decode(errors='replace').strip()}")
        return False
    return True


async def _close(writer: Any) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1):
            await writer.wait_closed()


async def departed_blocked(ctx: Context, who: Attacker) -> None:
    left = ctx.args.departed

    async def worker() -> None:
        nonlocal left
        while ctx.running() and left > 0:
            left -= 1
            opened = await _connect(ctx, who)
            if opened is None:
                await asyncio.sleep(0.05)
                continue
            reader, writer = opened
            try:
                if await _auth(reader, writer, ctx.token, who):
                    writer.write(encode("BLPOP", "q", 0))
                    await writer.drain()
                    who.done += 1
            except _CUT:
                who.cut += 1
            finally:
                await _close(writer)

    await asyncio.gather(*(worker() for _ in range(ctx.args.concurrency)))
    await ctx.until_deadline()


async def reply_flood(ctx: Context, who: Attacker) -> None:
    with BlockingClient(HOST, ctx.port, ctx.token) as client:
        reply = client.call("SET", "big", b"x" * BIG_SIZE)
    if reply != b"+OK\r\n":
        who.error(f"SET big: {reply[:80]!r}")
    flood = encode("GET", "big") * ctx.args.gets
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        opened = await _connect(ctx, who)
        if opened is None:
            return
        reader, writer = opened
        try:
            if await _auth(reader, writer, ctx.token, who):
                writer.write(flood)
                who.sent_bytes += len(flood)
                who.done += 1
        except _CUT:
            who.cut += 1
        finally:
            await _close(writer)

    loop = asyncio.get_running_loop()
    period = 1 / ctx.args.flood_rate
    next_at = loop.time()
    while ctx.running():
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += period
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    if tasks:
        await asyncio.wait(tasks, timeout=5)


async def _send_until(ctx: Context, writer: Any, data: bytes, who: Attacker) -> bool:
    """Write `data` in chunks, honouring backpressure, until done or the attack ends.
    False if the gateway cut the connection."""
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        if not ctx.running():
            return True
        try:
            writer.write(view[start : start + CHUNK])
            while ctx.running():  # a paused gateway stalls drain(): look up at the clock
                try:
                    async with asyncio.timeout(0.2):
                        await writer.drain()
                    break
                except TimeoutError:
                    continue
        except _CUT:
            who.cut += 1
            return False
        who.sent_bytes += min(CHUNK, len(view) - start)
    return True


async def preauth_bytes(ctx: Context, who: Attacker) -> None:
    data = b"PING\r\n" * (PREAUTH_BYTES // 6)
    writers: list[Any] = []

    async def one() -> None:
        opened = await _connect(ctx, who)
        if opened is None:
            return
        writers.append(opened[1])
        if await _send_until(ctx, opened[1], data, who) and ctx.running():
            who.done += 1  # every byte accepted

    await asyncio.gather(*(one() for _ in range(ctx.args.preauth_conns)))
    await ctx.until_deadline()
    for writer in writers:
        writer.transport.abort()


async def preauth_conns(ctx: Context, who: Attacker) -> None:
    opened: list[tuple[asyncio.StreamReader, Any]] = []
    for start in range(0, ctx.args.flood_conns, 200):
        if not ctx.running():
            break
        batch = await asyncio.gather(
            *(_connect(ctx, who) for _ in range(start, min(start + 200, ctx.args.flood_conns)))
        )
        opened += [pair for pair in batch if pair is not None]
    who.done = len(opened)
    # A new victim client while they are all open: connect + AUTH + PING, timed.
    took: list[float] = []
    failures: list[str] = []
    for _ in range(5):
        began = time.perf_counter()
        try:
            await asyncio.to_thread(_victim_round_trip, ctx.port, ctx.victim_token)
            took.append((time.perf_counter() - began) * 1000)
        except (OSError, ConnectionError, RuntimeError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:100])
        await asyncio.sleep(0.1)
    new = f"{len(took)}/5 ok"
    if took:
        new += f", max {max(took):.1f} ms"
    if failures:
        new += f" ({failures[0]})"
    who.extra["new victim connect+AUTH+PING"] = new
    await ctx.until_deadline()
    for reader, writer in opened:
        if reader.at_eof() or writer.is_closing():
            who.cut += 1
        writer.transport.abort()


def _victim_round_trip(port: int, token: str) -> None:
    with BlockingClient(HOST, port, token, timeout=5.0) as client:
        reply = client.call("PING")
    if reply != b"+PONG\r\n":
        raise RuntimeError(f"PING: {reply[:80]!r}")


async def partial_bulk(ctx: Context, who: Attacker) -> None:
    head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % PARTIAL_SIZE
    data = head + b"x" * (PARTIAL_SIZE - 1)
    writers: list[Any] = []

    async def one() -> None:
        opened = await _connect(ctx, who)
        if opened is None:
            return
        reader, writer = opened
        writers.append(writer)
        if not await _auth(reader, writer, ctx.token, who):
            return
        if await _send_until(ctx, writer, data, who) and ctx.running():
            who.done += 1  # all but the last byte accepted

    await asyncio.gather(*(one() for _ in range(ctx.args.partial_clients)))
    await ctx.until_deadline()
    for writer in writers:
        writer.transport.abort()


AttackFn = Callable[[Context, Attacker], Awaitable[None]]
RUNNERS: dict[str, AttackFn] = {
    "departed-blocked": departed_blocked,
    "reply-flood": reply_flood,
    "preauth-bytes": preauth_bytes,
    "preauth-conns": preauth_conns,
    "partial-bulk": partial_bulk,
}


async def _run_attack(fn: AttackFn | None, ctx: Context, who: Attacker) -> float:
    """Run one attack for `--seconds` (None: the baseline, just wait); its duration."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    ctx.deadline = began + ctx.args.seconds
    if fn is None:
        await ctx.until_deadline()
    else:
        try:
            async with asyncio.timeout(ctx.args.seconds + 30):
                await fn(ctx, who)
        except TimeoutError:
            who.extra["stopped"] = "did not finish within --seconds + 30 s"
    return loop.time() - began


# --- The run ----------------------------------------------------------------------------------


def _mb(value: int | None) -> str:
    return "?" if value is None or value < 0 else f"{value / MB:,.1f} MB"


def notes_for(
    name: str, before: dict[str, int], high: dict[str, int], after: dict[str, int]
) -> str:
    """What each attack is about, from the gateway's and the attacker Redis's readings (the
    JSON report has all of them for every row); a maximum includes the value after."""
    high = {name: max(value, high.get(name, value)) for name, value in after.items()}
    fds = f"gw fds {before['fds']}→{after['fds']} (max {high.get('fds', '?')})"
    rss = f"gw RSS {_mb(before['rss'])}→{_mb(after['rss'])} (max {_mb(high.get('rss'))})"
    clients = (
        f"attacker Redis clients max {high.get('connected_clients', '?')} "
        f"(after {after['connected_clients']}), blocked max "
        f"{high.get('blocked_clients', '?')} (after {after['blocked_clients']})"
    )
    memory = (
        f"attacker Redis used_memory max {_mb(high.get('used_memory'))} (after "
        f"{_mb(after['used_memory'])}), mem_clients_normal max "
        f"{_mb(high.get('mem_clients_normal'))} (after {_mb(after['mem_clients_normal'])})"
    )
    chosen = {
        "departed-blocked": [fds, clients, rss],
        "reply-flood": [memory, rss, fds],
        "preauth-bytes": [rss, fds],
        "preauth-conns": [fds, rss],
        "partial-bulk": [rss, fds, memory],
    }.get(name, [fds, rss])
    return "; ".join(chosen)


@dataclass
class Stack:
    gateway: ManagedProcess
    gateway_pid: int
    attacker_redis: RedisServer
    victim: Victim


@contextlib.contextmanager
def fresh_stack(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[Context, Stack]]:
    """Two redis-servers, a keys file with a key for each, the gateway, the victim's pinger
    and the sampler, all new: an attack's leftovers (a backend's buffers, blocked clients,
    the gateway's heap) must not weigh on the next one's figures."""
    keys = workdir / "keys.toml"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        victim_redis = stack.enter_context(RedisServer(workdir / "victim"))
        attacker_redis = stack.enter_context(RedisServer(workdir / "attacker"))
        tokens = {}
        for name, redis in (("victim", victim_redis), ("attacker", attacker_redis)):
            set_instance(keys, name, Backend(HOST, redis.port, password=redis.password))
            tokens[name] = add_key(keys, name, name).token
        extra = tuple(args.gateway_flag)
        gateway, port = start_gateway(
            workdir, ["--keys-file", str(keys)], args.max_clients, "attacks", extra
        )
        stack.callback(gateway.stop)
        victim = Victim(port, tokens["victim"], args.interval_ms / 1000)
        stack.callback(victim.stop)
        sampler = Sampler(pid_of(gateway), attacker_redis, args.memory_cap_mb * MB)
        sampler.start()
        stack.callback(sampler.stop)
        ctx = Context(port, tokens["attacker"], tokens["victim"], args, sampler)
        yield ctx, Stack(gateway, pid_of(gateway), attacker_redis, victim)


def run_one(name: str, args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], str]:
    """One row: `name` (an attack, or the baseline) against a fresh stack; and a note if the
    gateway died."""
    with fresh_stack(args, workdir) as (ctx, stack):
        time.sleep(0.5)  # the victim connects and warms up
        before = snapshot(stack.gateway_pid, stack.attacker_redis)
        ctx.sampler.reset()
        who = Attacker()
        stack.victim.begin()
        took = asyncio.run(_run_attack(RUNNERS.get(name), ctx, who))
        figures = stack.victim.end()
        high = dict(ctx.sampler.highest)
        tripped = ctx.sampler.tripped
        time.sleep(args.settle)
        if not stack.gateway.running():
            note = f"the gateway exited during {name}; its log: {stack.gateway.log_tail(5)}"
            return {"attack": name, "victim": figures, "attacker_summary": who.summary()}, note
        after = snapshot(stack.gateway_pid, stack.attacker_redis)
    if tripped:
        who.extra["stopped early"] = f"after {took:.1f} s: {tripped}"
    row = {
        "attack": name,
        "seconds": round(took, 2),
        "victim": figures,
        "attacker": asdict(who),
        "attacker_summary": "-" if name == "baseline" else who.summary(),
        "before": before,
        "highest": high,
        "after": after,
        "notes": notes_for(name, before, high, after),
    }
    return row, ""


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seconds": args.seconds,
        "args": {k: str(v) for k, v in vars(args).items()},
        "rows": [],
        "notes": ["each row runs against a freshly started gateway and redis-servers"],
    }
    limit = raise_open_files_limit(args.flood_conns + 3000)  # the gateway inherits it
    if limit < args.flood_conns + 500:
        report["notes"].append(f"open-files limit {limit}: --flood-conns lowered to fit")
        args.flood_conns = max(1, limit - 500)
    for name in ["baseline", *args.only]:
        print(f"{name}: {args.seconds:g} s …", file=sys.stderr, flush=True)
        row, note = run_one(name, args, workdir / name)
        report["rows"].append(row)
        if note:
            report["notes"].append(note)
    return report


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"  # no PING answered at all


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Attacks ({report['started']}, {report['seconds']:g} s each)",
        "",
        "| attack | victim PING p50 ms | p99 ms | max ms | errors/PINGs | attacker | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        v = row["victim"]
        errors = f"{v['errors']}/{v['pings'] + v['errors']:,}"
        if v["first_error"]:
            errors += f": {v['first_error']}"
        lines.append(
            f"| {row['attack']} | {_ms(v['p50_ms'])} | {_ms(v['p99_ms'])} | {_ms(v['max_ms'])} | "
            f"{errors} | {row.get('attacker_summary', '-')} | {row.get('notes', '-')} |"
        )
    lines += ["", "Goal of issue 13: victim p99 ≤ 10 ms during every attack."]
    lines += [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="each attack's duration")
    parser.add_argument("--only", nargs="+", choices=ATTACKS, default=list(ATTACKS))
    parser.add_argument("--interval-ms", type=float, default=5.0, help="victim PING period")
    parser.add_argument("--settle", type=float, default=2.0, help="pause after each attack")
    parser.add_argument("--concurrency", type=int, default=20, help="departed-blocked workers")
    parser.add_argument("--departed", type=int, default=5000, help="most departed BLPOPs")
    parser.add_argument("--flood-rate", type=float, default=25.0, help="reply floods a second")
    parser.add_argument("--gets", type=int, default=5000, help="GET big per reply flood")
    parser.add_argument("--preauth-conns", type=int, default=10)
    parser.add_argument("--flood-conns", type=int, default=3000)
    parser.add_argument("--partial-clients", type=int, default=20)
    parser.add_argument("--max-clients", type=int, default=10_000, help="the gateway's")
    parser.add_argument(
        "--gateway-flag",
        action="append",
        default=[],
        help="extra `redisgate proxy` flag (repeat; write --gateway-flag=--name=value)",
    )
    parser.add_argument(
        "--memory-cap-mb",
        type=int,
        default=4096,
        help="end an attack early when the gateway's RSS or the attacker Redis's "
        "used_memory passes this",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    if args.seconds <= 0 or args.interval_ms <= 0 or args.flood_rate <= 0:
        parser.error("--seconds, --interval-ms and --flood-rate must be positive")
    return args


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _sigterm)  # clean up as on Ctrl-C
    workdir = Path(tempfile.mkdtemp(prefix="redisgate-attacks-"))
    try:
        report = run(args, workdir)
    except KeyboardInterrupt:
        print("interrupted: everything started was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_report(args.out, "attacks", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
