"""The audit log: one row per mutating action, written in the transaction of the change."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from redisgate.store.db import map_exceptions


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it and from where: the part of an audit row the request supplies."""

    user_id: uuid.UUID | None
    client_addr: str
    request_id: str


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    org_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str
    client_addr: str
    request_id: str
    before: Any
    after: Any
    created_at: datetime

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "org_id": None if self.org_id is None else str(self.org_id),
            "actor_id": None if self.actor_id is None else str(self.actor_id),
            "action": self.action,
            "target": {"type": self.target_type, "id": self.target_id},
            "client_addr": self.client_addr,
            "request_id": self.request_id,
            "before": self.before,
            "after": self.after,
            "created_at": self.created_at.isoformat(),
        }


async def record(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    *,
    org_id: uuid.UUID | None,
    target_type: str,
    target_id: object,
    before: Any = None,
    after: Any = None,
) -> None:
    with map_exceptions("cannot write the audit log"):
        await conn.execute(
            "INSERT INTO audit_log (org_id, actor_id, action, target_type, target_id, "
            "client_addr, request_id, before, after) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb)",
            org_id,
            actor.user_id,
            action,
            target_type,
            str(target_id),
            actor.client_addr,
            actor.request_id,
            None if before is None else json.dumps(before),
            None if after is None else json.dumps(after),
        )


async def list_entries(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    action: str | None = None,
    actor_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Entry]:
    """The org's entries, newest first, paged by id (`before_id` is the cursor)."""
    with map_exceptions("cannot read the audit log"):
        rows = await conn.fetch(
            "SELECT id, org_id, actor_id, action, target_type, target_id, client_addr, "
            "request_id, before::text, after::text, created_at FROM audit_log "
            "WHERE org_id = $1 AND ($2::text IS NULL OR action = $2) "
            "AND ($3::uuid IS NULL OR actor_id = $3) "
            "AND ($4::timestamptz IS NULL OR created_at >= $4) "
            "AND ($5::timestamptz IS NULL OR created_at < $5) "
            "AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7",
            org_id,
            action,
            actor_id,
            since,
            until,
            before_id,
            limit,
        )
    return [
        Entry(
            id=r["id"],
            org_id=r["org_id"],
            actor_id=r["actor_id"],
            action=r["action"],
            target_type=r["target_type"],
            target_id=r["target_id"],
            client_addr=r["client_addr"],
            request_id=r["request_id"],
            before=None if r["before"] is None else json.loads(r["before"]),
            after=None if r["after"] is None else json.loads(r["after"]),
            created_at=r["created_at"],
        )
        for r in rows
    ]
