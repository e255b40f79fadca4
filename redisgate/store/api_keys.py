"""API keys: public id, SHA-256 digest of the token, scopes, expiry, revocation.

The control plane creates and changes keys; the gateway reads one key with its instance by
public id (`gateway_key`), a primary-key lookup joined to the instance, and only on AUTH.
Every change a gateway must apply to live sessions (re-scope, expiry, revocation) sends a
change notice in the same transaction (`store.changes`), so no caller can forget it.
Revoked keys stay (with `revoked_at`) so listings and the audit log can name them.

Console keys (`console` column) are the web console's short-lived keys for its data browser:
they work at the gateway like any key, but the keys API does not show them, the API-key quota
does not count them, and `delete_expired_console_keys` removes them once expired.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from redisgate.backends import Backend
from redisgate.errors import NotFound
from redisgate.limits import NO_LIMITS, Limits
from redisgate.store import changes, instances, limits, org_quotas, sealing
from redisgate.store.db import map_exceptions

_COLUMNS = (
    "id, instance_id, org_id, name, scopes, expires_at, last_used_at, created_by, "
    "created_at, updated_at, revoked_at, " + limits.columns()
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    instance_id: uuid.UUID
    org_id: uuid.UUID
    name: str
    scopes: str
    expires_at: datetime | None
    last_used_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None
    limits: Limits = NO_LIMITS  # as set on the key (None: no key-level limit)

    def public(self) -> dict[str, object]:
        """What listings show: the public id, never the secret or its digest."""

        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "instance_id": str(self.instance_id),
            "name": self.name,
            "scopes": self.scopes,
            "expires_at": iso(self.expires_at),
            "last_used_at": iso(self.last_used_at),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "revoked_at": iso(self.revoked_at),
            "limits": self.limits.public(),
        }


_FIELDS = _COLUMNS.split(", ")[:11]


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(**{k: row[k] for k in _FIELDS}, limits=limits.from_row(row))


async def create_key(
    conn: asyncpg.Connection,
    *,
    key_id: str,
    digest: str,
    instance_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    scopes: str,
    expires_at: datetime | None,
    created_by: uuid.UUID | None,
) -> ApiKey:
    """Insert a key after checking the org's API-key quota; call inside a transaction."""
    await org_quotas.check_quota(conn, org_id, "api_keys", 1)
    with map_exceptions("cannot create the API key"):
        row = await _insert(
            conn, key_id, digest, instance_id, org_id, name, scopes, expires_at, created_by
        )
    await changes.announce(conn, "key", key_id, org_id)
    return _key(row)


async def create_console_key(
    conn: asyncpg.Connection,
    *,
    key_id: str,
    digest: str,
    instance_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    scopes: str,
    expires_at: datetime,
    created_by: uuid.UUID,
) -> ApiKey:
    """Insert a console key (no quota: it expires within minutes and is never listed)."""
    with map_exceptions("cannot create the console key"):
        row = await _insert(
            conn, key_id, digest, instance_id, org_id, name, scopes, expires_at, created_by,
            console=True,
        )  # fmt: skip
    return _key(row)


async def _insert(
    conn: asyncpg.Connection, *values: object, console: bool = False
) -> asyncpg.Record:
    """One api_keys row: id, digest, instance, org, name, scopes, expiry, creator."""
    row: asyncpg.Record = await conn.fetchrow(
        "INSERT INTO api_keys (id, digest, instance_id, org_id, name, scopes, expires_at, "
        f"created_by, console) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}",
        *values,
        console,
    )
    return row


async def delete_expired_console_keys(
    conn: asyncpg.Connection, *, grace_s: float, limit: int
) -> int:
    """Delete up to `limit` console keys expired over `grace_s` ago (the gateway refuses them
    from their expiry on; the grace keeps them nameable a while, e.g. in its logs)."""
    with map_exceptions("cannot delete expired console keys"):
        result = await conn.execute(
            "DELETE FROM api_keys WHERE id IN (SELECT id FROM api_keys WHERE console "
            "AND expires_at < now() - make_interval(secs => $1) ORDER BY expires_at LIMIT $2)",
            float(grace_s),
            limit,
        )
    return int(result.split()[-1])


async def get_key(
    conn: asyncpg.Connection, instance_id: uuid.UUID, key_id: str, *, lock: bool = False
) -> ApiKey:
    """A key of the keys API (console keys are not among them)."""
    with map_exceptions("cannot read the API key"):
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1 AND instance_id = $2 AND NOT console"
            + (" FOR UPDATE" if lock else ""),
            key_id,
            instance_id,
        )
    if row is None:
        raise NotFound("no such API key for this instance", code="key_not_found")
    return _key(row)


