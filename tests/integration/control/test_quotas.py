"""Quotas: the GET/PUT routes, platform admins, and the race bound of check_quota."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from redisgate.config import Settings
from redisgate.control.admin import create_user
from redisgate.control.middlewares import status_of
from redisgate.errors import QuotaExceeded, StoreError
from redisgate.store import db, org_quotas, orgs, users
from tests.integration.control.conftest import PASSWORD, Api


async def admin_token(api: Api, settings: Settings) -> str:
    await create_user(settings, "root@example.com", PASSWORD, admin=True)
    login = await api.post(
        "/v1/auth/login", json={"email": "root@example.com", "password": PASSWORD}
    )
    token: str = login.body["access_token"]
    return token


async def test_get_quota_shows_defaults_and_use(api: Api) -> None:
    user = await api.register()
    response = await api.get(f"/v1/orgs/{user['org']['id']}/quota", token=user["access_token"])
    assert response.status == 200
    assert response.body["limits"] == {
        "max_instances": 5,
        "max_memory_mb": 1024,
        "max_api_keys": 20,
    }
    assert response.body["used"] == {"instances": 0, "memory_mb": 0, "api_keys": 0}


async def test_put_quota_is_for_platform_admins(api: Api, settings: Settings) -> None:
    user = await api.register()
    org = user["org"]["id"]
    limits = {"max_instances": 2, "max_memory_mb": 512, "max_api_keys": 3}
    denied = await api.put(f"/v1/orgs/{org}/quota", token=user["access_token"], json=limits)
    assert denied.status == 403 and denied.error["code"] == "platform_admin_only"
    token = await admin_token(api, settings)
    ok = await api.put(f"/v1/orgs/{org}/quota", token=token, json=limits)
    assert ok.status == 200 and ok.body["limits"] == limits
    seen = await api.get(f"/v1/orgs/{org}/quota", token=user["access_token"])
    assert seen.body["limits"] == limits
    missing = await api.put(f"/v1/orgs/{uuid.uuid4()}/quota", token=token, json=limits)
    assert missing.status == 404
    bad = await api.put(f"/v1/orgs/{org}/quota", token=token, json={"max_instances": -1})
    assert bad.status == 422
    assert set(bad.error["details"]["fields"]) == {"max_instances", "max_memory_mb", "max_api_keys"}
    # The admin is not a member: the org itself stays hidden from them.
    assert (await api.get(f"/v1/orgs/{org}", token=token)).status == 404
    audit = await api.get(f"/v1/orgs/{org}/audit", token=user["access_token"])
    change = audit.body["items"][0]
    assert change["action"] == "quota.update" and change["after"] == limits


async def make_org(conn: asyncpg.Connection, max_instances: int) -> uuid.UUID:
    user = await users.create_user(conn, f"{uuid.uuid4().hex}@example.com", "", "x")
    org = await orgs.create_org(
        conn, "race", user.id, org_quotas.QuotaLimits(max_instances, 1024, 10), personal=False
    )
    return org.id


async def count_widgets(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    used = int(await conn.fetchval("SELECT count(*) FROM widgets WHERE org_id = $1", org_id))
    await asyncio.sleep(0.02)  # widen the window between reading use and inserting
    return used


async def create_widget(pool: asyncpg.Pool, org_id: uuid.UUID, locked: bool) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        try:
            if locked:
                await org_quotas.check_quota(conn, org_id, "instances", 1, count_widgets)
            elif await count_widgets(conn, org_id) >= 5:
                return False
        except QuotaExceeded:
            return False
        await conn.execute("INSERT INTO widgets (org_id) VALUES ($1)", org_id)
        return True


@pytest.mark.parametrize("locked", [True, False], ids=["check_quota", "unlocked-count"])
async def test_twenty_concurrent_creates_never_exceed_the_quota(
    database_url: str, locked: bool
) -> None:
    pool = await db.create_pool(database_url, min_size=20, max_size=20)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE widgets (org_id uuid NOT NULL)")
            org_id = await make_org(conn, max_instances=5)
        results = await asyncio.gather(*(create_widget(pool, org_id, locked) for _ in range(20)))
        async with pool.acquire() as conn:
            rows = await conn.fetchval("SELECT count(*) FROM widgets")
    finally:
        await pool.close()
    if locked:
        assert rows == 5 and sum(results) == 5
    else:
        # The same race without the row lock overshoots: the test above can fail.
        assert rows > 5


async def test_quota_error_says_used_limit_and_what_to_do(database_url: str) -> None:
    async with db.connection(database_url) as conn:
        org_id = await make_org(conn, max_instances=1)

        async def two(c: asyncpg.Connection, o: uuid.UUID) -> int:
            return 700

        with pytest.raises(StoreError, match="inside the creating transaction"):
            await org_quotas.check_quota(conn, org_id, "memory_mb", 1, two)
        async with conn.transaction():
            assert await org_quotas.check_quota(conn, org_id, "memory_mb", 324, two) == (700, 1024)
            with pytest.raises(QuotaExceeded) as info:
                await org_quotas.check_quota(conn, org_id, "memory_mb", 325, two)
    error = info.value
    assert error.code == "quota_exceeded" and status_of(error) == 409
    assert error.details == {"resource": "memory_mb", "used": 700, "limit": 1024, "requested": 325}
    assert "700 of its 1024 MB" in str(error) and "ask a platform admin" in str(error)
