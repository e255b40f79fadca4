"""Organizations: the unit that owns instances, keys and quotas, and their memberships."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from redisgate.errors import Conflict, NotFound, StoreError
from redisgate.store import changes
from redisgate.store.db import map_exceptions
from redisgate.store.org_quotas import QuotaLimits

_COLUMNS = "id, name, personal, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class Org:
    id: uuid.UUID
    name: str
    personal: bool
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "name": self.name,
            "personal": self.personal,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Member:
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    joined_at: datetime

    def public(self) -> dict[str, object]:
        return {
            "user_id": str(self.user_id),
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "joined_at": self.joined_at.isoformat(),
        }


def _org(row: asyncpg.Record) -> Org:
    return Org(**{k: row[k] for k in _COLUMNS.split(", ")})


def _member(row: asyncpg.Record) -> Member:
    return Member(
        user_id=row["user_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        joined_at=row["created_at"],
    )


async def create_org(
    conn: asyncpg.Connection, name: str, owner_id: uuid.UUID, limits: QuotaLimits, *, personal: bool
) -> Org:
    """The org, its owner's membership and its quota row; call inside a transaction."""
    with map_exceptions("cannot create the organization"):
        row = await conn.fetchrow(
            f"INSERT INTO organizations (name, personal, created_by) VALUES ($1, $2, $3) "
            f"RETURNING {_COLUMNS}",
            name,
            personal,
            owner_id,
        )
        await conn.execute(
            "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')",
            row["id"],
            owner_id,
        )
        await conn.execute(
            "INSERT INTO org_quotas (org_id, max_instances, max_memory_mb, max_api_keys) "
            "VALUES ($1, $2, $3, $4)",
            row["id"],
            limits.max_instances,
            limits.max_memory_mb,
            limits.max_api_keys,
        )
    return _org(row)


async def get_org(conn: asyncpg.Connection, org_id: uuid.UUID, *, lock: bool = False) -> Org:
    """The org (locked FOR UPDATE with `lock`, to serialise membership changes)."""
    with map_exceptions("cannot read the organization"):
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM organizations WHERE id = $1" + (" FOR UPDATE" if lock else ""),
            org_id,
        )
    if row is None:
        raise NotFound("organization not found", code="org_not_found")
    return _org(row)


async def has_org(conn: asyncpg.Connection, user_id: uuid.UUID) -> bool:
    with map_exceptions("cannot read memberships"):
        return bool(await conn.fetchval("SELECT 1 FROM memberships WHERE user_id = $1", user_id))


async def list_user_orgs(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 1000,
) -> list[tuple[Org, str, datetime]]:
    """(org, role, joined_at) of each org `user_id` is in, in joining order (keyset-paged)."""
    after_at, after_id = after if after else (None, None)
    with map_exceptions("cannot list organizations"):
        rows = await conn.fetch(
            f"SELECT {', '.join('o.' + c for c in _COLUMNS.split(', '))}, m.role, "
            "m.created_at AS joined_at FROM memberships m "
            "JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 "
            "AND ($2::timestamptz IS NULL OR (m.created_at, m.org_id) > ($2, $3)) "
            "ORDER BY m.created_at, m.org_id LIMIT $4",
            user_id,
            after_at,
            after_id,
            limit,
        )
    return [(_org(r), r["role"], r["joined_at"]) for r in rows]


async def rename_org(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> Org:
    with map_exceptions("cannot update the organization"):
        row = await conn.fetchrow(
            f"UPDATE organizations SET name = $2, updated_at = now() WHERE id = $1 "
            f"RETURNING {_COLUMNS}",
            org_id,
            name,
        )
    if row is None:
        raise NotFound("organization not found", code="org_not_found")
    await changes.announce(conn, "org", org_id, org_id)
    return _org(row)


async def delete_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    """Delete the org; memberships and quota go with it (ON DELETE CASCADE)."""
    with map_exceptions("cannot delete the organization"):
        await conn.execute("DELETE FROM organizations WHERE id = $1", org_id)
    await changes.announce(conn, "org", org_id, org_id)  # its streams end


# --- Memberships ---------------------------------------------------------------------------


async def get_role(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The caller's role in the org, or None when they are not a member (or it is gone)."""
    with map_exceptions("cannot read the membership"):
        value = await conn.fetchval(
            "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id
        )
    return None if value is None else str(value)


_MEMBER_SELECT = (
    "SELECT m.user_id, u.email, u.name, m.role, m.created_at FROM memberships m "
    "JOIN users u ON u.id = m.user_id "
)


async def list_members(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Member]:
    after_at, after_id = after if after else (None, None)
    with map_exceptions("cannot list members"):
        rows = await conn.fetch(
            _MEMBER_SELECT + "WHERE m.org_id = $1 AND "
            "($2::timestamptz IS NULL OR (m.created_at, m.user_id) > ($2, $3)) "
            "ORDER BY m.created_at, m.user_id LIMIT $4",
            org_id,
            after_at,
            after_id,
            limit,
        )
    return [_member(r) for r in rows]


async def get_member(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> Member:
    with map_exceptions("cannot read the member"):
        row = await conn.fetchrow(
            _MEMBER_SELECT + "WHERE m.org_id = $1 AND m.user_id = $2", org_id, user_id
        )
    if row is None:
        raise NotFound("no such member in this organization", code="member_not_found")
    return _member(row)


async def add_member(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> Member:
    try:
        with map_exceptions("cannot add the member"):
            await conn.execute(
                "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)",
                org_id,
                user_id,
                role,
            )
    except StoreError as exc:
        if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
            raise Conflict(
                "this user is already a member; change their role with PATCH instead",
                code="already_member",
            ) from None
        raise
    await changes.announce(conn, "member", user_id, org_id)
    return await get_member(conn, org_id, user_id)


async def set_role(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> Member:
    with map_exceptions("cannot change the role"):
        await conn.execute(
            "UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2",
            org_id,
            user_id,
            role,
        )
    await changes.announce(conn, "member", user_id, org_id)
    return await get_member(conn, org_id, user_id)


async def remove_member(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    with map_exceptions("cannot remove the member"):
        await conn.execute(
            "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id
        )
    await changes.announce(conn, "member", user_id, org_id)  # their streams of it end


async def count_owners(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    with map_exceptions("cannot count owners"):
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner'", org_id
            )
        )


async def count_owned(conn: asyncpg.Connection, user_id: uuid.UUID) -> int:
    """Organizations the user owns, with the user's row locked until the transaction ends (so
    concurrent creates of one account queue behind each other)."""
    with map_exceptions("cannot count the user's organizations"):
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
        value = await conn.fetchval(
            "SELECT count(*) FROM memberships WHERE user_id = $1 AND role = 'owner'", user_id
        )
    return int(value)
