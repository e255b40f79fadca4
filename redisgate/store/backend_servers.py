"""Backend servers of the `static` provisioner: Redis servers an operator registered, one db
per instance. `allocate_db` hands out the lowest free db of the first server with room."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from redisgate.backends import Backend
from redisgate.errors import Conflict, NotFound
from redisgate.store import sealing
from redisgate.store.db import map_exceptions

_COLUMNS = "id, name, host, port, username, password, tls, databases, created_at"


@dataclass(frozen=True, slots=True)
class Server:
    id: uuid.UUID
    name: str
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    databases: int
    created_at: datetime

    def public(self, used: int | None = None) -> dict[str, object]:
        """For platform admins: everything but the password."""
        out: dict[str, object] = {
            "id": str(self.id),
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "tls": self.tls,
            "databases": self.databases,
            "created_at": self.created_at.isoformat(),
        }
        if used is not None:
            out["databases_used"] = used
        return out

    def backend(self, db: int) -> Backend:
        return Backend(
            host=self.host,
            port=self.port,
            db=db,
            username=self.username,
            password=self.password,
            tls=self.tls,
            shared=True,  # other dbs of the server belong to other tenants
        )


PASSWORD_COLUMN = "backend_servers.password"


def _server(row: asyncpg.Record) -> Server:
    fields = {k: row[k] for k in _COLUMNS.split(", ")}
    fields["password"] = sealing.open_sealed(fields["password"], PASSWORD_COLUMN)
    return Server(**fields)


async def create_server(
    conn: asyncpg.Connection,
    *,
    name: str,
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    tls: bool,
    databases: int,
) -> Server:
    with map_exceptions("cannot register the server"):
        try:
            row = await conn.fetchrow(
                "INSERT INTO backend_servers (name, host, port, username, password, tls, "
                f"databases) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
                name,
                host,
                port,
                username,
                sealing.seal(password, PASSWORD_COLUMN),
                tls,
                databases,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                f"a server named {name!r} exists already", code="server_name_taken"
            ) from None
    return _server(row)


async def list_servers(conn: asyncpg.Connection) -> list[tuple[Server, int]]:
    """Every server with the number of its dbs in use."""
    with map_exceptions("cannot list servers"):
        rows = await conn.fetch(
            f"SELECT {', '.join('s.' + c for c in _COLUMNS.split(', '))}, "
            "(SELECT count(*) FROM instances i WHERE i.server_id = s.id) AS used "
            "FROM backend_servers s ORDER BY s.created_at, s.id"
        )
    return [(_server(r), int(r["used"])) for r in rows]


async def get_server(conn: asyncpg.Connection, server_id: uuid.UUID) -> Server:
    with map_exceptions("cannot read the server"):
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM backend_servers WHERE id = $1", server_id
        )
    if row is None:
        raise NotFound("no such server", code="server_not_found")
    return _server(row)


async def delete_server(conn: asyncpg.Connection, server_id: uuid.UUID) -> None:
    with map_exceptions("cannot remove the server"):
        try:
            result = await conn.execute("DELETE FROM backend_servers WHERE id = $1", server_id)
        except asyncpg.ForeignKeyViolationError:
            raise Conflict(
                "instances still live on this server: delete them first", code="server_in_use"
            ) from None
    if result.endswith(" 0"):
        raise NotFound("no such server", code="server_not_found")


async def allocate_db(conn: asyncpg.Connection) -> tuple[Server, int] | None:
    """The first free (server, db), locking the server rows so concurrent creates queue; call
    inside the creating transaction. None when every server is full."""
    with map_exceptions("cannot allocate a database"):
        await conn.execute("SELECT 1 FROM backend_servers ORDER BY id FOR UPDATE")
        row = await conn.fetchrow(
            f"SELECT {', '.join('s.' + c for c in _COLUMNS.split(', '))}, d.db "
            "FROM backend_servers s CROSS JOIN LATERAL generate_series(0, s.databases - 1) d(db) "
            "WHERE NOT EXISTS (SELECT 1 FROM instances i "
            "WHERE i.server_id = s.id AND i.backend_db = d.db) "
            "ORDER BY s.created_at, s.id, d.db LIMIT 1"
        )
    if row is None:
        return None
    return _server(row), int(row["db"])
