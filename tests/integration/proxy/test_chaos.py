"""Chaos, bounded to a few seconds: 200 clients pipelining, blocking and vanishing while the
backend is SIGKILLed and restarted several times. Every reply a client reads must be its own
(values name their writer) or an error; afterwards the gateway holds no client, descriptor or
memory it did not hold before."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import hiredis
import redis

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.wire.encode import encode_command
from tests.integration.proxy.test_hostile import open_fds, rss_mb, wait_for

CLIENTS = 200
SECONDS = 3.0
KILLS = 3


class Misrouted(AssertionError):
    pass


async def read_replies(
    reader: asyncio.StreamReader, parser: hiredis.Reader, count: int
) -> list[object]:
    replies: list[object] = []
    while len(replies) < count:
        reply = parser.gets()
        if reply is not False:
            replies.append(reply)
            continue
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            raise ConnectionResetError("closed by the gateway")
        parser.feed(data)
    return replies


async def one_client(
    me: int, port: int, token: str, deadline: float, stats: dict[str, int]
) -> None:
    rng = random.Random(me)
    round_ = 0
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["refused"] += 1
            continue
        parser = hiredis.Reader()
        try:
            writer.write(encode_command(["AUTH", token]))
            assert await read_replies(reader, parser, 1) == [b"OK"]
            while time.monotonic() < deadline:
                round_ += 1
                action = rng.random()
                keys = [f"chaos:{me}:{j}" for j in range(rng.randint(1, 16))]
                values = [f"{me}:{round_}:{j}".encode() for j in range(len(keys))]
                pipeline = b"".join(
                    encode_command(["SET", k, v]) for k, v in zip(keys, values, strict=True)
                ) + b"".join(encode_command(["GET", k]) for k in keys)
                if action < 0.1:  # vanish mid-pipeline
                    writer.write(pipeline[: rng.randint(1, len(pipeline))])
                    stats["vanished"] += 1
                    break
                if action < 0.2:  # vanish mid-BLPOP
                    writer.write(encode_command(["BLPOP", f"chaos:q:{me}", "0"]))
                    await asyncio.sleep(rng.random() * 0.05)
                    stats["left_blocked"] += 1
                    break
                writer.write(pipeline)
                replies = await read_replies(reader, parser, 2 * len(keys))
                for reply in replies[: len(keys)]:
                    if reply != b"OK" and not isinstance(reply, hiredis.ReplyError):
                        raise Misrouted(f"client {me}: SET answered {reply!r}")
                for value, reply in zip(values, replies[len(keys) :], strict=True):
                    if isinstance(reply, hiredis.ReplyError):
                        stats["errors"] += 1
                    elif reply is not None and reply != value:
                        # Only its own value, or none (the backend lost it), may come back.
                        if not (isinstance(reply, bytes) and reply.startswith(f"{me}:".encode())):
                            raise Misrouted(f"client {me}: GET answered {reply!r}")
                        if reply != value:
                            stats["stale"] += 1
                    else:
                        stats["ok"] += 1
        except (ConnectionError, TimeoutError, OSError):
            stats["dropped"] += 1
        finally:
            writer.transport.abort()


async def chaos(backend: RedisServer, restart: list[RedisServer]) -> None:
    for _ in range(KILLS):
        await asyncio.sleep(SECONDS / (KILLS + 1))
        server = restart[-1]
        pid = server.process.pid if server.process is not None else None
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.1)
        server.stop()  # reaps it
        again = RedisServer(backend.data_dir, port=backend.port, password=backend.password)
        # On this thread, not in `asyncio.to_thread`: the kernel's parent-death signal goes to
        # a child when the *thread* that started it ends, and the executor's threads end with
        # `asyncio.run` (docs: launcher/process.py), which stopped the last server mid-test.
        again.start()
        restart.append(again)


def test_chaos_every_reply_is_the_clients_own_and_nothing_leaks(tmp_path: Path) -> None:
    from tests.integration.proxy.conftest import run_gateway

    backend = RedisServer(tmp_path / "redis").start()
    servers = [backend]
    try:
        with run_gateway(backend, tmp_path, upstream_timeout_s=2) as gw:
            with gw.client() as warm:
                assert warm.ping()
            baseline_fds, baseline_rss = open_fds(), rss_mb()
            stats = dict.fromkeys(
                ("ok", "errors", "stale", "dropped", "refused", "vanished", "left_blocked"), 0
            )

            async def run() -> None:
                deadline = time.monotonic() + SECONDS
                token = gw.tokens["main"]
                await asyncio.gather(
                    chaos(backend, servers),
                    *(one_client(i, gw.port, token, deadline, stats) for i in range(CLIENTS)),
                )

            asyncio.run(run())
            assert stats["ok"] > 1000 and stats["vanished"] and stats["left_blocked"]
            assert stats["errors"]  # the kills were seen, as errors, never as others' replies
            wait_for(lambda: gw.call(lambda: len(gw.gateway.clients)) == 0, 10)
            wait_for(lambda: open_fds() <= baseline_fds + 12, 10, lambda: f"{open_fds()} fds")
            with redis.Redis(port=backend.port, password=backend.password) as direct:
                wait_for(lambda: int(direct.info("clients")["blocked_clients"]) == 0)
            assert gw.call(lambda: gw.gateway.request_bytes) == 0
            assert rss_mb() < baseline_rss + 48
    finally:
        for server in servers:
            server.stop()
