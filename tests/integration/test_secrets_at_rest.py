"""Backend passwords are stored sealed, read back in the clear by the store only, and rows
from before sealing (marked `plain:` by migration 007) keep working until resealed."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from redisgate.backends import Backend
from redisgate.store import api_keys, backend_servers, db, instances, sealing
from redisgate.store.migrations import default_migrations_dir, migrate
from redisgate.store.sealing import SecretBox, decode_key
from tests.conftest import TEST_SECRET_KEY
from tests.integration.proxy.test_pg_source import new_instance, new_key

SECRET = "hunter2-backend-secret"


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with db.connection(database_url) as connection:
        yield connection


async def test_passwords_are_sealed_in_the_rows_and_clear_through_the_store(
    conn: asyncpg.Connection,
) -> None:
    server = await backend_servers.create_server(
        conn,
        name="r1",
        host="127.0.0.1",
        port=6379,
        username=None,
        password=SECRET,
        tls=False,
        databases=4,
    )
    assert server.password == SECRET
    stored = await conn.fetchval("SELECT password FROM backend_servers WHERE id = $1", server.id)
    assert stored.startswith("rgs1:") and SECRET not in stored
    found = await backend_servers.allocate_db(conn)
    assert found is not None and found[0].password == SECRET

    instance = await new_instance(conn, found[0].backend(found[1]))
    row = await conn.fetchval("SELECT backend_password FROM instances WHERE id = $1", instance.id)
    assert row.startswith("rgs1:") and SECRET not in row and row != stored
    assert instance.backend is not None and instance.backend.password == SECRET
    key = await new_key(conn, instance)
    gateway = await api_keys.gateway_key(conn, key.key_id)
    assert gateway is not None and gateway.backend.password == SECRET


async def test_rotation_reseals_with_the_first_key(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = await new_instance(conn, Backend(host="127.0.0.1", port=6379, password=SECRET))
    old_row = await conn.fetchval("SELECT backend_password FROM instances")
    rotated = SecretBox((decode_key(sealing.new_key()), decode_key(TEST_SECRET_KEY)))
    monkeypatch.setattr(sealing, "_box", rotated)
    # Before the reseal the row is under the old key, which is still held: it opens.
    again = await instances.get_instance(conn, instance.org_id, instance.id)
    assert again.backend is not None and again.backend.password == SECRET
    assert await sealing.reseal(conn) == 1
    new_row = await conn.fetchval("SELECT backend_password FROM instances")
    assert rotated.is_current(new_row) and new_row != old_row
    assert await sealing.reseal(conn) == 0  # nothing left to do
    # The old key can now go.
    monkeypatch.setattr(sealing, "_box", SecretBox(rotated.keys[:1]))
    last = await instances.get_instance(conn, instance.org_id, instance.id)
    assert last.backend is not None and last.backend.password == SECRET


async def test_plain_rows_from_before_are_marked_then_sealed(
    tmp_path: Path, empty_database_url: str
) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(default_migrations_dir().glob("*.sql")):
        if int(path.name[:3]) < 7:
            shutil.copy(path, before / path.name)
    async with db.connection(empty_database_url) as conn:
        await migrate(conn, before)
        await conn.execute(
            "INSERT INTO backend_servers (name, host, port, password, databases) "
            "VALUES ('old', '127.0.0.1', 6379, $1, 2)",
            SECRET,
        )
        await migrate(conn, default_migrations_dir())
        marked = await conn.fetchval("SELECT password FROM backend_servers")
        assert marked == "plain:" + SECRET
        listed = await backend_servers.list_servers(conn)
        assert listed[0][0].password == SECRET  # still usable before the reseal
        assert await sealing.reseal(conn) == 1
        sealed = await conn.fetchval("SELECT password FROM backend_servers")
        assert sealed.startswith("rgs1:") and SECRET not in sealed
        assert (await backend_servers.list_servers(conn))[0][0].password == SECRET


async def test_the_control_api_seals_marked_rows_when_it_starts(database_url: str) -> None:
    from tests.integration.control.conftest import api_for, control_settings

    async with db.connection(database_url) as conn:
        await conn.execute(
            "INSERT INTO backend_servers (name, host, port, password, databases) "
            "VALUES ('old', '127.0.0.1', 6379, $1, 2)",
            "plain:" + SECRET,
        )
    async for api in api_for(control_settings(database_url)):
        assert (await api.get("/healthz")).status == 200
    async with db.connection(database_url) as conn:
        sealed = await conn.fetchval("SELECT password FROM backend_servers")
    assert sealing.box().is_current(sealed)
