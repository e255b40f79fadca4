"""The Postgres principal source: API keys and their instances, as the control plane keeps them.

One `store.api_keys.gateway_key` lookup (a primary-key read joined to the instance) answers each
cache miss of the `Authenticator`; nothing here runs per command. The gateway caches answers
only while change notices arrive (`live.LivePolicy`), which is what tells it a key was revoked;
without them every AUTH reads the key. Unknown ids are remembered for `negative_ttl_s` (1 s),
so a client retrying a dead key in a loop costs one lookup a second, and a key whose instance
has just started works within a second.

When Postgres cannot be reached the lookup raises `StoreError` (the client gets a
"temporarily unavailable" error, not WRONGPASS); the outage and the recovery are logged once
each, not per AUTH. Tokens, digests and backend passwords are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Collection
from datetime import date

import asyncpg

from redisgate.errors import StoreError
from redisgate.proxy.keys.principals import Instance, KeyRecord, Principal
from redisgate.scopes import ScopeError, compile_scope
from redisgate.store import api_keys, usage
from redisgate.store.db import map_exceptions
from redisgate.store.usage import UsageRow

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_S = 3.0


class PostgresSource:
    """A KeySource over the control database (the pool is the caller's to close)."""

    fleet_wide = True
    negative_ttl_s = 1.0

    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = LOOKUP_TIMEOUT_S) -> None:
        self._pool = pool
        self.timeout_s = timeout_s
        self._reachable = True
        self._usage_failing = False

    def __repr__(self) -> str:
        return f"<PostgresSource timeout={self.timeout_s}s>"

    async def get_key(self, key_id: str) -> KeyRecord | None:
        try:
            found = await self._lookup(key_id)
        except StoreError as exc:
            if self._reachable:
                self._reachable = False
                log.warning("key store unreachable, new AUTHs get a retry error: %s", exc)
            raise
        if not self._reachable:
            self._reachable = True
            log.info("key store reachable again")
        return None if found is None else _record(found)

    async def _lookup(self, key_id: str) -> api_keys.GatewayKey | None:
        # A bounded wait: the client's AUTH must get an answer well within auth_timeout_s,
        # also when Postgres is silently unreachable (connect attempts that never finish).
        try:
            async with asyncio.timeout(self.timeout_s):
                with map_exceptions("cannot reach PostgreSQL to look the key up"):
                    async with self._pool.acquire() as conn:
                        return await api_keys.gateway_key(conn, key_id)
        except TimeoutError:
            raise StoreError(f"no answer from PostgreSQL within {self.timeout_s:g}s") from None

    def maybe_reload(self, now: float) -> bool:
        """Never: changes arrive as notices (`live`)."""
        return False

    async def record_usage(self, gateway_id: str, seq: int, rows: list[UsageRow]) -> bool:
        """Store one usage batch (idempotent by `seq`); False (logged once per outage) when
        it failed and must be retried with the same `seq`."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await _usage_write(self._pool, gateway_id, seq, rows)
        except (StoreError, TimeoutError) as exc:
            if not self._usage_failing:
                self._usage_failing = True
                why = str(exc) or f"no answer within {self.timeout_s:g}s"
                log.warning("cannot record usage (will retry): %s", why)
            return False
        return True

    async def day_totals(
        self, day: date, key_ids: list[str], instance_ids: list[str]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """What the fleet flushed of `day` for these daily quotas (`daily_quotas.QuotaBook.apply`);
        raises StoreError when PostgreSQL cannot answer."""
        try:
            async with asyncio.timeout(self.timeout_s):
                with map_exceptions("cannot reach PostgreSQL to read today's usage"):
                    async with self._pool.acquire() as conn:
                        ids = [uuid.UUID(i) for i in instance_ids]
                        return await usage.day_totals(conn, day, key_ids, ids)
        except TimeoutError:
            raise StoreError(f"no answer from PostgreSQL within {self.timeout_s:g}s") from None

    async def record_use(self, key_ids: Collection[str]) -> bool:
        """Set `last_used_at` of these keys; False (logged once per outage) when it failed."""
        try:
            async with asyncio.timeout(self.timeout_s):
                with map_exceptions("cannot reach PostgreSQL to record key use"):
                    async with self._pool.acquire() as conn:
                        await api_keys.touch_last_used(conn, list(key_ids))
        except (StoreError, TimeoutError) as exc:
            if not self._usage_failing:
                self._usage_failing = True
                why = str(exc) or f"no answer within {self.timeout_s:g}s"
                log.warning("cannot record API key use (will retry): %s", why)
            return False
        if self._usage_failing:
            self._usage_failing = False
            log.info("recording API key use again")
        return True


async def _usage_write(pool: asyncpg.Pool, gateway_id: str, seq: int, rows: list[UsageRow]) -> None:
    with map_exceptions("cannot reach PostgreSQL to record usage"):
        async with pool.acquire() as conn:
            await usage.record(conn, gateway_id, seq, rows)


def _record(found: api_keys.GatewayKey) -> KeyRecord | None:
    try:
        scope = compile_scope(found.scopes)
    except ScopeError as exc:  # stored scopes are canonical; this is a bug or a manual edit
        log.error("API key %s has invalid stored scopes, refusing it: %s", found.key_id, exc)
        return None
    instance = Instance(
        id=str(found.instance_id),
        name=found.instance_name,
        # Equal Instances for one instance id and backend, so its keys share one pool.
        backend=found.backend,
    )
    expires_at = None if found.expires_at is None else found.expires_at.timestamp()
    principal = Principal(
        key_id=found.key_id,
        key_name=found.name,
        instance=instance,
        scope=scope,
        expires_at=expires_at,
        org_id=str(found.org_id),
        limits=found.limits,
        instance_limits=found.instance_limits,
        org_limits=found.org_limits,
    )
    return KeyRecord(key_id=found.key_id, digest=found.digest, principal=principal)
