"""Organization quotas: how many instances, MB of instance memory and API keys an org may hold,
checked inside the transaction that creates the resource. Not the data plane's limits
(`redisgate.limits`, stored by `store/limits.py`) nor its daily quotas
(`proxy/policy/daily_quotas.py`).

`check_quota` locks the org's quota row (`SELECT ... FOR UPDATE`), so creates in one org queue
behind each other from the check until their transaction ends: two of them can never both see
room for one more. The resource's current use is read by a function its own module supplies
(instances and API keys plug in with the tables that hold them).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from redisgate.config import Settings
from redisgate.errors import NotFound, QuotaExceeded, StoreError
from redisgate.store import changes
from redisgate.store.db import map_exceptions

UsageFn = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[int]]

# resource name -> column of its limit, and the words a quota error uses.
RESOURCES: dict[str, tuple[str, str]] = {
    "instances": ("max_instances", "instances"),
    "memory_mb": ("max_memory_mb", "MB of instance memory"),
    "api_keys": ("max_api_keys", "API keys"),
}

# resource -> how to count its current use; modules that own a resource register here.
USAGE: dict[str, UsageFn] = {}


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """An org's quota: the most it may hold of each resource (`RESOURCES`)."""

    max_instances: int
    max_memory_mb: int
    max_api_keys: int

    def public(self) -> dict[str, int]:
        return {
            "max_instances": self.max_instances,
            "max_memory_mb": self.max_memory_mb,
            "max_api_keys": self.max_api_keys,
        }


def default_quota(settings: Settings) -> QuotaLimits:
    """The `quota_default_*` settings: what a new org gets."""
    return QuotaLimits(
        settings.quota_default_max_instances,
        settings.quota_default_max_memory_mb,
        settings.quota_default_max_api_keys,
    )


@dataclass(frozen=True, slots=True)
class Quota:
    org_id: uuid.UUID
    limits: QuotaLimits
    updated_at: datetime


def _quota(row: asyncpg.Record) -> Quota:
    limits = QuotaLimits(row["max_instances"], row["max_memory_mb"], row["max_api_keys"])
    return Quota(row["org_id"], limits, row["updated_at"])


async def get_quota(conn: asyncpg.Connection, org_id: uuid.UUID) -> Quota:
    with map_exceptions("cannot read the quota"):
        row = await conn.fetchrow(
            "SELECT org_id, max_instances, max_memory_mb, max_api_keys, updated_at "
            "FROM org_quotas WHERE org_id = $1",
            org_id,
        )
    if row is None:
        raise NotFound("organization not found", code="org_not_found")
    return _quota(row)


async def set_quota(conn: asyncpg.Connection, org_id: uuid.UUID, limits: QuotaLimits) -> Quota:
    with map_exceptions("cannot set the quota"):
        row = await conn.fetchrow(
            "UPDATE org_quotas SET max_instances = $2, max_memory_mb = $3, max_api_keys = $4, "
            "updated_at = now() WHERE org_id = $1 "
            "RETURNING org_id, max_instances, max_memory_mb, max_api_keys, updated_at",
            org_id,
            limits.max_instances,
            limits.max_memory_mb,
            limits.max_api_keys,
        )
    if row is None:
        raise NotFound("organization not found", code="org_not_found")
    await changes.announce(conn, "quota", org_id, org_id)
    return _quota(row)


async def usage(conn: asyncpg.Connection, org_id: uuid.UUID) -> dict[str, int | None]:
    """Current use per resource; None for a resource nothing counts yet."""
    out: dict[str, int | None] = {}
    for resource in RESOURCES:
        count = USAGE.get(resource)
        out[resource] = None if count is None else await count(conn, org_id)
    return out


async def check_quota(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    resource: str,
    amount: int,
    current_use: UsageFn | None = None,
) -> tuple[int, int]:
    """Lock the org's quota row and make sure `amount` more of `resource` fits.

    Call inside the creating transaction, before the insert; the lock is held until that
    transaction ends. Returns (used, limit); raises QuotaExceeded saying both and what to do.
    """
    if not conn.is_in_transaction():
        raise StoreError("check_quota must run inside the creating transaction")
    column, words = RESOURCES[resource]
    count = current_use or USAGE.get(resource)
    if count is None:
        raise StoreError(f"nothing counts the use of {resource} yet")
    with map_exceptions("cannot check the quota"):
        limit = await conn.fetchval(
            f"SELECT {column} FROM org_quotas WHERE org_id = $1 FOR UPDATE", org_id
        )
        if limit is None:
            raise NotFound("organization not found", code="org_not_found")
        used = await count(conn, org_id)
    if used + amount > limit:
        raise QuotaExceeded(
            f"this organization uses {used} of its {limit} {words}; this needs {amount} more. "
            f"Delete some, or ask a platform admin to raise the quota.",
            details={"resource": resource, "used": used, "limit": limit, "requested": amount},
        )
    return int(used), int(limit)
