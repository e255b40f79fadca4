"""Instances: a tenant's Redis, where it lives (a `redisgate.backends.Backend`), and its status.

An instance row is written in two steps: created `provisioning` (inside the quota-checked
transaction), then, once the provisioner has a Redis for it, `running` with its backend
endpoint (or `failed` with a reason the user can read). The backend password is stored for
the gateway, sealed (`sealing`), and never leaves the store in a user-facing shape
(`Instance.public`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from redisgate.backends import Backend
from redisgate.errors import Conflict, NotFound
from redisgate.limits import NO_LIMITS, Limits
from redisgate.store import changes, limits, org_quotas, sealing
from redisgate.store.db import map_exceptions

STATUSES = ("provisioning", "running", "failed")
PASSWORD_COLUMN = "instances.backend_password"

_COLUMNS = (
    "id, org_id, name, memory_mb, eviction_policy, persistence, status, status_reason, "
    "provisioner, server_id, backend_host, backend_port, backend_db, backend_username, "
    "backend_password, backend_tls, backend_shared, created_by, created_at, updated_at, "
    + limits.columns()
)


@dataclass(frozen=True, slots=True)
class Instance:
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    memory_mb: int
    eviction_policy: str
    persistence: bool
    status: str
    status_reason: str
    provisioner: str
    server_id: uuid.UUID | None
    backend: Backend | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    limits: Limits = NO_LIMITS  # as set on the instance (None: inherit)

    def public(self) -> dict[str, object]:
        """What users see: no backend address or password."""
        return {
            "id": str(self.id),
            "org_id": str(self.org_id),
            "name": self.name,
            "memory_mb": self.memory_mb,
            "eviction_policy": self.eviction_policy,
            "persistence": self.persistence,
            "status": self.status,
            "status_reason": self.status_reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "limits": self.limits.public(),
        }


def _instance(row: asyncpg.Record) -> Instance:
    backend = None
    if row["backend_host"] is not None:
        backend = Backend(
            host=row["backend_host"],
            port=row["backend_port"],
            db=row["backend_db"],
            username=row["backend_username"],
            password=sealing.open_sealed(row["backend_password"], PASSWORD_COLUMN),
            tls=row["backend_tls"],
            shared=row["backend_shared"],
        )
    return Instance(
        id=row["id"],
        org_id=row["org_id"],
        name=row["name"],
        memory_mb=row["memory_mb"],
        eviction_policy=row["eviction_policy"],
        persistence=row["persistence"],
        status=row["status"],
        status_reason=row["status_reason"],
        provisioner=row["provisioner"],
        server_id=row["server_id"],
        backend=backend,
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        limits=limits.from_row(row),
    )


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"this organization already has an instance named {name!r}; choose another name",
        code="instance_name_taken",
    )


async def create_instance(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    name: str,
    memory_mb: int,
    eviction_policy: str,
    persistence: bool,
    provisioner: str,
    created_by: uuid.UUID | None,
) -> Instance:
    """Insert a `provisioning` instance after checking the instance and memory quotas; call
    inside the creating transaction (the quota row stays locked until it ends)."""
    await org_quotas.check_quota(conn, org_id, "instances", 1)
    await org_quotas.check_quota(conn, org_id, "memory_mb", memory_mb)
    with map_exceptions("cannot create the instance"):
        try:
            row = await conn.fetchrow(
                "INSERT INTO instances (org_id, name, memory_mb, eviction_policy, persistence, "
                "provisioner, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                f"RETURNING {_COLUMNS}",
                org_id,
                name,
                memory_mb,
                eviction_policy,
                persistence,
                provisioner,
                created_by,
            )
        except asyncpg.UniqueViolationError:
            raise _name_taken(name) from None
    await changes.announce(conn, "instance", row["id"], org_id)
    return _instance(row)


async def get_instance(
    conn: asyncpg.Connection, org_id: uuid.UUID, instance_id: uuid.UUID, *, lock: bool = False
) -> Instance:
    """One instance of the org; another org's instance is NotFound, like a missing one."""
    with map_exceptions("cannot read the instance"):
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM instances WHERE id = $1 AND org_id = $2"
            + (" FOR UPDATE" if lock else ""),
            instance_id,
            org_id,
        )
    if row is None:
        raise NotFound("no such instance in this organization", code="instance_not_found")
    return _instance(row)


