"""The benchmark's tenant on PostgreSQL: what a gateway in production reads its keys from.

`postgres_tenant` starts a throwaway PostgreSQL, migrates it, and makes a user, an org, a
static instance on the benchmark Redis and one API key, through the store functions the
control plane uses. The key carries limits far above any load here, so the full policy path
runs per command (rate gate, daily quotas) without refusing anything; the gateway reading it
also LISTENs for changes and flushes usage every 5 s.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager

from redisgate import api_key_format
from redisgate.backends import Backend
from redisgate.launcher.postgres import PostgresServer
from redisgate.launcher.redis import RedisServer
from redisgate.limits import Limits
from redisgate.store import api_keys, db, instances, orgs, sealing, users
from redisgate.store import limits as limit_store
from redisgate.store.migrations import default_migrations_dir, migrate
from redisgate.store.org_quotas import QuotaLimits

# Active but never reached by a benchmark: every command still goes through the checks.
HIGH_LIMITS = Limits(
    ops_per_second=10_000_000,
    burst=10_000_000,
    max_connections=100_000,
    max_request_bytes=64 * 1024 * 1024,
    daily_commands=10**15,
    daily_bytes=10**18,
)


@contextmanager
def postgres_tenant(redis: RedisServer, scopes: str) -> Iterator[tuple[str, str]]:
    """(database URL, API key token) of a tenant whose instance is `redis`, db 0.

    Backend passwords are stored sealed: this process seals with a fresh key, which the
    gateways started after it read from their environment (`backend_secret_keys`)."""
    key = sealing.new_key()
    sealing.configure(sealing.SecretBox((sealing.decode_key(key),)))
    os.environ["REDISGATE_BACKEND_SECRET_KEYS"] = key
    server = PostgresServer()
    server.start()
    try:
        yield server.dsn("redisgate"), asyncio.run(_make_tenant(server, redis, scopes))
    finally:
        server.stop()


async def _make_tenant(server: PostgresServer, redis: RedisServer, scopes: str) -> str:
    async with db.connection(server.dsn()) as admin:
        await db.create_database(admin, "redisgate")
    async with db.connection(server.dsn("redisgate")) as conn:
        await migrate(conn, default_migrations_dir())
        user = await users.create_user(conn, "bench@example.com", "Bench", "not-a-hash")
        async with conn.transaction():
            org = await orgs.create_org(
                conn, "bench", user.id, QuotaLimits(1, 1024, 10), personal=False
            )
            instance = await instances.create_instance(
                conn,
                org.id,
                name="bench",
                memory_mb=1024,
                eviction_policy="noeviction",
                persistence=False,
                provisioner="static",
                created_by=user.id,
            )
        backend = Backend("127.0.0.1", redis.port, 0, password=redis.password)
        await instances.set_status(conn, instance.id, "running", backend=backend)
        key = api_key_format.mint()
        async with conn.transaction():
            await api_keys.create_key(
                conn,
                key_id=key.key_id,
                digest=key.digest,
                instance_id=instance.id,
                org_id=org.id,
                name="bench",
                scopes=scopes,
                expires_at=None,
                created_by=None,
            )
        await limit_store.set_limits(conn, "api_keys", key.key_id, HIGH_LIMITS)
        await limit_store.set_limits(conn, "instances", instance.id, HIGH_LIMITS)
    return key.token
