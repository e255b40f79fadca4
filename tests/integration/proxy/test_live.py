"""Live policy: control-plane changes reach live sessions on every gateway within a second,
expiry applies on time, a lost LISTEN connection misses nothing, and a dead PostgreSQL leaves
cached keys working (fail-static). Real PostgreSQL, real redis-server, redis-py."""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import redis

from redisgate.launcher.postgres import PostgresServer
from redisgate.launcher.process import free_port
from redisgate.launcher.redis import RedisServer
from redisgate.store import api_keys, changes, db, instances
from redisgate.store.migrations import default_migrations_dir, migrate
from tests.integration.control.conftest import api_for, control_settings
from tests.integration.proxy.test_pg_source import (
    NO_RETRY,
    PgGateway,
    backend_of,
    new_instance,
    new_key,
    run_pg_gateway,
)


@pytest.fixture
def pg_gw(database_url: str) -> Iterator[PgGateway]:
    with run_pg_gateway(database_url) as running:
        yield running


@pytest.fixture
def two_gateways(database_url: str) -> Iterator[tuple[PgGateway, PgGateway]]:
    with run_pg_gateway(database_url) as first, run_pg_gateway(database_url) as second:
        for gw in (first, second):
            wait_until(
                lambda gw=gw: gw.gateway.live is not None and gw.gateway.live.listener.connected
            )  # type: ignore[misc]
        yield first, second


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> float:
    """Seconds until `condition` held (polled every 10 ms); AssertionError after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s}s")
        time.sleep(0.01)
    return time.monotonic() - started


def closed(client: redis.Redis) -> Callable[[], bool]:
    """True once the gateway has closed this client's connection."""

    def check() -> bool:
        try:
            client.ping()
        except (redis.ConnectionError, redis.AuthenticationError):
            return True
        except redis.ResponseError:  # e.g. NOPERM: the connection is still open
            return False
        return False

    return check


async def revoke(conn: asyncpg.Connection, key_id: str, *, notify: bool = True) -> None:
    async with conn.transaction():
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", key_id)
        if notify:
            await changes.notify(conn, "key", key_id)


async def test_revocation_closes_live_sessions_on_every_gateway(
    two_gateways: tuple[PgGateway, PgGateway], database_url: str, redis_server: RedisServer
) -> None:
    first, second = two_gateways
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance)
        other = await new_key(conn, instance)
        clients = [gw.client(key.token, retry=NO_RETRY) for gw in (first, second)]
        bystander = first.client(other.token, retry=NO_RETRY)
        for client in (*clients, bystander):
            assert client.ping()
        await revoke(conn, key.key_id)
        delays = [await asyncio.to_thread(wait_until, closed(c)) for c in clients]
    print(f"revocation -> sessions closed on two gateways: {max(delays) * 1000:.0f} ms")
    assert bystander.ping()  # other keys' sessions carry on
    assert first.auth_fails(key.token) and second.auth_fails(key.token)


async def test_rescoping_applies_to_the_next_command(
    pg_gw: PgGateway, database_url: str, redis_server: RedisServer
) -> None:
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance)
        client = pg_gw.client(key.token, retry=NO_RETRY)
        assert client.set("app:1", "v")
        async with conn.transaction():
            await conn.execute(
                "UPDATE api_keys SET scopes = '+@read ~app:* resetchannels' WHERE id = $1",
                key.key_id,
            )
            await changes.notify(conn, "key", key.key_id)

        def denied() -> bool:
            try:
                client.set("app:1", "w")
            except redis.exceptions.NoPermissionError:
                return True
            return False

        await asyncio.to_thread(wait_until, denied)
        assert client.get("app:1") in (b"v", b"w")  # same connection, reads still allowed


async def test_renaming_an_instance_keeps_its_sessions(
    pg_gw: PgGateway, database_url: str, redis_server: RedisServer
) -> None:
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance)
        client = pg_gw.client(key.token, retry=NO_RETRY)
        client_id = client.client_id()
        async with conn.transaction():
            await instances.update_instance(conn, instance, name="renamed")  # notifies
        await asyncio.sleep(0.5)
        assert client.client_id() == client_id  # the same connection


async def test_rescoping_closes_subscriptions_the_new_scope_may_not_hold(
    pg_gw: PgGateway, database_url: str, redis_server: RedisServer
) -> None:
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance)
        subscriber = pg_gw.client(key.token, retry=NO_RETRY).pubsub()
        subscriber.subscribe("payroll")
        assert subscriber.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
        stored = await api_keys.get_key(conn, instance.id, key.key_id)
        await api_keys.update_key(conn, stored, scopes="+@all allkeys resetchannels")

        def gone() -> bool:
            try:
                subscriber.get_message(timeout=0.05)
            except (redis.ConnectionError, OSError):
                return True
            return False

        await asyncio.to_thread(wait_until, gone)
        subscriber.close()


async def test_expiry_closes_sessions_without_a_notice(
    pg_gw: PgGateway, database_url: str, redis_server: RedisServer
) -> None:
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        soon = datetime.now(UTC) + timedelta(seconds=1.5)
        key = await new_key(conn, instance, expires_at=soon)
    client = pg_gw.client(key.token, retry=NO_RETRY)
    assert client.ping()
    await asyncio.to_thread(wait_until, closed(client), 5.0)
    assert datetime.now(UTC) >= soon


