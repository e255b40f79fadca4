"""Real services for the whole suite, started by the same launcher `redisgate dev` uses.

PostgreSQL and redis-server start once per test session, on free ports in temporary folders,
and stop at the end (also when a test fails or the run is interrupted: the launcher gives every
child a parent-death signal too). Each test that needs a database gets a fresh one, copied from
a migrated template in a few milliseconds (`CREATE DATABASE ... TEMPLATE ...`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from redisgate.launcher.postgres import PostgresServer
from redisgate.launcher.redis import RedisServer
from redisgate.store import db, sealing
from redisgate.store.migrations import default_migrations_dir, migrate

TEMPLATE_DB = "rg_template"
# The keyring that seals backend passwords in this test process (both planes use it).
TEST_SECRET_KEY = "dGVzdC1iYWNrZW5kLXNlY3JldC1rZXktMzItYnl0ZXM"
_db_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def backend_secret_keys() -> None:
    """One keyring for the whole process, set before any app or gateway loads its own."""
    sealing.configure(sealing.SecretBox((sealing.decode_key(TEST_SECRET_KEY),)))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def migrated_template(postgres_server: PostgresServer) -> str:
    """A database with every migration applied, to copy per test."""

    async def build() -> None:
        async with db.connection(postgres_server.dsn()) as admin:
            await db.create_database(admin, TEMPLATE_DB)
        async with db.connection(postgres_server.dsn(TEMPLATE_DB)) as conn:
            await migrate(conn, default_migrations_dir())

    asyncio.run(build())
    return TEMPLATE_DB


async def _fresh_database(server: PostgresServer, template: str | None) -> AsyncIterator[str]:
    name = f"rg_test_{os.getpid()}_{next(_db_counter)}"
    async with db.connection(server.dsn()) as admin:
        await db.create_database(admin, name, template=template)
    try:
        yield server.dsn(name)
    finally:
        async with db.connection(server.dsn()) as admin:
            await db.drop_database(admin, name)


@pytest.fixture
async def database_url(
    postgres_server: PostgresServer, migrated_template: str
) -> AsyncIterator[str]:
    """URL of a fresh, fully migrated database of this test's own."""
    async for url in _fresh_database(postgres_server, migrated_template):
        yield url


@pytest.fixture
async def empty_database_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """URL of a fresh database with nothing applied."""
    async for url in _fresh_database(postgres_server, None):
        yield url


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
