"""Look-alike emails never make a second account (the cases of issue 13)."""

from __future__ import annotations

import shutil
from pathlib import Path

from redisgate.store import db
from redisgate.store.migrations import default_migrations_dir, migrate
from tests.integration.control.conftest import PASSWORD, Api

CYRILLIC_O = "\u043e"


async def test_look_alikes_of_a_registered_email_do_not_register(api: Api) -> None:
    await api.register("admin@example.com")
    cyrillic = await api.post(
        "/v1/auth/register",
        json={"email": f"adm{CYRILLIC_O}n@example.com", "password": PASSWORD},
    )
    assert cyrillic.status == 422
    assert "scripts" in cyrillic.error["details"]["fields"]["email"]
    fullwidth = await api.post(
        "/v1/auth/register",
        json={"email": "\uff41\uff44\uff4d\uff49\uff4e@EXAMPLE.com", "password": PASSWORD},
    )
    assert fullwidth.status == 409 and fullwidth.error["code"] == "email_taken"
    zero_width = await api.post(
        "/v1/auth/register",
        json={"email": "admin@exa\u200bmple.com", "password": PASSWORD},
    )
    assert zero_width.status == 422
    assert "invisible" in zero_width.error["details"]["fields"]["email"]


async def test_the_stored_email_is_the_normal_form_and_logs_in_from_any_spelling(
    api: Api,
) -> None:
    user = await api.register("\uff42\uff4f\uff42@Example.ORG")
    assert user["user"]["email"] == "bob@example.org"
    for spelling in ("bob@example.org", "BOB@EXAMPLE.ORG", "\uff42\uff4f\uff42@example.org"):
        login = await api.post("/v1/auth/login", json={"email": spelling, "password": PASSWORD})
        assert login.status == 200, spelling


async def test_migration_normalises_stored_emails(tmp_path: Path, empty_database_url: str) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(default_migrations_dir().glob("*.sql")):
        if int(path.name[:3]) < 6:
            shutil.copy(path, before / path.name)
    async with db.connection(empty_database_url) as conn:
        await migrate(conn, before)
        rows = [
            "\uff41\uff4c\uff49\uff43\uff45@Example.COM",  # becomes alice@example.com
            "car\u200bol@example.com",  # becomes carol@example.com
            "dave@example.com",
            "\uff44\uff41\uff56\uff45@example.com",  # would collide with dave: left alone
        ]
        for i, email in enumerate(rows):
            await conn.execute(
                "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, 'x')",
                email,
                f"u{i}",
            )
        await migrate(conn, default_migrations_dir())
        stored = {r["name"]: r["email"] for r in await conn.fetch("SELECT name, email FROM users")}
    assert stored == {
        "u0": "alice@example.com",
        "u1": "carol@example.com",
        "u2": "dave@example.com",
        "u3": "\uff44\uff41\uff56\uff45@example.com",
    }
