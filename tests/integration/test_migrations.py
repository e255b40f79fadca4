"""The migration runner against a real PostgreSQL: order, once, lock, refusal of changed files."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from redisgate.errors import MigrationError
from redisgate.store import db
from redisgate.store.migrations import (
    applied,
    default_migrations_dir,
    discover,
    migrate,
    pending,
)


def write_migrations(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


LOG_TABLE = "CREATE TABLE log (step int, at timestamptz DEFAULT clock_timestamp());"


async def test_applies_in_numeric_order_and_only_once(
    tmp_path: Path, empty_database_url: str
) -> None:
    folder = write_migrations(
        tmp_path,
        {
            "010_third.sql": "INSERT INTO log (step) VALUES (10);",
            "001_first.sql": LOG_TABLE + "INSERT INTO log (step) VALUES (1);",
            "002_second.sql": "INSERT INTO log (step) VALUES (2);",
            "README.txt": "not a migration",
        },
    )
    async with db.connection(empty_database_url) as conn:
        ran = await migrate(conn, folder)
        assert [m.version for m in ran] == [1, 2, 10]
        assert await migrate(conn, folder) == []
        steps = [r["step"] for r in await conn.fetch("SELECT step FROM log ORDER BY at")]
        assert steps == [1, 2, 10]
        assert sorted(await applied(conn)) == [1, 2, 10]
        assert await pending(conn, folder) == []


async def test_later_files_are_applied_later(tmp_path: Path, empty_database_url: str) -> None:
    folder = write_migrations(tmp_path, {"001_first.sql": LOG_TABLE})
    async with db.connection(empty_database_url) as conn:
        await migrate(conn, folder)
        write_migrations(folder, {"002_more.sql": "INSERT INTO log (step) VALUES (2);"})
        assert [m.name for m in await pending(conn, folder)] == ["more"]
        assert [m.version for m in await migrate(conn, folder)] == [2]


async def test_two_concurrent_runners_apply_each_file_once(
    tmp_path: Path, empty_database_url: str
) -> None:
    # The first migration sleeps, so the second runner arrives while the first holds the lock.
    folder = write_migrations(
        tmp_path,
        {
            "001_slow.sql": LOG_TABLE + "SELECT pg_sleep(0.3); INSERT INTO log (step) VALUES (1);",
            "002_next.sql": "INSERT INTO log (step) VALUES (2);",
        },
    )
    async with db.connection(empty_database_url) as a, db.connection(empty_database_url) as b:
        ran_a, ran_b = await asyncio.gather(migrate(a, folder), migrate(b, folder))
        assert sorted(len(r) for r in (ran_a, ran_b)) == [0, 2]
        assert [r["step"] for r in await a.fetch("SELECT step FROM log ORDER BY step")] == [1, 2]


async def test_changed_file_is_refused_by_name(tmp_path: Path, empty_database_url: str) -> None:
    folder = write_migrations(tmp_path, {"001_first.sql": LOG_TABLE})
    async with db.connection(empty_database_url) as conn:
        await migrate(conn, folder)
        (folder / "001_first.sql").write_text(LOG_TABLE + "-- edited\n")
        with pytest.raises(MigrationError, match=r"001_first.sql changed after it was applied"):
            await migrate(conn, folder)
        with pytest.raises(MigrationError, match=r"001_first.sql changed"):
            await pending(conn, folder)


async def test_database_ahead_of_code_is_refused(tmp_path: Path, empty_database_url: str) -> None:
    folder = write_migrations(tmp_path, {"001_first.sql": LOG_TABLE, "002_x.sql": "SELECT 1;"})
    async with db.connection(empty_database_url) as conn:
        await migrate(conn, folder)
        (folder / "002_x.sql").unlink()
        with pytest.raises(MigrationError, match=r"002_x.sql applied, but this RedisGate does not"):
            await migrate(conn, folder)


async def test_failing_migration_rolls_back_and_names_the_file(
    tmp_path: Path, empty_database_url: str
) -> None:
    folder = write_migrations(
        tmp_path,
        {"001_ok.sql": LOG_TABLE, "002_bad.sql": "INSERT INTO log (step) VALUES (2); SELEC 1;"},
    )
    async with db.connection(empty_database_url) as conn:
        with pytest.raises(MigrationError, match=r"002_bad.sql failed: syntax error"):
            await migrate(conn, folder)
        assert sorted(await applied(conn)) == [1]
        assert await conn.fetchval("SELECT count(*) FROM log") == 0  # 002's insert rolled back
        # The lock was released: a fixed file can be applied by the next run.
        (folder / "002_bad.sql").write_text("INSERT INTO log (step) VALUES (2);")
        assert [m.version for m in await migrate(conn, folder)] == [2]


def test_bad_names_and_duplicates_are_refused(tmp_path: Path) -> None:
    write_migrations(tmp_path / "a", {"1_short.sql": ""})
    with pytest.raises(MigrationError, match=r"named NNN_lowercase_name.sql"):
        discover(tmp_path / "a")
    write_migrations(tmp_path / "b", {"001_a.sql": "", "001_b.sql": ""})
    with pytest.raises(MigrationError, match=r"share the number 1"):
        discover(tmp_path / "b")
    with pytest.raises(MigrationError, match=r"does not exist"):
        discover(tmp_path / "missing")


def test_shipped_migrations_are_well_formed() -> None:
    migrations = discover(default_migrations_dir())
    assert migrations, "the project ships at least one migration"
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))


async def test_migrate_command_applies_and_checks(empty_database_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redisgate",
        "migrate",
        "--check",
        "--database-url",
        empty_database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 1 and b"pending: 001_installation.sql" in out
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redisgate",
        "migrate",
        "--database-url",
        empty_database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    assert b"applied: 001_installation.sql" in out