async def list_keys(
    conn: asyncpg.Connection,
    instance_id: uuid.UUID,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[ApiKey]:
    after_at, after_id = after if after else (None, None)
    with map_exceptions("cannot list API keys"):
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM api_keys WHERE instance_id = $1 AND NOT console AND "
            "($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) "
            "ORDER BY created_at, id LIMIT $4",
            instance_id,
            after_at,
            after_id,
            limit,
        )
    return [_key(r) for r in rows]


async def update_key(
    conn: asyncpg.Connection,
    key: ApiKey,
    *,
    name: str | None = None,
    scopes: str | None = None,
    expires_at: datetime | None = None,
    clear_expiry: bool = False,
) -> ApiKey:
    with map_exceptions("cannot change the API key"):
        row = await conn.fetchrow(
            "UPDATE api_keys SET name = coalesce($2, name), scopes = coalesce($3, scopes), "
            "expires_at = CASE WHEN $5 THEN NULL ELSE coalesce($4, expires_at) END, "
            f"updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            key.id,
            name,
            scopes,
            expires_at,
            clear_expiry,
        )
    await changes.notify(conn, "key", key.id, key.org_id)
    return _key(row)


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> ApiKey:
    """Revoke (idempotently: a revoked key keeps its first revocation time)."""
    with map_exceptions("cannot revoke the API key"):
        row = await conn.fetchrow(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()), updated_at = now() "
            f"WHERE id = $1 RETURNING {_COLUMNS}",
            key_id,
        )
    if row is None:
        raise NotFound("no such API key", code="key_not_found")
    await changes.notify(conn, "key", key_id, row["org_id"])
    return _key(row)


async def revoke_instance_keys(conn: asyncpg.Connection, instance_id: uuid.UUID) -> int:
    with map_exceptions("cannot revoke the instance's keys"):
        result = await conn.execute(
            "UPDATE api_keys SET revoked_at = now(), updated_at = now() "
            "WHERE instance_id = $1 AND revoked_at IS NULL",
            instance_id,
        )
    await changes.notify(conn, "instance", instance_id)
    return int(result.split()[-1])


async def count_live_keys(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    with map_exceptions("cannot count API keys"):
        value = await conn.fetchval(
            "SELECT count(*) FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL "
            "AND NOT console",
            org_id,
        )
    return int(value)


org_quotas.USAGE["api_keys"] = count_live_keys


# --- The gateway's lookup --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """A usable key with what the gateway needs to serve it."""

    key_id: str
    name: str
    digest: str
    scopes: str
    expires_at: datetime | None
    instance_id: uuid.UUID
    instance_name: str
    backend: Backend
    org_id: uuid.UUID
    limits: Limits = NO_LIMITS
    instance_limits: Limits = NO_LIMITS
    org_limits: Limits = NO_LIMITS  # the instance's org's defaults


async def gateway_key(conn: asyncpg.Connection, key_id: str) -> GatewayKey | None:
    """The key `key_id` if it can be used now: not revoked, not expired, instance running."""
    with map_exceptions("cannot look the API key up"):
        row = await conn.fetchrow(
            "SELECT k.id, k.name, k.digest, k.scopes, k.expires_at, k.org_id, i.id AS instance_id, "
            "i.name AS instance_name, i.backend_host, i.backend_port, i.backend_db, "
            "i.backend_username, i.backend_password, i.backend_tls, i.backend_shared, "
            f"{limits.columns('k', 'k_')}, {limits.columns('i', 'i_')}, "
            f"{limits.columns('q', 'q_')} "
            "FROM api_keys k JOIN instances i ON i.id = k.instance_id "
            "LEFT JOIN org_quotas q ON q.org_id = i.org_id "
            "WHERE k.id = $1 AND k.revoked_at IS NULL "
            "AND (k.expires_at IS NULL OR k.expires_at > now()) "
            "AND i.status = 'running' AND i.backend_host IS NOT NULL",
            key_id,
        )
    if row is None:
        return None
    return GatewayKey(
        key_id=row["id"],
        name=row["name"],
        digest=row["digest"],
        scopes=row["scopes"],
        expires_at=row["expires_at"],
        instance_id=row["instance_id"],
        instance_name=row["instance_name"],
        backend=Backend(
            host=row["backend_host"],
            port=row["backend_port"],
            db=row["backend_db"],
            username=row["backend_username"],
            password=sealing.open_sealed(row["backend_password"], instances.PASSWORD_COLUMN),
            tls=row["backend_tls"],
            shared=row["backend_shared"],
        ),
        org_id=row["org_id"],
        limits=limits.from_row(row, "k_"),
        instance_limits=limits.from_row(row, "i_"),
        org_limits=limits.from_row(row, "q_"),
    )


async def touch_last_used(conn: asyncpg.Connection, key_ids: list[str]) -> None:
    """Record use (batched by the gateway, never per command)."""
    with map_exceptions("cannot record key use"):
        await conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1::text[])", key_ids
        )
