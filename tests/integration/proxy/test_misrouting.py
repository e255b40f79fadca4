"""Adversarial proof that a reply never reaches the wrong client.

Real redis-server, gateway (own uvloop thread), redis-py asyncio clients and raw sockets. Each
client uses keys and values carrying its own id and knows what each reply must be; a reply
with another client's id fails as MISROUTED. With many clients on one shared upstream:

1. 100 clients, 100,000 commands, pipeline depths 1/10/100/1000, raw clients writing in odd
   chunk sizes, values with CRLF and RESP-like bytes inside: each reply is exactly its own.
2. Clients vanishing mid-pipeline (reset, close, cancelled task): survivors get only their
   own replies; the gateway forgets the dead and serves a fresh client.
3. A slow reader owed megabytes: others progress while it is stalled; over the output cap it
   alone is dropped, having received only a prefix of its own replies.
4. Backend SIGKILLed and restarted under load: each reply is the client's own or a `BACKEND`
   error, and every client recovers through the same gateway.
5. WATCH/MULTI/EXEC and BLPOP in the crowd: transactions return what their client queued,
   blocked pops what was pushed for them.

The last tests pin down gateway bugs found while writing these (see their docstrings).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hiredis
import pytest
import redis
import redis.asyncio as aredis

from redisgate.launcher.redis import RedisServer
from tests.integration.proxy.conftest import RunningGateway, run_gateway

T = TypeVar("T")
Args = tuple[bytes | int, ...]
Batch = list[tuple[Args, object]]  # each command with the exact reply it must get
Plan = Callable[[int], tuple[int, int]]  # client id -> (pipeline depth, minimum rounds)
_CHUNKS = (1, 2, 3, 5, 7, 11, 13, 64, 1021, 4099)  # raw clients write in these sizes
_OWNER = re.compile(r"c(\d+):s\d")  # what every value a client writes starts with
_MB = 1 << 20


def resp(*args: bytes | str | int) -> bytes:
    """RESP2 encoding written here, independent of the gateway's own encoder."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def tag(cid: int, seq: int) -> bytes:
    """A value only client `cid` writes; some carry CRLF and RESP-like bytes inside."""
    return b"c%d:s%d" % (cid, seq) + (b"\r\n$3\r\n*1\r\n:7\r\n" if seq % 5 == 0 else b"")


def check(cid: int, args: object, got: object, want: object = None, exact: bool = True) -> None:
    """`got` must be `want` (or, not `exact`, merely hold no other client's data)."""
    if others := {int(m) for m in _OWNER.findall(repr(got))} - {cid}:
        owners = f"client(s) {sorted(others)}"
        raise AssertionError(f"MISROUTED: client {cid} got data of {owners}: {got!r:.300}")
    assert not exact or got == want, f"client {cid}: {args!r:.200} got {got!r:.300}, not {want!r}"


class Workload:
    """Random commands on one client's own keys, each with the reply it must get."""

    def __init__(self, cid: int) -> None:
        self.cid, self.rng, self.seq = cid, random.Random(cid), 0
        self.strings: dict[bytes, bytes] = {}
        self.counters: dict[bytes, int] = {}
        self.lists: dict[bytes, list[bytes]] = {}
        self.hashes: dict[bytes, dict[bytes, bytes]] = {}

    def batch(self, n: int) -> Batch:
        return [self.next() for _ in range(n)]

    def next(self) -> tuple[Args, object]:
        self.seq += 1
        rng, value, op = self.rng, tag(self.cid, self.seq), self.rng.randrange(9)
        kind = (b"str", b"str", b"ctr", b"list", b"list", b"hash", b"hash", b"str", b"")[op]
        k = b"c%d:%s:%d" % (self.cid, kind, rng.randrange(4))
        strings, items, fields = self.strings, self.lists.setdefault(k, []), {}
        if op in (5, 6):
            fields, field = self.hashes.setdefault(k, {}), b"f%d" % rng.randrange(3)
        if op == 0:
            strings[k] = value
            return (b"SET", k, value), b"OK"
        if op == 1:
            return (b"GET", k), strings.get(k)
        if op == 2:
            self.counters[k] = self.counters.get(k, 0) + 1
            return (b"INCR", k), self.counters[k]
        if op == 3:
            items.append(value)
            return (b"RPUSH", k, value), len(items)
        if op == 4:
            return (b"LRANGE", k, 0, -1), list(items)  # a copy: later RPUSHes grow `items`
        if op == 5:
            new, fields[field] = field not in fields, value
            return (b"HSET", k, field, value), int(new)
        if op == 6:
            return (b"HGET", k, field), fields.get(field)
        if op == 7:
            strings[k] = strings.get(k, b"") + value
            return (b"APPEND", k, value), len(strings[k])
        keys = [b"c%d:str:%d" % (self.cid, i) for i in rng.sample(range(4), rng.randint(1, 4))]
        return (b"MGET", *keys), [strings.get(key) for key in keys]


