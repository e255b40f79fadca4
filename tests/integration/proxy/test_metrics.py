"""The gateway's metrics, scraped over HTTP from its /metrics endpoint after real traffic."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from redisgate import metrics
from redisgate.backends import Backend
from redisgate.launcher.process import free_port
from redisgate.launcher.redis import RedisServer
from redisgate.metrics.endpoint import MetricsEndpoint
from redisgate.proxy.backend.pool import InstancePool
from redisgate.proxy.backend.upstream import PendingRequest
from redisgate.proxy.clients.connection import ClientConnection
from redisgate.proxy.keys.principals import Instance
from tests.integration.proxy.conftest import RunningGateway, run_gateway

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclasses.dataclass
class Scraper:
    url: str

    def __call__(self) -> Samples:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            text = response.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def commands(found: Samples, name: str, outcome: str) -> float:
    return found.get(("redisgate_commands_total", (("command", name), ("outcome", outcome))), 0)


@pytest.fixture
def running(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[RunningGateway, Scraper]]:
    with run_gateway(redis_server, tmp_path, scopes={"reader": "+@read ~*"}, metrics_port=0) as gw:
        start = MetricsEndpoint.start(gw.gateway.settings)
        endpoint = asyncio.run_coroutine_threadsafe(start, gw.loop).result(10)
        assert endpoint is not None
        try:
            yield gw, Scraper(endpoint.url)
        finally:
            asyncio.run_coroutine_threadsafe(endpoint.close(), gw.loop).result(10)


def test_commands_connections_bytes_and_latency(
    running: tuple[RunningGateway, Scraper],
) -> None:
    gw, scrape = running
    before = scrape()
    with gw.client() as r:
        for i in range(7):
            r.set(f"k{i}", "v")
        pipe = r.pipeline(transaction=False)
        for i in range(5):
            pipe.set(f"p{i}", "v")
        pipe.lpush("k0", "x")  # WRONGTYPE: an error reply inside a pipelined run
        pipe.execute(raise_on_error=False)
        after = scrape()
        clients = [c for c in list(gw.gateway.clients) if c.pool is not None]
        instance = _instance_of(clients[0])
    assert commands(after, "set", "ok") - commands(before, "set", "ok") == 12
    assert commands(after, "lpush", "error") - commands(before, "lpush", "error") == 1
    assert after[("redisgate_client_connections", (("instance", instance),))] == 1
    shared = ("redisgate_backend_connections", (("instance", instance), ("kind", "shared")))
    assert after[shared] >= 1
    for direction in ("in", "out"):
        key = ("redisgate_client_bytes_total", (("direction", direction),))
        assert after[key] > before.get(key, 0)
    count = ("redisgate_command_latency_seconds_count", (("part", "backend"),))
    assert after[count] - before.get(count, 0) >= 8  # 7 single commands and 1 run (at least)


def test_healthz_answers_next_to_metrics(running: tuple[RunningGateway, Scraper]) -> None:
    """The probe container health checks and Kubernetes use (deploy/): same port, JSON."""
    _gw, scrape = running
    url = scrape.url.removesuffix("/metrics") + "/healthz"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}


def test_auth_failures_and_denials(running: tuple[RunningGateway, Scraper]) -> None:
    gw, scrape = running
    before = scrape()
    token = gw.tokens["main"]
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"AUTH %s\r\n" % wrong.encode())
        assert sock.recv(1024).startswith(b"-WRONGPASS")
    with (
        gw.scoped_client("reader") as r,
        pytest.raises(redis.ResponseError, match="no permissions"),
    ):
        r.set("k", "v")
    after = scrape()

    def moved(name: str, labels: tuple[tuple[str, str], ...]) -> float:
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert moved("redisgate_auth_failures_total", (("reason", "wrong_secret"),)) == 1
    assert moved("redisgate_commands_denied_total", (("reason", "command"),)) == 1
    assert commands(after, "set", "denied") - commands(before, "set", "denied") == 1
    assert moved("redisgate_key_cache_lookups_total", (("result", "miss"),)) >= 1


def _instance_of(client: ClientConnection) -> str:
    assert client.pool is not None
    return client.pool.instance.id


async def test_commands_to_an_unreachable_backend_count_as_failed() -> None:
    replies: list[bytes | None] = []

    class Owner:
        def reply_ready(self, request: PendingRequest) -> None:
            replies.append(request.reply)

    before = dict(metrics.COMMANDS["failed"])
    backend = Backend(host="127.0.0.1", port=free_port())  # nothing listens there
    pool = InstancePool(Instance("dead", "dead", backend), connect_timeout_s=5)
    try:
        pool.send(PendingRequest(Owner(), names=[b"GET", b"GET"], count=2), b"", 2)
        for _ in range(500):  # a bounded wait for the refused connection, not a timing assert
            if replies:
                break
            await asyncio.sleep(0.01)
    finally:
        pool.close()
    assert replies and replies[0] is not None and replies[0].startswith(b"-BACKEND")
    assert metrics.COMMANDS["failed"].get(b"GET", 0) - before.get(b"GET", 0) == 2
