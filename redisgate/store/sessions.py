"""Login sessions and their rotating refresh tokens (stored only as SHA-256 digests).

A session is one login on one device. Each refresh hands out a new token and marks the old one
used; a used token presented again means someone kept a copy, so the whole session (the token
family) is revoked and both holders must log in again.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from redisgate.store import changes
from redisgate.store.db import map_exceptions

_COLUMNS = "id, user_id, remember_me, user_agent, client_addr, created_at, last_used_at, expires_at"


@dataclass(frozen=True, slots=True)
class Session:
    id: uuid.UUID
    user_id: uuid.UUID
    remember_me: bool
    user_agent: str
    client_addr: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


class Rotation(enum.Enum):
    ROTATED = "rotated"
    UNKNOWN = "unknown"  # never issued (or its session was deleted)
    REUSED = "reused"  # already rotated: the session is now revoked
    ENDED = "ended"  # the session expired or was revoked


def _session(row: asyncpg.Record) -> Session:
    return Session(**{k: row[k] for k in _COLUMNS.split(", ")})


async def create_session(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    token_hash: bytes,
    *,
    remember_me: bool,
    ttl_s: int,
    user_agent: str,
    client_addr: str,
) -> Session:
    with map_exceptions("cannot create the session"):
        row = await conn.fetchrow(
            f"INSERT INTO sessions (user_id, remember_me, user_agent, client_addr, expires_at) "
            f"VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING {_COLUMNS}",
            user_id,
            remember_me,
            user_agent[:300],
            client_addr,
            float(ttl_s),
        )
        await conn.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)",
            token_hash,
            row["id"],
        )
    return _session(row)


async def rotate(
    conn: asyncpg.Connection, token_hash: bytes, new_hash: bytes
) -> tuple[Rotation, Session | None]:
    """Trade a refresh token for `new_hash`; call in a transaction, which must commit even on
    REUSED (the revocation is the point)."""
    with map_exceptions("cannot refresh the session"):
        row = await conn.fetchrow(
            f"SELECT t.used_at, s.revoked_at, s.expires_at > now() AS live, "
            f"{', '.join('s.' + c for c in _COLUMNS.split(', '))} "
            "FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
            "WHERE t.token_hash = $1 FOR UPDATE OF t, s",
            token_hash,
        )
        if row is None:
            return Rotation.UNKNOWN, None
        session = _session(row)
        if row["revoked_at"] is not None or not row["live"]:
            return Rotation.ENDED, session
        if row["used_at"] is not None:
            await revoke(conn, session.user_id, session.id, "reuse")
            return Rotation.REUSED, session
        await conn.execute(
            "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1", token_hash
        )
        await conn.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)",
            new_hash,
            session.id,
        )
        await conn.execute("UPDATE sessions SET last_used_at = now() WHERE id = $1", session.id)
    return Rotation.ROTATED, session


async def find_by_token(conn: asyncpg.Connection, token_hash: bytes) -> Session | None:
    with map_exceptions("cannot read the session"):
        row = await conn.fetchrow(
            f"SELECT {', '.join('s.' + c for c in _COLUMNS.split(', '))} "
            "FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
            "WHERE t.token_hash = $1",
            token_hash,
        )
    return None if row is None else _session(row)


async def revoke(
    conn: asyncpg.Connection, user_id: uuid.UUID, session_id: uuid.UUID, why: str
) -> bool:
    """Revoke one live session of `user_id`; False if there is no such live session."""
    with map_exceptions("cannot revoke the session"):
        status = await conn.execute(
            "UPDATE sessions SET revoked_at = now(), revoked_why = $3 "
            "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            session_id,
            user_id,
            why,
        )
    if status == "UPDATE 0":
        return False
    await changes.announce(conn, "session", user_id, None)  # its live-update streams end
    return True


async def revoke_others(
    conn: asyncpg.Connection, user_id: uuid.UUID, keep: uuid.UUID, why: str
) -> int:
    with map_exceptions("cannot revoke sessions"):
        status = await conn.execute(
            "UPDATE sessions SET revoked_at = now(), revoked_why = $3 "
            "WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
            user_id,
            keep,
            why,
        )
    ended = int(status.split()[-1])
    if ended:
        await changes.announce(conn, "session", user_id, None)
    return ended


async def list_live(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Session]:
    """The user's live sessions, oldest first, keyset-paged by (created_at, id)."""
    after_at, after_id = after if after else (None, None)
    with map_exceptions("cannot list sessions"):
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL "
            "AND expires_at > now() AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) "
            "ORDER BY created_at, id LIMIT $4",
            user_id,
            after_at,
            after_id,
            limit,
        )
    return [_session(r) for r in rows]


async def prune(conn: asyncpg.Connection, keep_s: float) -> int:
    """Delete sessions (and their tokens) that ended more than `keep_s` ago; how many."""
    with map_exceptions("cannot prune sessions"):
        status = await conn.execute(
            "DELETE FROM sessions WHERE expires_at < now() - make_interval(secs => $1) "
            "OR revoked_at < now() - make_interval(secs => $1)",
            float(keep_s),
        )
    return int(status.split()[-1])