class RawClient:
    """A hand-written RESP2 client: pipelines written in odd chunk sizes, replies via hiredis."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.parser = reader, writer, hiredis.Reader()

    @classmethod
    async def connect(cls, gw: RunningGateway, rcvbuf: int = 0, hello: bytes = b"") -> RawClient:
        """Connected and authenticated (with `hello`, e.g. HELLO 3 AUTH …, if given)."""
        sock = socket.socket()
        try:
            if rcvbuf:  # set before connecting: the kernel then holds little for a slow reader
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", gw.port))
            client = cls(*await asyncio.open_connection(sock=sock))
        except BaseException:
            sock.close()
            raise
        client.writer.write((hello or resp("AUTH", gw.tokens["main"])) + resp("PING"))
        greeting = await client.reader.readuntil(b"+PONG\r\n")
        assert hello or greeting == b"+OK\r\n+PONG\r\n", greeting
        return client

    async def send(self, payload: bytes, start: int = 0) -> None:
        pos = 0
        for size in itertools.islice(itertools.cycle(_CHUNKS), start % len(_CHUNKS), None):
            if pos >= len(payload):
                break
            self.writer.write(payload[pos : pos + size])
            pos += size
            await self.writer.drain()
            if size < 64:
                await asyncio.sleep(0)  # let other clients' bytes in between ours

    async def read(self, count: int) -> list[object]:
        out: list[object] = []
        while len(out) < count:
            if (reply := self.parser.gets()) is not False:
                out.append(reply)
            elif data := await self.reader.read(1 << 16):
                self.parser.feed(data)
            else:
                raise ConnectionError(f"closed after {len(out)} of {count} replies")
        return out

    async def read_bytes(self, n: int, within_s: float) -> bytes:
        """Up to `n` bytes, fewer if the gateway stops sending (a bound, not a timed assert)."""
        data = bytearray()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(within_s):
                while len(data) < n and (chunk := await self.reader.read(n - len(data))):
                    data += chunk
        return bytes(data)

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def aclient(gw: RunningGateway, instance: str = "main", protocol: int = 2) -> aredis.Redis:
    return aredis.Redis.from_url(gw.url(instance), protocol=protocol)


async def run_batch(client: aredis.Redis | RawClient, batch: Batch, start: int = 0) -> list[Any]:
    """Send `batch` as one pipeline (one round trip if a single command); errors as values."""
    commands = [args for args, _ in batch]
    if isinstance(client, RawClient):
        await client.send(b"".join(resp(*args) for args in commands), start)
        got = await client.read(len(commands))
    elif len(commands) == 1:
        try:
            got = [await client.execute_command(*commands[0])]
        except redis.ResponseError as exc:
            got = [exc]
    else:
        async with client.pipeline(transaction=False) as pipe:
            for args in commands:
                pipe.execute_command(*args)
            got = await pipe.execute(raise_on_error=False)
    return list(zip(commands, got, [want for _, want in batch], strict=True))


async def all_of(*coros: Coroutine[Any, Any, T]) -> list[T]:
    """Run concurrently, bounded; the first failure cancels the rest (none outlives the test)."""
    async with asyncio.timeout(60), asyncio.TaskGroup() as group:
        tasks = [group.create_task(coro) for coro in coros]
    return [task.result() for task in tasks]


async def on_gateway(gw: RunningGateway, fn: Callable[[], T]) -> T:
    """Run `fn` on the gateway's loop (its state is not thread-safe) without blocking ours."""

    async def run() -> T:
        return fn()

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), gw.loop))


