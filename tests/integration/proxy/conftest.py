"""A real gateway in front of the session's real redis-server, for redis-py and redis-cli.

`run_gateway()` starts a `Gateway` on a free port in a thread of its own (with its own uvloop
event loop, as in production), so tests can use blocking clients (redis-py sync, redis-cli) as
well as asyncio ones. The keys file holds one or more instances, each a db of the test Redis
(flushed first), and a key for each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import threading
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
import uvloop

from redisgate.api_key_format import key_id_of
from redisgate.backends import Backend
from redisgate.config.load import load_settings
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.clients.gateway import Gateway
from redisgate.proxy.keys.static import StaticSource, add_key, set_instance, set_limits

T = TypeVar("T")
_dbs = itertools.count()


@dataclass
class RunningGateway:
    gateway: Gateway
    loop: asyncio.AbstractEventLoop
    keys_file: Path
    backend: RedisServer
    tokens: dict[str, str] = field(default_factory=dict)  # instance -> token
    dbs: dict[str, int] = field(default_factory=dict)  # instance -> backend db
    scoped: dict[str, str] = field(default_factory=dict)  # label -> token of a scoped key

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def http_url(self) -> str:
        """The HTTP command API's base URL."""
        return f"http://127.0.0.1:{self.gateway.http_port}"

    def url(self, instance: str = "main") -> str:
        return f"redis://default:{self.tokens[instance]}@127.0.0.1:{self.port}/0"

    def client(self, instance: str = "main", **kwargs: Any) -> redis.Redis:
        return redis.Redis.from_url(self.url(instance), **kwargs)

    def scoped_client(self, label: str, **kwargs: Any) -> redis.Redis:
        """A client with the scoped key `label` (of its instance, see `run_gateway`)."""
        url = f"redis://default:{self.scoped[label]}@127.0.0.1:{self.port}/0"
        return redis.Redis.from_url(url, **kwargs)

    def direct(self, instance: str = "main") -> redis.Redis:
        """A client straight to the backend db of `instance` (to check what really happened)."""
        return redis.Redis(
            port=self.backend.port, password=self.backend.password, db=self.dbs[instance]
        )

    def dedicated_in_use(self) -> int:
        """Dedicated upstream connections lent to clients right now, over all pools."""
        return sum(pool.dedicated_in_use for pool in self.gateway.pools)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the gateway's loop thread and return its result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def call_async(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10) -> T:
        """Run `coro` on the gateway's loop thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)


@contextlib.contextmanager
def run_gateway(
    backend: RedisServer,
    tmp_path: Path,
    *,
    instances: tuple[str, ...] = ("main",),
    shared: bool | Collection[str] = False,
    scopes: Mapping[str, str | tuple[str, str]] | None = None,
    limits: dict[str, dict[str, int]] | None = None,
    **overrides: Any,
) -> Iterator[RunningGateway]:
    """`shared` marks every instance (True) or the named ones as dbs of a shared server.
    `scopes` ({label: scope string, or (instance, scope string)}) adds keys with those scopes,
    on the first instance unless named; `limits` ({instance name or "key:" + instance name:
    {field: value}}) sets limits on the instances and their keys (docs/limits.md)."""
    keys_file = tmp_path / "keys.toml"
    tokens, dbs = {}, {}
    for name in instances:
        db = next(_dbs) % 15 + 1
        with redis.Redis(port=backend.port, password=backend.password, db=db) as direct:
            direct.flushdb()
        set_instance(
            keys_file,
            name,
            Backend(
                host="127.0.0.1",
                port=backend.port,
                db=db,
                password=backend.password,
                shared=shared if isinstance(shared, bool) else name in shared,
            ),
        )
        tokens[name] = add_key(keys_file, name, f"{name}-key").token
        dbs[name] = db
    scoped = {}
    for label, text in (scopes or {}).items():
        instance, text = text if isinstance(text, tuple) else (instances[0], text)
        scoped[label] = add_key(keys_file, instance, label, text).token
    for target, values in (limits or {}).items():
        if target.startswith("key:"):
            key_id = key_id_of(tokens[target[4:]].encode())
            assert key_id is not None
            set_limits(keys_file, "keys", key_id, dict(values))
        else:
            set_limits(keys_file, "instances", target, dict(values))
    ports: dict[str, Any] = {"http_port": 0, **overrides}  # the HTTP command API's too
    settings = dataclasses.replace(
        load_settings(env={}), proxy_port=0, keys_file=keys_file, **ports
    )
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()
    gateway = Gateway(settings, StaticSource(keys_file))
    asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(10)
    try:
        yield RunningGateway(gateway, loop, keys_file, backend, tokens, dbs, scoped)
    finally:
        asyncio.run_coroutine_threadsafe(gateway.shutdown(timeout_s=1), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def gw(redis_server: RedisServer, tmp_path: Path) -> Iterator[RunningGateway]:
    with run_gateway(redis_server, tmp_path) as running:
        yield running


@pytest.fixture
def shared_gw(redis_server: RedisServer, tmp_path: Path) -> Iterator[RunningGateway]:
    """A gateway whose instance is one db of a server that other tenants share."""
    with run_gateway(redis_server, tmp_path, shared=True) as running:
        yield running
