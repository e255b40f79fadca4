"""The console's short-lived key: scope by role, absent from listings and the quota, audited,
enforced by a real gateway through the HTTP command API (both planes of `redisgate serve`,
whose HTTP command API lets the control API's origin in), and refused once expired."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg

from redisgate.control.console_keys import CONSOLE_READ_SCOPE, CONSOLE_WRITE_SCOPE
from redisgate.scopes import parse_scope
from redisgate.signals import StopSignals
from redisgate.stack import Stack, running_stack
from redisgate.store import api_keys
from tests.integration.control.conftest import Api, api_for, control_settings

READ = parse_scope(CONSOLE_READ_SCOPE).canonical
WRITE = parse_scope(CONSOLE_WRITE_SCOPE).canonical


async def org_with_instance(api: Api) -> tuple[dict[str, Any], str]:
    owner = await api.register()
    org = owner["org"]["id"]
    created = await api.post(
        f"/v1/orgs/{org}/instances",
        token=owner["access_token"],
        json={"name": "main", "memory_mb": 8},
    )
    assert created.status == 201 and created.body["status"] == "running", created.body
    return owner, f"/v1/orgs/{org}/instances/{created.body['id']}"


async def test_scope_follows_the_role(api: Api) -> None:
    owner, instance = await org_with_instance(api)
    got = {}
    for role in ("viewer", "member", "admin"):
        member = await api.new_member(owner, role)
        response = await api.post(f"{instance}/console-key", token=member["access_token"])
        assert response.status == 201, response.body
        got[role] = response.body["scopes"]
    mine = await api.post(f"{instance}/console-key", token=owner["access_token"])
    got["owner"] = mine.body["scopes"]
    assert got == {"viewer": READ, "member": WRITE, "admin": WRITE, "owner": WRITE}
    assert "-@scripting" in WRITE and "-@dangerous" in WRITE and "-@admin" in WRITE
    body = mine.body
    assert body["token"].startswith("rg_") and body["token"].split("_")[1] == body["key_id"]
    assert body["rest_url"].startswith("http://")
    left = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
    assert 280 < left.total_seconds() <= 300


async def test_not_listed_not_counted_and_audited(database_url: str) -> None:
    settings = control_settings(database_url, quota_default_max_api_keys="1")
    async for api in api_for(settings):
        owner, instance = await org_with_instance(api)
        token, org = owner["access_token"], owner["org"]["id"]
        own = await api.post(f"{instance}/keys", token=token, json={"name": "mine"})
        assert own.status == 201
        for _ in range(3):  # the quota (1 key) is full, console keys still come
            assert (await api.post(f"{instance}/console-key", token=token)).status == 201
        console = await api.post(f"{instance}/console-key", token=token)
        listed = await api.get(f"{instance}/keys", token=token)
        assert [k["id"] for k in listed.body["items"]] == [own.body["id"]]
        one = await api.get(f"{instance}/keys/{console.body['key_id']}", token=token)
        assert one.status == 404
        revoke = await api.delete(f"{instance}/keys/{console.body['key_id']}", token=token)
        assert revoke.status == 404
        quota = await api.get(f"/v1/orgs/{org}/quota", token=token)
        assert quota.body["used"]["api_keys"] == 1
        refused = await api.post(f"{instance}/keys", token=token, json={"name": "second"})
        assert refused.status == 409 and refused.error["code"] == "quota_exceeded"
        audit = await api.get(
            f"/v1/orgs/{org}/audit", token=token, params={"action": "key.console_create"}
        )
        assert len(audit.body["items"]) == 4
        entry = audit.body["items"][0]
        assert entry["target"] == {"type": "api_key", "id": console.body["key_id"]}
        assert entry["after"]["scopes"] == WRITE and entry["after"]["role"] == "owner"


async def test_expired_console_keys_are_deleted(api: Api, database_url: str) -> None:
    owner, instance = await org_with_instance(api)
    minted = await api.post(f"{instance}/console-key", token=owner["access_token"])
    key_id = minted.body["key_id"]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '2 hours' WHERE id = $1", key_id
        )
        # The next mint deletes it (a few per mint, those expired over an hour ago).
        assert (await api.post(f"{instance}/console-key", token=owner["access_token"])).status
        assert await conn.fetchval("SELECT count(*) FROM api_keys WHERE id = $1", key_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM api_keys WHERE console") == 1
        assert await api_keys.delete_expired_console_keys(conn, grace_s=0, limit=10) == 0
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def both_planes(database_url: str, **extra: str) -> AsyncIterator[Stack]:
    settings = control_settings(
        database_url,
        proxy_port="0",
        http_port="0",
        control_port="0",
        shutdown_timeout_s="1",
        **extra,
    )
    async with running_stack(settings, StopSignals()) as stack:
        yield stack


async def rest(
    session: aiohttp.ClientSession, base: str, token: str, *command: str
) -> tuple[int, Any]:
    async with session.post(
        base, json=list(command), headers={"Authorization": f"Bearer {token}"}
    ) as response:
        return response.status, await response.json()


async def test_gateway_enforces_the_console_key(database_url: str) -> None:
    async with both_planes(database_url, console_key_ttl_s="2") as stack:
        base = stack.control_url
        async with aiohttp.ClientSession() as http:

            async def call(method: str, path: str, token: str | None = None, **kw: Any) -> Any:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                async with http.request(method, base + path, headers=headers, **kw) as r:
                    return r.status, await r.json()

            async def register() -> dict[str, Any]:
                email = f"u{id(object())}{datetime.now().timestamp()}@example.com"
                status, body = await call(
                    "POST",
                    "/v1/auth/register",
                    json={"email": email, "password": "correct horse battery staple"},
                )
                assert status == 201, body
                return {**body, "email": email}

            owner, viewer = await register(), await register()
            org, token = owner["org"]["id"], owner["access_token"]
            status, _ = await call(
                "POST",
                f"/v1/orgs/{org}/members",
                token,
                json={"email": viewer["email"], "role": "viewer"},
            )
            assert status == 201
            status, created = await call(
                "POST", f"/v1/orgs/{org}/instances", token, json={"name": "m", "memory_mb": 8}
            )
            assert status == 201 and created["status"] == "running", created
            instance = f"/v1/orgs/{org}/instances/{created['id']}"

            status, mine = await call("POST", f"{instance}/console-key", token)
            assert status == 201
            status, theirs = await call("POST", f"{instance}/console-key", viewer["access_token"])
            assert status == 201
            assert mine["rest_url"] == created["rest_url"]
            url = mine["rest_url"]

            # The owner's key writes data; not scripts, not the server's admin commands.
            assert await rest(http, url, mine["token"], "SET", "greeting", "hi") == (
                200,
                {"result": "OK"},
            )
            status, body = await rest(http, url, mine["token"], "EVAL", "return 1", "0")
            assert status == 400 and body["error"].startswith("NOPERM")
            status, body = await rest(http, url, mine["token"], "FLUSHALL")
            assert status == 400 and body["error"].startswith("NOPERM")
            # The viewer's key reads, browses with SCAN, and may not write.
            assert await rest(http, url, theirs["token"], "GET", "greeting") == (
                200,
                {"result": "hi"},
            )
            status, body = await rest(http, url, theirs["token"], "SCAN", "0", "MATCH", "g*")
            assert status == 200 and body["result"][1] == ["greeting"]
            status, body = await rest(http, url, theirs["token"], "SET", "greeting", "no")
            assert status == 400 and body["error"].startswith("NOPERM")
            status, body = await rest(http, url, theirs["token"], "DEL", "greeting")
            assert status == 400 and body["error"].startswith("NOPERM")

            # The console (served by the control API's origin) may call the API cross-origin.
            origin = base
            async with http.options(
                url,
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            ) as preflight:
                assert preflight.status == 204
                assert preflight.headers["Access-Control-Allow-Origin"] == origin
            async with http.options(
                url,
                headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
            ) as preflight:
                assert preflight.status == 403

            # Expiry (console_key_ttl_s: 2 s here): the key's open sessions end (the gateway's
            # sweep), here a pub/sub stream, and the key is refused from then on.
            loop = asyncio.get_running_loop()
            async with http.post(
                f"{url}/subscribe/news", headers={"Authorization": f"Bearer {mine['token']}"}
            ) as sub:
                assert sub.status == 200
                assert (await sub.content.readline()).startswith(b"data: subscribe,news,1")
                started = loop.time()
                while await asyncio.wait_for(sub.content.readline(), 6):
                    pass  # until the gateway ends it
            assert loop.time() - started < 5
            status, body = await rest(http, url, theirs["token"], "GET", "greeting")
            assert status == 401, body