async def eventually(what: str, probe: Callable[[], Coroutine[Any, Any, bool]]) -> None:
    """Poll until true; the bound only keeps a broken gateway from hanging the suite."""
    try:
        async with asyncio.timeout(20):
            while True:
                if await probe():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


async def gateway_has(gw: RunningGateway, clients: int) -> bool:
    return await on_gateway(gw, lambda: len(gw.gateway.clients) == clients)


@dataclass
class Tally:
    rounds: int = 0  # clean rounds: every reply checked exactly
    errors: int = 0  # rounds with BACKEND errors (only while the backend is down)
    commands: int = 0


def fault_round(cid: int, n: int) -> Batch:
    """Fresh keys each round: a restart losing every key cannot change what is right."""
    t, k, ctr = tag(cid, n), b"c%d:r%d" % (cid, n), b"c%d:r%d:n" % (cid, n)
    commands = [(b"ECHO", t), (b"SET", k, t), (b"GET", k), (b"INCR", ctr), (b"INCR", ctr)]
    wants = [t, b"OK", t, 1, 2, 2 * len(t), [t + t, None], t + b"!"]
    commands += [(b"APPEND", k, t), (b"MGET", k, k + b":x"), (b"ECHO", t + b"!")]
    return list(zip(commands, wants, strict=True))


def plain(cid: int) -> tuple[int, int]:
    return 20, 3  # pipelines of 20 commands, at least 3 of them


class Crowd:
    """Clients 0..n-1 sending verified pipelines until the `async with` block ends (and their
    `plan(cid)`: depth, minimum rounds). A fifth are raw sockets, a tenth redis-py on RESP3.
    """

    def __init__(
        self, gw: RunningGateway, n: int, faults: bool = False, plan: Plan = plain
    ) -> None:
        self.gw, self.faults, self.plan = gw, faults, plan
        self.stop, self.tallies = asyncio.Event(), [Tally() for _ in range(n)]
        self.tasks = [asyncio.create_task(self.chatter(c, t)) for c, t in enumerate(self.tallies)]

    async def chatter(self, cid: int, tally: Tally) -> None:
        (depth, rounds), work, raw = self.plan(cid), Workload(cid), cid % 5 == 0
        p = 3 if cid % 10 == 1 else 2
        client = await RawClient.connect(self.gw) if raw else aclient(self.gw, protocol=p)
        try:
            while not (self.stop.is_set() and tally.rounds >= rounds):
                n = tally.rounds + tally.errors
                batch = fault_round(cid, n) if self.faults else work.batch(depth)
                results = await run_batch(client, batch, start=cid + n)
                errors = [got for _, got, _ in results if isinstance(got, Exception)]
                for args, got, want in results:
                    if not (self.faults and errors):
                        check(cid, args, got, want)
                    elif isinstance(got, Exception):
                        assert str(got).startswith("BACKEND"), f"client {cid}: {got!r}"
                    else:  # an outage round: its keys may be gone, but the data is its own
                        check(cid, args, got, exact=False)
                tally.rounds += not errors
                tally.errors += bool(errors)
                tally.commands += len(results)
        finally:
            await client.aclose()

    async def reach(self, what: str, field: str, floors: Sequence[int]) -> None:
        async def probe() -> bool:
            for task in self.tasks:
                if task.done():
                    await task  # a client that failed fails the test now
            pairs = zip(self.tallies, floors, strict=True)
            return all(getattr(tally, field) >= floor for tally, floor in pairs)

        await eventually(what, probe)

    async def __aenter__(self) -> Crowd:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop.set()
        done, hung = await asyncio.wait(self.tasks, timeout=30)
        for task in hung:
            task.cancel()
        await asyncio.gather(*hung, return_exceptions=True)
        for task in done:
            task.result()
        assert not hung, f"{len(hung)} clients hung"


