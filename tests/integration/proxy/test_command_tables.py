"""The gateway asks each backend for its command table, and shares one table between backends
that describe their commands identically (one per Redis version, not one per instance)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redisgate.backends import Backend
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.keys.principals import Instance
from tests.integration.proxy.conftest import RunningGateway


def instance_on(server: RedisServer, name: str) -> Instance:
    backend = Backend(host="127.0.0.1", port=server.port, password=server.password)
    return Instance(id=name, name=name, backend=backend)


def test_backends_of_one_version_share_a_table(
    gw: RunningGateway, redis_server: RedisServer, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "second") as second:

        async def tables() -> list[object]:
            gateway = gw.gateway
            found = []
            for server, name in ((redis_server, "a"), (second, "b")):
                pool = gateway.pools.get(instance_on(server, name))
                found.append(await gateway.tables.get(pool))
            return found

        first, other = asyncio.run_coroutine_threadsafe(tables(), gw.loop).result(10)
        assert first is other  # fetched from both servers, built once
        assert first is not gw.gateway.table  # the backends' own, not the shipped one
        assert len(gw.gateway.tables.by_server) >= 2