async def list_instances(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Instance]:
    after_at, after_id = after if after else (None, None)
    with map_exceptions("cannot list instances"):
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM instances WHERE org_id = $1 AND "
            "($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) "
            "ORDER BY created_at, id LIMIT $4",
            org_id,
            after_at,
            after_id,
            limit,
        )
    return [_instance(r) for r in rows]


async def all_instances(
    conn: asyncpg.Connection, *, org_id: uuid.UUID | None = None
) -> list[Instance]:
    """Every instance, or every one of an org (re-adoption at start-up, org deletion)."""
    with map_exceptions("cannot list instances"):
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM instances WHERE $1::uuid IS NULL OR org_id = $1 "
            "ORDER BY created_at, id FOR UPDATE",
            org_id,
        )
    return [_instance(r) for r in rows]


async def update_instance(
    conn: asyncpg.Connection,
    instance: Instance,
    *,
    name: str | None = None,
    memory_mb: int | None = None,
    eviction_policy: str | None = None,
    persistence: bool | None = None,
) -> Instance:
    """Change name, memory (quota-checked for the growth), eviction policy or persistence; in
    a transaction."""
    if memory_mb is not None and memory_mb > instance.memory_mb:
        await org_quotas.check_quota(
            conn, instance.org_id, "memory_mb", memory_mb - instance.memory_mb
        )
    with map_exceptions("cannot change the instance"):
        try:
            row = await conn.fetchrow(
                "UPDATE instances SET name = coalesce($2, name), "
                "memory_mb = coalesce($3, memory_mb), "
                "eviction_policy = coalesce($4, eviction_policy), "
                "persistence = coalesce($5, persistence), updated_at = now() "
                f"WHERE id = $1 RETURNING {_COLUMNS}",
                instance.id,
                name,
                memory_mb,
                eviction_policy,
                persistence,
            )
        except asyncpg.UniqueViolationError:
            raise _name_taken(name or instance.name) from None
    await changes.notify(conn, "instance", instance.id, instance.org_id)
    return _instance(row)


async def set_status(
    conn: asyncpg.Connection,
    instance_id: uuid.UUID,
    status: str,
    reason: str = "",
    *,
    backend: Backend | None = None,
    server_id: uuid.UUID | None = None,
) -> Instance | None:
    """Record a provisioning outcome (and the backend, once known); None if it was deleted."""
    with map_exceptions("cannot record the instance's status"):
        row = await conn.fetchrow(
            "UPDATE instances SET status = $2, status_reason = $3, "
            "backend_host = coalesce($4, backend_host), backend_port = coalesce($5, backend_port),"
            " backend_db = coalesce($6, backend_db), "
            "backend_username = coalesce($7, backend_username), "
            "backend_password = coalesce($8, backend_password), "
            "backend_tls = coalesce($9, backend_tls), "
            "backend_shared = coalesce($10, backend_shared), "
            "server_id = coalesce($11, server_id), updated_at = now() "
            f"WHERE id = $1 RETURNING {_COLUMNS}",
            instance_id,
            status,
            reason[:1000],
            backend.host if backend else None,
            backend.port if backend else None,
            backend.db if backend else None,
            backend.username if backend else None,
            sealing.seal(backend.password, PASSWORD_COLUMN) if backend else None,
            backend.tls if backend else None,
            backend.shared if backend else None,
            server_id,
        )
    # e.g. failed: keys stop opening it; running: the console shows it
    await changes.notify(conn, "instance", instance_id, None if row is None else row["org_id"])
    return None if row is None else _instance(row)


async def delete_instance(conn: asyncpg.Connection, instance_id: uuid.UUID) -> None:
    """Delete the row; its API keys go with it (ON DELETE CASCADE); gateways are told."""
    with map_exceptions("cannot delete the instance"):
        org_id = await conn.fetchval(
            "DELETE FROM instances WHERE id = $1 RETURNING org_id", instance_id
        )
    await changes.notify(conn, "instance", instance_id, org_id)


async def count_instances(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    with map_exceptions("cannot count instances"):
        return int(await conn.fetchval("SELECT count(*) FROM instances WHERE org_id = $1", org_id))


async def memory_in_use(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    with map_exceptions("cannot count instance memory"):
        value = await conn.fetchval(
            "SELECT coalesce(sum(memory_mb), 0) FROM instances WHERE org_id = $1", org_id
        )
    return int(value)


org_quotas.USAGE["instances"] = count_instances
org_quotas.USAGE["memory_mb"] = memory_in_use
