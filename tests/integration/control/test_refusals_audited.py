"""Failed logins and 403s are audited, at most a budget of rows per address per minute."""

from __future__ import annotations

from redisgate.store import db
from tests.integration.control.conftest import api_for, control_settings


async def test_failed_logins_are_audited_within_the_budget(database_url: str) -> None:
    settings = control_settings(database_url, audit_refusals_per_minute="3")
    async for api in api_for(settings):
        user = await api.register()
        for i in range(6):
            email = user["email"] if i == 0 else f"nobody{i}@example.com"
            bad = await api.post("/v1/auth/login", json={"email": email, "password": "wrong!"})
            assert bad.status == 401
    async with db.connection(database_url) as conn:
        rows = await conn.fetch(
            "SELECT actor_id, org_id, target_type, target_id, client_addr, after::text "
            "FROM audit_log WHERE action = 'auth.login_failed' ORDER BY id"
        )
    assert len(rows) == 3
    assert all(r["actor_id"] is None and r["org_id"] is None for r in rows)
    assert rows[0]["target_type"] == "user" and rows[0]["target_id"] == user["user"]["id"]
    assert rows[1]["target_type"] == "email" and rows[1]["target_id"] == "nobody1@example.com"
    assert rows[0]["client_addr"] == "127.0.0.1"


async def test_403s_are_audited(database_url: str) -> None:
    async for api in api_for(control_settings(database_url)):
        user = await api.register()
        denied = await api.get("/v1/admin/servers", token=user["access_token"])
        assert denied.status == 403
    async with db.connection(database_url) as conn:
        row = await conn.fetchrow(
            "SELECT actor_id, target_id, after::text FROM audit_log WHERE action = 'access.denied'"
        )
    assert row is not None and str(row["actor_id"]) == user["user"]["id"]
    assert row["target_id"] == "GET /v1/admin/servers"
    assert "platform_admin_only" in row["after"]