async def test_a_deleted_instance_closes_its_sessions_and_drains_its_pool(
    pg_gw: PgGateway, database_url: str, redis_server: RedisServer
) -> None:
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance)
        client = pg_gw.client(key.token, retry=NO_RETRY)
        assert client.ping()
        async with conn.transaction():
            await conn.execute("DELETE FROM instances WHERE id = $1", instance.id)
            await changes.notify(conn, "instance", instance.id)
        await asyncio.to_thread(wait_until, closed(client))
    pools = await asyncio.to_thread(
        wait_until, lambda: str(instance.id) not in {p.instance.id for p in pg_gw.gateway.pools}
    )
    assert pools >= 0


async def test_a_change_missed_while_listen_was_down_still_applies(
    pg_gw: PgGateway, database_url: str, redis_server: RedisServer
) -> None:
    listener = pg_gw.gateway.live.listener  # type: ignore[union-attr]
    await asyncio.to_thread(wait_until, lambda: listener.connected)
    listener.backoff_s = (1.0, 1.0)  # room to change things while it is down
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance)
        client = pg_gw.client(key.token, retry=NO_RETRY)
        assert client.ping()
        terminated = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'redisgate-listener' AND datname = current_database()"
        )
        assert terminated == 1
        await asyncio.to_thread(wait_until, lambda: not listener.connected)
        await revoke(conn, key.key_id, notify=False)  # nobody hears of it
        assert client.ping()  # not yet applied
        await asyncio.to_thread(wait_until, lambda: listener.connected)
        await asyncio.to_thread(wait_until, closed(client))


async def test_revocation_over_http_reaches_the_gateway(
    pg_gw: PgGateway, database_url: str
) -> None:
    async for api in api_for(control_settings(database_url)):
        user = await api.register()
        org, token = user["org"]["id"], user["access_token"]
        created = await api.post(
            f"/v1/orgs/{org}/instances", token=token, json={"name": "c", "memory_mb": 8}
        )
        keys = f"/v1/orgs/{org}/instances/{created.body['id']}/keys"
        key = await api.post(keys, token=token, json={"name": "k"})
        client = pg_gw.client(key.body["token"], retry=NO_RETRY)
        assert client.ping()
        rescoped = await api.patch(
            f"{keys}/{key.body['id']}", token=token, json={"scopes": "+@read ~app:*"}
        )
        assert rescoped.status == 200
        await asyncio.to_thread(wait_until, functools.partial(_denied, client))
        assert (await api.delete(f"{keys}/{key.body['id']}", token=token)).status == 204
        await asyncio.to_thread(wait_until, closed(client))


def _denied(client: redis.Redis) -> bool:
    try:
        client.set("app:1", "v")
    except redis.exceptions.NoPermissionError:
        return True
    return False


@pytest.mark.slow
async def test_fail_static_keeps_cached_keys_working_while_postgres_is_down(
    redis_server: RedisServer,
) -> None:
    # Not under pytest's tmp_path: other pytest runs on the machine reset its folder's mode,
    # and PostgreSQL runs as another user (as root) that must traverse it.
    folder = Path(tempfile.mkdtemp(prefix="rg-failstatic-"))
    postgres = PostgresServer(folder / "pg", port=free_port())  # the same port after a restart
    postgres.start()
    try:
        url = postgres.dsn()
        async with db.connection(url) as conn:
            await migrate(conn, default_migrations_dir())
            instance = await new_instance(conn, backend_of(redis_server))
            seen = await new_key(conn, instance)
            unseen = await new_key(conn, instance)
            revoked = await new_key(conn, instance)
        with run_pg_gateway(url) as gw:
            live = gw.gateway.live
            assert live is not None
            await asyncio.to_thread(wait_until, lambda: live.listener.connected)
            assert gw.client(seen.token, retry=NO_RETRY).ping()  # now cached
            assert gw.client(revoked.token, retry=NO_RETRY).ping()  # cached too, then revoked
            async with db.connection(url) as conn:
                await revoke(conn, revoked.key_id)
            await asyncio.to_thread(wait_until, lambda: gw.auth_fails(revoked.token))
            postgres.stop()
            await asyncio.to_thread(wait_until, lambda: not live.listener.connected)
            # a cached key still opens new connections; an unknown one gets a clear error
            assert gw.client(seen.token, retry=NO_RETRY).ping()
            with pytest.raises(redis.ResponseError, match="temporarily unavailable"):
                gw.client(unseen.token, retry=NO_RETRY).ping()
            with pytest.raises(
                (redis.ResponseError, redis.AuthenticationError)
            ):  # never fail-static
                gw.client(revoked.token, retry=NO_RETRY).ping()
            postgres.start()
            await asyncio.to_thread(wait_until, lambda: live.listener.connected, 15.0)
            assert gw.client(unseen.token, retry=NO_RETRY).ping()  # recovered by itself
    finally:
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)
