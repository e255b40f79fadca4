"""The six limit columns (`redisgate.limits`) that api_keys, instances and org_quotas share.

Each table holds them under the same names, nullable (NULL inherits; see docs/limits.md), with
CHECKs matching the API's validation (migrations/004_limits.sql).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from redisgate.errors import NotFound
from redisgate.limits import FIELDS, Limits
from redisgate.store import changes
from redisgate.store.db import map_exceptions

# table -> its primary-key column
_TABLES = {"api_keys": "id", "instances": "id", "org_quotas": "org_id"}


def columns(alias: str = "", prefix: str = "") -> str:
    """The columns for a SELECT list: `alias.field AS prefixfield`."""
    dot = alias + "." if alias else ""
    return ", ".join(f"{dot}{name} AS {prefix}{name}" if prefix else dot + name for name in FIELDS)


def from_row(row: asyncpg.Record, prefix: str = "") -> Limits:
    return Limits(*(row[prefix + name] for name in FIELDS))


_NOTICE_KINDS = {"api_keys": "key", "instances": "instance", "org_quotas": "org"}


async def set_limits(conn: asyncpg.Connection, table: str, ident: Any, limits: Limits) -> None:
    """Replace the six limits of one row (NotFound when there is no such row)."""
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(FIELDS, start=2))
    with map_exceptions("cannot set the limits"):
        org_id = await conn.fetchval(
            f"UPDATE {table} SET {assignments} WHERE {_TABLES[table]} = $1 RETURNING org_id",
            ident,
            *(getattr(limits, name) for name in FIELDS),
        )
    if org_id is None:
        raise NotFound(f"nothing to set limits on in {table}", code="not_found")
    await changes.notify(conn, _NOTICE_KINDS[table], ident, org_id)  # gateways apply it live


async def org_limits(conn: asyncpg.Connection, org_id: Any) -> Limits:
    """An org's defaults for its instances (NULL: the gateway's default_* settings)."""
    with map_exceptions("cannot read the organization's limits"):
        row = await conn.fetchrow(f"SELECT {columns()} FROM org_quotas WHERE org_id = $1", org_id)
    if row is None:
        raise NotFound("organization not found", code="org_not_found")
    return from_row(row)
