"""Users: accounts that log in to the control plane (emails unique whatever their case)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from redisgate.errors import Conflict, NotFound, StoreError
from redisgate.store.db import map_exceptions

_COLUMNS = "id, email, name, is_platform_admin, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    email: str
    name: str
    is_platform_admin: bool
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "email": self.email,
            "name": self.name,
            "is_platform_admin": self.is_platform_admin,
            "created_at": self.created_at.isoformat(),
        }


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        is_platform_admin=row["is_platform_admin"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def create_user(
    conn: asyncpg.Connection,
    email: str,
    name: str,
    password_hash: str,
    *,
    is_platform_admin: bool = False,
) -> User:
    """Insert a user; a taken email (any case) is a Conflict that says no more than that."""
    try:
        with map_exceptions("cannot create the user"):
            row = await conn.fetchrow(
                f"INSERT INTO users (email, name, password_hash, is_platform_admin) "
                f"VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
                email,
                name,
                password_hash,
                is_platform_admin,
            )
    except StoreError as exc:
        if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
            raise Conflict(
                "an account with this email already exists; log in instead",
                code="email_taken",
            ) from None
        raise
    return _user(row)


async def get_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> User | None:
    with map_exceptions("cannot read the user"):
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
    return None if row is None else _user(row)


async def get_user_in_session(
    conn: asyncpg.Connection, user_id: uuid.UUID, session_id: uuid.UUID
) -> User | None:
    """The user, if `session_id` is theirs and still live (so logout ends access tokens too)."""
    with map_exceptions("cannot read the user"):
        row = await conn.fetchrow(
            f"SELECT {', '.join('u.' + c for c in _COLUMNS.split(', '))} FROM users u "
            "JOIN sessions s ON s.user_id = u.id "
            "WHERE u.id = $1 AND s.id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()",
            user_id,
            session_id,
        )
    return None if row is None else _user(row)


async def find_by_email(conn: asyncpg.Connection, email: str) -> User | None:
    with map_exceptions("cannot read the user"):
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower($1)", email
        )
    return None if row is None else _user(row)


async def get_login(conn: asyncpg.Connection, email: str) -> tuple[User, str] | None:
    """The user with this email and their password hash."""
    with map_exceptions("cannot read the user"):
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)", email
        )
    return None if row is None else (_user(row), row["password_hash"])


async def get_password_hash(conn: asyncpg.Connection, user_id: uuid.UUID) -> str:
    with map_exceptions("cannot read the user"):
        value = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
    if value is None:
        raise NotFound("user not found", code="user_not_found")
    return str(value)


async def set_password_hash(conn: asyncpg.Connection, user_id: uuid.UUID, value: str) -> None:
    with map_exceptions("cannot update the password"):
        await conn.execute(
            "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
            user_id,
            value,
        )


async def set_name(conn: asyncpg.Connection, user_id: uuid.UUID, name: str) -> User:
    with map_exceptions("cannot update the user"):
        row = await conn.fetchrow(
            f"UPDATE users SET name = $2, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            user_id,
            name,
        )
    if row is None:
        raise NotFound("user not found", code="user_not_found")
    return _user(row)
