"""Connections to Postgres, and the few statements that act on whole databases.

Every asyncpg and socket failure leaves this package as a `StoreError`, so the planes above
handle one type (the control plane answers 503; the data plane serves from its cache).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator

import asyncpg

from redisgate.errors import StoreError

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CONNECT_TIMEOUT_S = 10.0


@contextlib.contextmanager
def map_exceptions(what: str) -> Iterator[None]:
    """Turn asyncpg and socket errors into StoreError, saying what we were doing."""
    try:
        yield
    except StoreError:
        raise
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise StoreError(f"{what}: {exc}") from exc


async def connect(dsn: str) -> asyncpg.Connection:
    with map_exceptions("cannot connect to PostgreSQL"):
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)


@contextlib.asynccontextmanager
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One short-lived connection (migrations, admin statements)."""
    conn = await connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    with map_exceptions("cannot connect to PostgreSQL"):
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT_S
        )
        return pool


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise StoreError(f"invalid database name {name!r}")


async def database_exists(conn: asyncpg.Connection, name: str) -> bool:
    with map_exceptions("cannot list databases"):
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))


async def create_database(conn: asyncpg.Connection, name: str, template: str | None = None) -> None:
    """CREATE DATABASE (optionally as a copy of `template`, which must have no connections)."""
    _check_identifier(name)
    sql = f'CREATE DATABASE "{name}"'
    if template is not None:
        _check_identifier(template)
        sql += f' TEMPLATE "{template}"'
    with map_exceptions(f"cannot create database {name}"):
        await conn.execute(sql)


async def ensure_database(conn: asyncpg.Connection, name: str) -> bool:
    """Create database `name` unless it exists; True when it was created."""
    if await database_exists(conn, name):
        return False
    try:
        await create_database(conn, name)
    except StoreError as exc:
        if isinstance(exc.__cause__, asyncpg.DuplicateDatabaseError):
            return False
        raise
    return True


async def drop_database(conn: asyncpg.Connection, name: str) -> None:
    _check_identifier(name)
    with map_exceptions(f"cannot drop database {name}"):
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