# --- 1. A crowd of clients --------------------------------------------------------------------


def mixed(cid: int) -> tuple[int, int]:  # 25 clients each: 100,000 commands in all
    return ((1, 200), (10, 80), (100, 10), (1000, 2))[cid % 4]


@pytest.mark.slow
async def test_crowd_of_100_clients(redis_server: RedisServer, tmp_path: Path) -> None:
    with run_gateway(redis_server, tmp_path) as gw:
        async with Crowd(gw, 100, plan=mixed) as crowd:
            pass  # each client runs its rounds at its pipeline depth, every reply checked
        assert sum(tally.commands for tally in crowd.tallies) == 100_000
        direct = gw.direct()  # and the effects happened exactly once, on the right keys
        try:
            for cid in range(0, 100, 7):
                (model := Workload(cid)).batch(mixed(cid)[0] * mixed(cid)[1])
                for key, value in model.counters.items():
                    assert direct.get(key) == b"%d" % value, (cid, key)
        finally:
            direct.close()
        await eventually("every client is forgotten", lambda: gateway_has(gw, 0))


# --- 2. Clients vanishing mid-pipeline --------------------------------------------------------


async def vanish(gw: RunningGateway, cid: int) -> None:
    """Start a deep pipeline of 2 KB replies, then disappear before reading them."""
    key, value = b"c%d:big" % cid, tag(cid, 0) + b"." * 2048
    commands: list[Args] = [(b"SET", key, value), *[(b"GET", key)] * 1500]
    if cid % 4 == 3:  # a redis-py task cancelled while its pipeline is in flight
        client = aclient(gw)
        try:
            pipe = client.pipeline(transaction=False)
            for args in commands:
                pipe.execute_command(*args)
            task = asyncio.create_task(pipe.execute())
            for _ in range(cid % 7 + 1):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await pipe.reset()
        finally:
            await client.aclose()
        return
    raw = await RawClient.connect(gw)
    try:
        await raw.send(b"".join(resp(*args) for args in commands), start=cid)
        if read := cid % 4:  # 1 or 2 replies read: the gateway is surely mid-pipeline
            assert await raw.read(read) == [b"OK", value][:read]
        if read == 1:
            raw.writer.transport.abort()  # RST rather than FIN
    finally:
        await raw.aclose()


@pytest.mark.slow
async def test_clients_vanishing_mid_pipeline(redis_server: RedisServer, tmp_path: Path) -> None:
    with run_gateway(redis_server, tmp_path) as gw:
        async with Crowd(gw, 12) as crowd:
            for wave in range(4):
                await all_of(*(vanish(gw, 100 + 10 * wave + i) for i in range(10)))
            await crowd.reach("survivors keep going", "rounds", [3] * 12)
        await eventually("every closed client is forgotten", lambda: gateway_has(gw, 0))
        fresh = aclient(gw)
        try:
            assert await fresh.set("fresh", "ok") and await fresh.get("fresh") == b"ok"
        finally:
            await fresh.aclose()


# --- 3. A slow reader -------------------------------------------------------------------------


async def slow_reader(gw: RunningGateway, gets: int) -> tuple[RawClient, bytes]:
    """A raw client with a tiny receive buffer that asks for `gets` 1 MB replies, unread."""
    value = tag(50, 0) + b"#" * _MB
    setter = aclient(gw)
    try:
        await setter.set(b"c50:big", value)
    finally:
        await setter.aclose()
    raw = await RawClient.connect(gw, rcvbuf=4096)
    await raw.send(resp("GET", b"c50:big") * gets)
    return raw, b"$%d\r\n%s\r\n" % (len(value), value)


