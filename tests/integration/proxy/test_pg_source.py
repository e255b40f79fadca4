"""The gateway reading API keys from Postgres: real Postgres, real redis-server, redis-py.

Orgs, instances and keys are made with the store functions (as the control plane makes them);
the gateway runs in a thread of its own with the source `open_source` picks for a
`database_url`, so these tests also cover that wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import redis
import uvloop
from redis.backoff import NoBackoff
from redis.retry import Retry

from redisgate import api_key_format
from redisgate.backends import Backend
from redisgate.config.load import load_settings
from redisgate.errors import ConfigError
from redisgate.launcher.redis import RedisServer
from redisgate.limits import Limits
from redisgate.proxy.clients.gateway import Gateway
from redisgate.proxy.keys.postgres import PostgresSource
from redisgate.proxy.keys.sources import open_source
from redisgate.proxy.keys.static import StaticSource, set_instance
from redisgate.scopes import PRESETS, parse_scope
from redisgate.store import api_keys, db, instances, orgs, users
from redisgate.store import limits as limit_store
from redisgate.store.org_quotas import QuotaLimits

T = TypeVar("T")
NO_RETRY = Retry(NoBackoff(), 0)  # redis-py would retry a failed AUTH for seconds
FULL = parse_scope(PRESETS["full"]).canonical
DB_INDEX = 13
BACKEND_SECRET = "hunter2-backend-secret"


@dataclass
class PgGateway:
    gateway: Gateway
    loop: asyncio.AbstractEventLoop

    @property
    def port(self) -> int:
        return self.gateway.port

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def client(self, token: str, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=self.port, password=token, **kwargs)

    def auth_fails(self, token: str) -> bool:
        """True when a new connection's AUTH gets WRONGPASS (no retries)."""
        try:
            self.client(token, retry=NO_RETRY).ping()
        except redis.AuthenticationError:
            return True
        return False


