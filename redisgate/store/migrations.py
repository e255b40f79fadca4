"""Forward-only SQL migrations: each `NNN_name.sql` applied once, in order, in a transaction.

Several processes may start at once (gateways, control API, `redisgate migrate`), so the whole
run holds a Postgres advisory lock; whoever comes second finds the work done. Every applied
file is recorded with a SHA-256 of its text: if a file changes after it was applied, start-up
stops and names the file, because the database no longer matches what the code believes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from redisgate.errors import MigrationError, StoreError

log = logging.getLogger(__name__)

# Any constant works as long as every RedisGate process uses the same one: "rg-migr".
ADVISORY_LOCK_ID = 0x72672D6D69677200
_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def default_migrations_dir() -> Path:
    """The migrations shipped with RedisGate: the repository's folder, or the wheel's copy."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "migrations", package / "_migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError("no migrations folder found; set migrations_dir")


def discover(folder: Path) -> list[Migration]:
    """The migrations in `folder`, ordered; bad names and duplicate numbers are errors."""
    if not folder.is_dir():
        raise MigrationError(f"migrations folder {folder} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name} and {found[version].path.name} share the number {version}"
            )
        found[version] = Migration(version, match.group(2), path, path.read_text())
    return [found[v] for v in sorted(found)]


async def applied(conn: asyncpg.Connection) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of what the database has applied ({} on a new database)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


def check_applied(migrations: list[Migration], done: dict[int, tuple[str, str]]) -> None:
    """Refuse to go on when an applied file changed, or the database is ahead of the code."""
    known = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(done.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version:03d}_{name}.sql applied, but this "
                f"RedisGate does not have that file: run a RedisGate at least as new as the "
                f"one that migrated this database"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.path.name} changed after it was applied (checksum mismatch): "
                f"migrations are forward-only; restore the file and add a new migration instead"
            )


async def pending(conn: asyncpg.Connection, folder: Path) -> list[Migration]:
    """The migrations not yet applied (after checking the applied ones are unchanged)."""
    migrations = discover(folder)
    done = await applied(conn)
    check_applied(migrations, done)
    return [m for m in migrations if m.version not in done]


async def migrate(conn: asyncpg.Connection, folder: Path) -> list[Migration]:
    """Apply every pending migration under the advisory lock; return those this call applied."""
    migrations = discover(folder)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
        try:
            await conn.execute(_CREATE_TABLE)
            done = await applied(conn)
            check_applied(migrations, done)
            ran = []
            for migration in migrations:
                if migration.version in done:
                    continue
                log.info("applying migration %s", migration.path.name)
                try:
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES ($1, $2, $3)",
                            migration.version,
                            migration.name,
                            migration.checksum,
                        )
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
                ran.append(migration)
            return ran
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
    except (OSError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"lost the database connection while migrating: {exc}") from exc