async def test_slow_reader_holds_up_nobody(redis_server: RedisServer, tmp_path: Path) -> None:
    def owed() -> int:  # on the gateway's loop: the most bytes waiting for one client
        return max(c.transport.get_write_buffer_size() for c in gw.gateway.clients if c.transport)

    async def stalled() -> bool:
        return await on_gateway(gw, owed) >= 16 * _MB

    with run_gateway(redis_server, tmp_path) as gw:
        raw, reply = await slow_reader(gw, gets=24)
        try:
            await eventually("16 MB owed to the slow reader", stalled)
            async with Crowd(gw, 10, plan=lambda cid: (20, 20)) as crowd:
                pass  # leaving the block waits for 20 verified rounds of 20 from each client
            assert all(tally.rounds >= 20 for tally in crowd.tallies)
            assert await stalled(), "the slow reader was stalled all along"
            assert await raw.read_bytes(24 * len(reply), 30) == reply * 24
        finally:
            await raw.aclose()


async def test_slow_reader_over_cap_dropped(redis_server: RedisServer, tmp_path: Path) -> None:
    with run_gateway(redis_server, tmp_path, max_client_output_bytes=_MB) as gw:
        async with Crowd(gw, 10) as crowd:
            await crowd.reach("the crowd runs", "rounds", [1] * 10)
            raw, reply = await slow_reader(gw, gets=32)
            try:
                await eventually("the slow reader is dropped", lambda: gateway_has(gw, 10))
                got = await raw.read_bytes(32 * len(reply), 10)
                assert len(got) < 32 * len(reply), "the slow reader was not cut off"
                assert (reply * 32).startswith(got), "the slow reader got bytes not its own"
            finally:
                await raw.aclose()
            floors = [tally.rounds + 3 for tally in crowd.tallies]
            await crowd.reach("the others carry on", "rounds", floors)


# --- 4. Backend killed and restarted under load ----------------------------------------------


@pytest.mark.slow
async def test_backend_killed_and_restarted(tmp_path: Path) -> None:
    backend, restarted = RedisServer(tmp_path / "redis").start(), None
    try:
        with run_gateway(backend, tmp_path) as gw:
            async with Crowd(gw, 20, faults=True) as crowd:
                await crowd.reach("traffic flows", "rounds", [3] * 20)
                assert backend.process is not None and backend.process.proc is not None
                backend.process.proc.kill()  # SIGKILL with requests in flight
                backend.stop()
                await crowd.reach("every client sees the outage", "errors", [3] * 20)
                restarted = RedisServer(
                    tmp_path / "redis2", port=backend.port, password=backend.password
                ).start()
                floors = [tally.rounds + 5 for tally in crowd.tallies]
                await crowd.reach("every client recovers", "rounds", floors)
    finally:
        backend.stop()
        if restarted is not None:
            restarted.stop()


# --- 5. Transactions and blocking pops in the crowd ------------------------------------------


async def transactor(gw: RunningGateway, cid: int, rounds: int) -> None:
    """WATCH/MULTI/EXEC through redis-py; raw MULTI…EXEC or DISCARD pipelined with GETs."""
    client, raw = aclient(gw), await RawClient.connect(gw)
    ctr, key, items = b"c%d:ctr" % cid, b"c%d:str" % cid, b"c%d:list" % cid
    try:
        for n in range(1, rounds + 1):
            value = tag(cid, n)
            async with client.pipeline(transaction=True) as pipe:
                if n % 2:
                    await pipe.watch(ctr)
                    assert await pipe.get(ctr) == (b"%d" % (n - 1) if n > 1 else None)
                    pipe.multi()
                pipe.set(key, value).incr(ctr).rpush(items, value).get(key).lrange(items, -2, -1)
                got = await pipe.execute()
            check(cid, "EXEC", got, [True, n, n, value, [tag(cid, n - 1), value][-min(n, 2) :]])
            ends, final = ((b"EXEC",), value + b"!") if n % 3 else ((b"DISCARD",), value)
            queued = [(b"MULTI",), (b"SET", key, value + b"!"), (b"GET", key), ends, (b"GET", key)]
            got = [reply for _, reply, _ in await run_batch(raw, [(c, 0) for c in queued])]
            ended = [b"OK", final] if n % 3 else b"OK"
            check(cid, "raw MULTI", got, [b"OK", b"QUEUED", b"QUEUED", ended, final])
    finally:
        await client.aclose()
        await raw.aclose()