@contextlib.contextmanager
def run_pg_gateway(database_url: str) -> Iterator[PgGateway]:
    settings = dataclasses.replace(
        load_settings(env={}), proxy_port=0, http_port=0, keys_file=None, database_url=database_url
    )
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    async def start() -> Gateway:
        source = await stack.enter_async_context(open_source(settings))
        gateway = Gateway(settings, source)
        await gateway.start()
        return gateway

    running = PgGateway(asyncio.run_coroutine_threadsafe(start(), loop).result(10), loop)
    try:
        yield running
    finally:
        running.run(running.gateway.shutdown(timeout_s=1))
        running.run(stack.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def pg_gw(database_url: str) -> Iterator[PgGateway]:
    with run_pg_gateway(database_url) as running:
        yield running


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with db.connection(database_url) as connection:
        yield connection


@pytest.fixture
def direct(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """The backend db the test instance uses, flushed first."""
    with redis.Redis(port=redis_server.port, password=redis_server.password, db=DB_INDEX) as client:
        client.flushdb()
        yield client


def backend_of(server: RedisServer, db_index: int = DB_INDEX) -> Backend:
    return Backend(host="127.0.0.1", port=server.port, db=db_index, password=server.password)


async def new_instance(
    conn: asyncpg.Connection, backend: Backend | None, name: str = "cache"
) -> instances.Instance:
    """An org with one instance; `running` on `backend` unless backend is None."""
    user = await users.create_user(conn, f"{uuid.uuid4().hex}@example.com", "T", "not-a-hash")
    async with conn.transaction():
        org = await orgs.create_org(
            conn, "acme", user.id, QuotaLimits(10, 10_000, 100), personal=False
        )
        instance = await instances.create_instance(
            conn,
            org.id,
            name=name,
            memory_mb=64,
            eviction_policy="noeviction",
            persistence=False,
            provisioner="static",
            created_by=user.id,
        )
    if backend is not None:
        running = await instances.set_status(conn, instance.id, "running", backend=backend)
        assert running is not None
        instance = running
    return instance


async def new_key(
    conn: asyncpg.Connection,
    instance: instances.Instance,
    *,
    scopes: str = FULL,
    expires_at: datetime | None = None,
) -> api_key_format.MintedKey:
    key = api_key_format.mint()
    async with conn.transaction():
        await api_keys.create_key(
            conn,
            key_id=key.key_id,
            digest=key.digest,
            instance_id=instance.id,
            org_id=instance.org_id,
            name="test key",
            scopes=scopes,
            expires_at=expires_at,
            created_by=None,
        )
    return key


def eventually(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Poll `condition` every 10 ms until it holds (AssertionError after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s}s"
        time.sleep(0.01)


def raw_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        assert chunk, "the gateway closed the connection"
        data += chunk
    return data


# --- Keys from the database --------------------------------------------------------------


async def test_a_new_key_works_at_once_on_its_instance(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    key = await new_key(conn, instance)
    client = pg_gw.client(key.token)
    assert client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"
    assert direct.get("greeting") == b"hello"  # in the instance's own db


async def test_the_keys_scope_is_applied(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    key = await new_key(conn, instance, scopes=parse_scope("+@read ~app:*").canonical)
    direct.set("app:1", "one")
    client = pg_gw.client(key.token)
    assert client.get("app:1") == b"one"
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("app:1", "two")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.get("other:1")
    assert direct.get("app:1") == b"one"


async def test_a_revoked_key_fails_the_next_auth_at_once(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    key = await new_key(conn, instance)
    live = pg_gw.client(key.token)
    assert live.ping()
    assert pg_gw.client(key.token).ping()  # cached now
    await api_keys.revoke_key(conn, key.key_id)
    # The change notice reaches the gateway a few ms after the commit; then new AUTHs fail
    # (no cache keeps the key alive) and live sessions close (see test_live.py).
    await asyncio.to_thread(eventually, lambda: pg_gw.auth_fails(key.token))
    with pytest.raises(redis.ConnectionError):
        await asyncio.to_thread(eventually, lambda: not live.ping())


async def test_expired_keys_fail(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = await new_key(conn, instance, expires_at=past)
    assert pg_gw.auth_fails(expired.token)
    key = await new_key(conn, instance, expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert pg_gw.client(key.token).ping()
    stored = await api_keys.get_key(conn, instance.id, key.key_id)
    await api_keys.update_key(conn, stored, expires_at=past)  # shortened: expired now
    await asyncio.to_thread(eventually, lambda: pg_gw.auth_fails(key.token))


async def test_keys_of_an_instance_that_is_not_running_fail(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, None)  # still provisioning: no backend yet
    key = await new_key(conn, instance)
    assert pg_gw.auth_fails(key.token)
    await instances.set_status(conn, instance.id, "running", backend=backend_of(redis_server))
    # The failure was negatively cached for PostgresSource.negative_ttl_s at most.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PostgresSource.negative_ttl_s + 2
    while pg_gw.auth_fails(key.token):
        assert loop.time() < deadline, "the key never started working"
        await asyncio.sleep(0.1)
    await instances.set_status(conn, instance.id, "failed", "the server went away")
    await asyncio.to_thread(eventually, lambda: pg_gw.auth_fails(key.token))  # its notice


async def test_keys_of_one_instance_share_its_upstream_pool(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    first, second = await new_key(conn, instance), await new_key(conn, instance)
    assert pg_gw.client(first.token).set("k", "1")
    assert pg_gw.client(second.token).get("k") == b"1"
    assert len(list(pg_gw.gateway.pools)) == 1


async def test_unknown_ids_get_wrongpass_and_are_negatively_cached(pg_gw: PgGateway) -> None:
    token = f"rg_{'a' * 12}_{'A' * 43}".encode()
    with socket.create_connection(("127.0.0.1", pg_gw.port), timeout=5) as sock:
        for _ in range(5):
            sock.sendall(b"AUTH " + token + b"\r\n")
            assert raw_line(sock).startswith(b"-WRONGPASS")
    assert pg_gw.gateway.authenticator.lookups == 1


async def test_last_used_is_recorded_by_a_flush(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    used, unused = await new_key(conn, instance), await new_key(conn, instance)
    assert pg_gw.client(used.token).ping()
    assert (await api_keys.get_key(conn, instance.id, used.key_id)).last_used_at is None
    pg_gw.run(pg_gw.gateway.usage.flush())
    assert (await api_keys.get_key(conn, instance.id, used.key_id)).last_used_at is not None
    assert (await api_keys.get_key(conn, instance.id, unused.key_id)).last_used_at is None


# --- Postgres down ---------------------------------------------------------------------


def dead_database_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/redisgate"


def test_postgres_unreachable_gives_a_retry_error_and_keeps_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = api_key_format.mint()
    with (
        run_pg_gateway(dead_database_url()) as gw,  # starts although Postgres is down
        socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock,
    ):
        for _ in range(2):
            sock.sendall(b"AUTH " + key.token.encode() + b"\r\n")
            reply = raw_line(sock)
            assert reply.startswith(b"-ERR authentication is temporarily unavailable"), reply
        sock.sendall(b"PING\r\n")
        assert raw_line(sock) == b"-NOAUTH Authentication required.\r\n"  # still open
        assert gw.gateway.authenticator._negative == {}  # an outage is not a bad key
        assert gw.gateway.throttle._failures == {}  # nor a failed attempt
    unreachable = [r for r in caplog.records if "key store unreachable" in r.getMessage()]
    assert len(unreachable) == 1  # once per outage, not per AUTH
    assert key.token not in caplog.text and key.digest not in caplog.text


# --- Secrets in logs ---------------------------------------------------------------------


async def test_no_token_digest_or_backend_password_in_logs(
    pg_gw: PgGateway,
    conn: asyncpg.Connection,
    redis_server: RedisServer,
    direct: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    good = await new_instance(conn, backend_of(redis_server), name="good")
    key = await new_key(conn, good)
    assert pg_gw.client(key.token).set("k", "v")
    assert pg_gw.auth_fails(key.token[:-4] + "AAAA")  # a wrong secret for a known id
    # An instance whose backend is down, behind a password: its errors are logged.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead = Backend(host="127.0.0.1", port=dead_port, password=BACKEND_SECRET)
    broken = await new_instance(conn, dead, name="broken")
    broken_key = await new_key(conn, broken)
    with pytest.raises(redis.RedisError):
        pg_gw.client(broken_key.token, retry=NO_RETRY).get("k")
    pg_gw.run(pg_gw.gateway.usage.flush())
    assert caplog.records, "nothing was logged: the test would prove nothing"
    for secret in (key.token, key.digest, broken_key.token, BACKEND_SECRET, redis_server.password):
        assert secret not in caplog.text


# --- Choosing the source -----------------------------------------------------------------


async def test_open_source_needs_a_keys_file_or_a_database() -> None:
    settings = dataclasses.replace(load_settings(env={}), keys_file=None, database_url=None)
    with pytest.raises(ConfigError, match="set database_url"):
        async with open_source(settings):
            pass


async def test_open_source_prefers_the_keys_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.toml"
    set_instance(keys_file, "cache", Backend(host="127.0.0.1", port=6379))
    settings = dataclasses.replace(
        load_settings(env={}), keys_file=keys_file, database_url=dead_database_url()
    )
    async with open_source(settings) as source:
        assert isinstance(source, StaticSource)
    settings = dataclasses.replace(settings, keys_file=None)
    async with open_source(settings) as source:  # no connection is made until a lookup
        assert isinstance(source, PostgresSource)


# --- Limits from the database (docs/limits.md) -----------------------------------------------


async def test_org_default_caps_connections_of_an_instance(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    await limit_store.set_limits(conn, "org_quotas", instance.org_id, Limits(max_connections=1))
    key = await new_key(conn, instance)
    with pg_gw.client(key.token) as first, pg_gw.client(key.token, retry=NO_RETRY) as second:
        assert first.ping()
        with pytest.raises(redis.ResponseError, match="max concurrent connections exceeded"):
            second.ping()


async def test_a_raised_key_limit_reaches_open_connections_at_the_next_auth(
    pg_gw: PgGateway, conn: asyncpg.Connection, redis_server: RedisServer, direct: redis.Redis
) -> None:
    instance = await new_instance(conn, backend_of(redis_server))
    key = await new_key(conn, instance)
    await limit_store.set_limits(conn, "api_keys", key.key_id, Limits(ops_per_second=0))
    with pg_gw.client(key.token, retry=NO_RETRY) as suspended:
        with pytest.raises(redis.ResponseError, match="max requests limit exceeded"):
            suspended.get("k")
        await limit_store.set_limits(conn, "api_keys", key.key_id, Limits(ops_per_second=1000))
        with socket.create_connection(("127.0.0.1", pg_gw.port), timeout=10) as other:
            other.sendall(b"AUTH " + key.token.encode() + b"\r\n")
            assert raw_line(other) == b"+OK\r\n"  # this AUTH re-shapes the key's bucket

        def served() -> bool:
            try:
                return suspended.get("k") is None
            except redis.ResponseError:
                return False

        deadline = asyncio.get_running_loop().time() + 10
        while not served():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