async def blocking_pair(gw: RunningGateway, cid: int, items: int) -> None:
    """A consumer blocked in BLPOP, released by a producer's RPUSH, item after item."""
    consumer, producer, queue = aclient(gw), aclient(gw), b"c%d:q" % cid
    try:
        for n in range(items):
            pop = asyncio.ensure_future(consumer.blpop([queue], timeout=10))
            for _ in range(n % 4):
                await asyncio.sleep(0)  # sometimes pushed first, mostly pushed while blocked
            assert await producer.rpush(queue, tag(cid, n)) == 1
            check(cid, "BLPOP", list(await pop or []), [queue, tag(cid, n)])
    finally:
        await consumer.aclose()
        await producer.aclose()


async def test_transactions_and_blocking_pops(redis_server: RedisServer, tmp_path: Path) -> None:
    with run_gateway(redis_server, tmp_path) as gw:
        async with Crowd(gw, 16):
            await all_of(
                *(transactor(gw, 100 + i, rounds=12) for i in range(8)),
                *(blocking_pair(gw, 200 + i, items=12) for i in range(6)),
            )
        pools = await on_gateway(gw, lambda: repr(list(gw.gateway.pools)))
        assert "0 dedicated" in pools, pools  # every lent connection came back


# --- Regressions for bugs found while writing these (docstrings: where, and what went wrong) ---


async def test_tracking_redirect_cannot_desync(redis_server: RedisServer, tmp_path: Path) -> None:
    """Out-of-band frames aimed at a shared upstream connection must not shift its replies.

    Found in 2256b6e: `CLIENT TRACKING ON REDIRECT <id>` was forwarded untranslated, so any
    client (here one of another instance) could aim invalidation pushes at a shared RESP3
    upstream, and upstream.py dropped a push only when its FIFO was empty: otherwise the push
    completed the head request, and each later reply went to the request after its own.
    """
    with run_gateway(redis_server, tmp_path, instances=("main", "beta")) as gw:
        hello = resp("HELLO", 3, "AUTH", "default", gw.tokens["main"])
        victims = [await RawClient.connect(gw, hello=hello) for _ in range(2)]
        attacker = aclient(gw, "beta")
        direct = redis.Redis(port=redis_server.port, password=redis_server.password)
        try:
            secrets = [b"c0:s1-secret", b"c1:s1-secret"]
            for victim, secret in zip(victims, secrets, strict=True):
                victim.writer.write(resp("SET", secret, secret))
                assert await victim.read_bytes(5, 5) == b"+OK\r\n"
            upstreams = direct.client_list()  # the gateway's shared RESP3 upstream for "main":
            shared = [
                c["id"]
                for c in upstreams
                if (c["name"], c["resp"]) == ("redisgate", "3") and c["db"] == str(gw.dbs["main"])
            ]
            with contextlib.suppress(redis.ResponseError):  # refusing REDIRECT is a fine fix
                await attacker.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", shared[0])
                await attacker.get("k")  # now tracked, by key name in every db
            # Another client of the same server (not the gateway's) can aim pushes there too.
            direct.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", shared[0])
            direct.get("k")
            victims[0].writer.write(resp("SET", "k", "x") + resp("GET", secrets[0]))
            victims[1].writer.write(resp("GET", secrets[1]))  # likely in the same upstream batch
            bulks = [b"$%d\r\n%s\r\n" % (len(s), s) for s in secrets]
            want = [b"+OK\r\n" + bulks[0], bulks[1]]
            got = [await v.read_bytes(len(w), 5) for v, w in zip(victims, want, strict=True)]
            for cid in (1, 0):
                check(cid, "GET", got[cid], want[cid])
        finally:
            for victim in victims:
                await victim.aclose()
            await attacker.aclose()
            direct.close()


async def test_failed_exec_leaves_no_watch(redis_server: RedisServer, tmp_path: Path) -> None:
    """A dedicated connection is lent to the next client only once Redis holds no state on it.

    Found in 2256b6e: pinning.py `DedicatedTracker._on_reply` cleared `watching` on any
    EXEC/DISCARD reply, even `EXEC without MULTI`, after which Redis keeps the WATCH: the
    connection went back to the idle pool still watching, aborting the next client's EXEC.
    """
    with run_gateway(redis_server, tmp_path) as gw:
        first, second = aclient(gw), aclient(gw)
        try:
            await first.execute_command("WATCH", "c1:k")
            with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
                await first.execute_command("EXEC")
            await first.set("c1:k", "changed")  # touches what the stale WATCH watches
            async with second.pipeline(transaction=True) as pipe:
                assert await pipe.set("c2:k", "mine").execute() == [True]
        finally:
            await first.aclose()
            await second.aclose()


async def test_long_array_reply_never_stalls(redis_server: RedisServer, tmp_path: Path) -> None:
    """A reply is delivered as soon as its last byte arrives, whatever comes next.

    Found in the pre-merge resp_reply.py: an array of >= 8 short bulks cut by a TCP read
    (`_RUN_CUT`) waited for its tail to double (`_need = 2 * (n - p)`); when the rest was
    shorter, the reply waited for unrelated traffic or for the watchdog's -BACKEND failure.
    """
    with run_gateway(redis_server, tmp_path, upstream_timeout_s=1) as gw:
        client = aclient(gw)
        try:
            items = [b"c7:s%d" % n for n in range(20_000)]  # short bulks, no CRLF inside
            for i in range(0, len(items), 5000):
                await client.rpush("c7:list", *items[i : i + 5000])
            assert await client.lrange("c7:list", 0, -1) == items
        finally:
            await client.aclose()


async def test_reset_leaves_nothing_behind(redis_server: RedisServer, tmp_path: Path) -> None:
    """RESET gives a clean connection: nothing of the old session reaches anyone afterwards.

    Bug in the working tree's client.py `_reset()`: it sets `self.pool = None` before
    `DedicatedLink.release()`, which needs the pool, so the old dedicated connection is never
    released: it stays subscribed and still owned by this client. A message on it completes the
    new session's BLPOP slot, the tracker thinks the BLPOP connection clean and lends it out while
    still blocked, and the next client there gets this BLPOP's item as its MULTI reply. (The
    leaked transport's ResourceWarning, made an error, hangs uvloop's loop.close() at teardown.)
    """
    with run_gateway(redis_server, tmp_path) as gw:
        victim, other, helper = await RawClient.connect(gw), None, aclient(gw)
        direct = gw.direct()
        try:
            victim.writer.write(resp("SUBSCRIBE", "c0:chan"))
            assert await victim.read(1) == [[b"subscribe", b"c0:chan", 1]]
            victim.writer.write(resp("RESET") + resp("AUTH", gw.tokens["main"]))
            victim.writer.write(resp("BLPOP", "c0:q", 10))
            assert await victim.read(2) == [b"RESET", b"OK"]

            async def blocked(queued: bool = False) -> bool:  # BLPOP blocked (with input behind)
                clients = await asyncio.to_thread(direct.client_list)
                return any(c["cmd"] == "blpop" and int(c["qbuf"]) >= queued for c in clients)

            await eventually("the BLPOP blocks", blocked)
            await helper.publish("c0:chan", tag(1, 1))  # to the old session, if it survived
            other = await RawClient.connect(gw)
            other.writer.write(resp("MULTI") + resp("SET", "c2:k", tag(2, 1)) + resp("EXEC"))

            async def settled() -> bool:  # the transaction ran, or sits behind someone's BLPOP
                return bool(await helper.exists("c2:k")) or await blocked(queued=True)

            await eventually("the transaction is done or queued", settled)
            await helper.rpush("c0:q", tag(0, 2))
            check(2, "MULTI", await other.read(3), [b"OK", b"QUEUED", [b"OK"]])
            check(0, "BLPOP", await victim.read(1), [[b"c0:q", tag(0, 2)]])
        finally:
            await victim.aclose()
            if other is not None:
                await other.aclose()
            await helper.aclose()
            direct.close()
