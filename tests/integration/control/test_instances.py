"""Instances and API keys over HTTP, backed by real redis-servers (local and static)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from typing import Any

import redis
import redis.asyncio as aioredis

from redisgate import api_key_format
from redisgate.backends import Backend
from redisgate.config import Settings
from redisgate.launcher.redis import RedisServer
from redisgate.scopes import PRESETS, parse_scope, prefix_scope
from redisgate.store import db, instances
from tests.integration.control.conftest import Api, api_for, control_settings
from tests.integration.control.test_quotas import admin_token


async def new_instance(api: Api, token: str, org: str, **body: Any) -> dict[str, Any]:
    response = await api.post(
        f"/v1/orgs/{org}/instances", token=token, json={"name": "cache", "memory_mb": 8, **body}
    )
    assert response.status == 201, response.body
    result: dict[str, Any] = response.body
    return result


async def backend_of(settings: Settings, instance_id: str) -> Backend:
    assert settings.database_url
    async with db.connection(settings.database_url) as conn:
        rows = await instances.all_instances(conn)
    backend = next(i.backend for i in rows if str(i.id) == instance_id)
    assert backend is not None
    return backend


def direct(backend: Backend) -> redis.Redis:
    return redis.Redis(
        host=backend.host, port=backend.port, db=backend.db, password=backend.password
    )


async def test_create_instance_runs_a_real_redis(api: Api, settings: Settings) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    created = await new_instance(api, token, org, eviction_policy="allkeys-lru")
    assert created["status"] == "running" and created["status_reason"] == ""
    assert created["endpoint"] == {"host": "127.0.0.1", "port": settings.proxy_port}
    assert created["redis_cli"].startswith("redis-cli -u redis://default:<API_KEY>@127.0.0.1:")
    assert "password" not in str(created)
    backend = await backend_of(settings, created["id"])
    with direct(backend) as r:
        assert r.config_get("maxmemory") == {"maxmemory": str(8 * 1024 * 1024)}
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert r.config_get("save") == {"save": "3600 1 300 100 60 10000"}  # durable by default
        assert r.config_get("appendonly") == {"appendonly": "yes"}
    assert created["persistence"] is True
    listed = await api.get(f"/v1/orgs/{org}/instances", token=token)
    assert [i["id"] for i in listed.body["items"]] == [created["id"]]
    got = await api.get(f"/v1/orgs/{org}/instances/{created['id']}", token=token)
    assert {**got.body, "updated_at": None} == {**created, "updated_at": None}


async def test_patch_applies_live_and_delete_removes_everything(
    api: Api, settings: Settings
) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    created = await new_instance(api, token, org)
    path = f"/v1/orgs/{org}/instances/{created['id']}"
    backend = await backend_of(settings, created["id"])
    with direct(backend) as r:
        pid = r.info("server")["process_id"]
        r.set("k", "v")
    patched = await api.patch(
        path, token=token, json={"memory_mb": 16, "eviction_policy": "volatile-ttl", "name": "c2"}
    )
    assert patched.status == 200, patched.body
    assert (patched.body["memory_mb"], patched.body["name"]) == (16, "c2")
    with direct(backend) as r:
        assert r.info("server")["process_id"] == pid  # no restart
        assert r.config_get("maxmemory")["maxmemory"] == str(16 * 1024 * 1024)
        assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-ttl"
    key = await api.post(f"{path}/keys", token=token, json={"name": "k"})
    stats = await api.get(f"{path}/stats", token=token)
    assert stats.status == 200 and stats.body["keys"] == 1 and stats.body["server_wide"] is False
    assert stats.body["maxmemory_bytes"] == 16 * 1024 * 1024
    assert (await api.delete(path, token=token)).status == 204
    assert (await api.get(path, token=token)).status == 404
    assert (await api.get(f"{path}/keys/{key.body['id']}", token=token)).status == 404
    for _ in range(50):  # the process is gone (SIGTERM, then SIGKILL if needed)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"redis-server {pid} still runs")
    assert not (settings.instances_dir / created["id"]).exists()  # type: ignore[operator]
    audit = await api.get(f"/v1/orgs/{org}/audit", token=token)
    actions = [e["action"] for e in audit.body["items"]]
    assert actions[:4] == ["instance.delete", "key.create", "instance.update", "instance.create"]


async def test_a_killed_instance_server_comes_back_with_its_acknowledged_writes(
    api: Api, settings: Settings
) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    created = await new_instance(api, token, org)  # no "persistence": the default
    path = f"/v1/orgs/{org}/instances/{created['id']}"
    backend = await backend_of(settings, created["id"])
    with direct(backend) as r:
        pid = r.info("server")["process_id"]
        for i in range(500):
            assert r.set(f"order:{i}", i)  # acknowledged by Redis
        assert r.config_get("appendfsync") == {"appendfsync": "everysec"}
    await asyncio.sleep(1.2)  # past the documented fsync window (docs/durability.md)

    os.kill(pid, signal.SIGKILL)  # the real redis-server the local provisioner started
    for _ in range(200):  # the provisioner restarts it on the same endpoint
        await asyncio.sleep(0.05)
        got = (await api.get(path, token=token)).body
        try:
            with direct(backend) as r:
                if got["status"] == "running" and r.info("server")["process_id"] != pid:
                    break
        except redis.ConnectionError:
            continue
    else:
        raise AssertionError(f"the instance did not come back: {got}")
    with direct(backend) as r:
        assert r.dbsize() == 500
        assert [r.get(f"order:{i}") for i in (0, 250, 499)] == [b"0", b"250", b"499"]


async def test_persistence_false_is_a_cache_and_patch_turns_persistence_on(
    api: Api, settings: Settings
) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    created = await new_instance(api, token, org, persistence=False)
    assert created["persistence"] is False
    backend = await backend_of(settings, created["id"])
    with direct(backend) as r:
        assert r.config_get("appendonly") == {"appendonly": "no"}
        assert r.config_get("save") == {"save": ""}
        pid = r.info("server")["process_id"]
    path = f"/v1/orgs/{org}/instances/{created['id']}"
    patched = await api.patch(path, token=token, json={"persistence": True})
    assert patched.status == 200 and patched.body["persistence"] is True, patched.body
    with direct(backend) as r:
        assert r.info("server")["process_id"] == pid  # applied live
        assert r.config_get("appendonly") == {"appendonly": "yes"}
    audit = await api.get(f"/v1/orgs/{org}/audit", token=token)
    update = audit.body["items"][0]
    assert update["action"] == "instance.update"
    assert (update["before"]["persistence"], update["after"]["persistence"]) == (False, True)


async def test_validation_quotas_and_other_orgs(api: Api, settings: Settings) -> None:
    user, other = await api.register(), await api.register()
    org, token = user["org"]["id"], user["access_token"]
    bad = await api.post(
        f"/v1/orgs/{org}/instances",
        token=token,
        json={"name": "", "memory_mb": 0, "eviction_policy": "lru", "color": "red"},
    )
    assert bad.status == 422
    assert set(bad.error["details"]["fields"]) >= {"name", "memory_mb", "eviction_policy"}
    too_big = await api.post(
        f"/v1/orgs/{org}/instances", token=token, json={"name": "big", "memory_mb": 2048}
    )
    assert too_big.status == 409 and too_big.error["code"] == "quota_exceeded"
    assert "1024" in too_big.error["message"]
    created = await new_instance(api, token, org)
    again = await api.post(
        f"/v1/orgs/{org}/instances", token=token, json={"name": "CACHE", "memory_mb": 1}
    )
    assert again.status == 409 and again.error["code"] == "instance_name_taken"
    quota = await api.get(f"/v1/orgs/{org}/quota", token=token)
    assert quota.body["used"] == {"instances": 1, "memory_mb": 8, "api_keys": 0}
    grow = await api.patch(
        f"/v1/orgs/{org}/instances/{created['id']}", token=token, json={"memory_mb": 5000}
    )
    assert grow.status == 409 and grow.error["code"] == "quota_exceeded"
    # another org's instance looks absent, on every route
    theirs = f"/v1/orgs/{other['org']['id']}/instances/{created['id']}"
    assert (await api.get(theirs, token=other["access_token"])).status == 404
    mine_as_them = f"/v1/orgs/{org}/instances/{created['id']}"
    assert (await api.get(mine_as_them, token=other["access_token"])).status == 404
    assert (await api.get(f"/v1/orgs/{org}/instances/nope", token=token)).status == 404


async def test_concurrent_creates_never_exceed_the_instance_quota(api: Api) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    results = await asyncio.gather(
        *(
            api.post(
                f"/v1/orgs/{org}/instances", token=token, json={"name": f"i{n}", "memory_mb": 1}
            )
            for n in range(8)
        )
    )
    statuses = sorted(r.status for r in results)
    assert statuses == [201] * 5 + [409] * 3  # the default quota is 5 instances


async def test_keys_tokens_scopes_and_revocation(api: Api, settings: Settings) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    created = await new_instance(api, token, org)
    keys = f"/v1/orgs/{org}/instances/{created['id']}/keys"
    full = await api.post(keys, token=token, json={"name": "app"})
    assert full.status == 201
    assert full.body["scopes"] == parse_scope(PRESETS["full"]).canonical
    assert full.body["url"] == (
        f"redis://default:{full.body['token']}@127.0.0.1:{settings.proxy_port}/0"
    )
    assert api_key_format.key_id_of(full.body["token"].encode()) == full.body["id"]
    scoped = await api.post(keys, token=token, json={"name": "ro", "scopes": "+@read ~app:*"})
    assert scoped.body["scopes"] == "+@read ~app:* resetchannels"
    prefixed = await api.post(
        keys, token=token, json={"name": "p", "preset": "read-only", "prefix": "app:"}
    )
    assert prefixed.body["scopes"] == parse_scope(prefix_scope("app:", "read-only")).canonical
    bad = await api.post(keys, token=token, json={"name": "x", "scopes": "+get +@nonsense"})
    assert bad.status == 422
    assert bad.error["details"] == {
        "fields": {"scopes": "unknown category '@nonsense' at 6"},
        "position": 6,
    }
    both = await api.post(keys, token=token, json={"name": "x", "scopes": "+get", "preset": "full"})
    assert both.status == 422
    past = await api.post(
        keys, token=token, json={"name": "x", "expires_at": "2001-01-01T00:00:00Z"}
    )
    assert past.status == 422 and "past" in past.error["message"]
    lower = await api.post(
        keys, token=token, json={"name": "x", "expires_at": "2099-01-01t00:00:00z"}
    )
    assert lower.status == 201 and lower.body["expires_at"].startswith("2099-01-01")
    await api.delete(f"{keys}/{lower.body['id']}", token=token)
    far = await api.post(
        keys, token=token, json={"name": "x", "expires_at": "9999-12-31T23:59:59-14:00"}
    )
    assert far.status == 422 and "too far" in far.error["message"]
    listed = await api.get(keys, token=token)
    assert [k["id"] for k in listed.body["items"] if k["revoked_at"] is None] == [
        full.body["id"],
        scoped.body["id"],
        prefixed.body["id"],
    ]
    assert "token" not in str(listed.body) and full.body["token"] not in str(listed.body)
    one = f"{keys}/{scoped.body['id']}"
    patched = await api.patch(
        one, token=token, json={"scopes": "+@all allkeys", "expires_at": "2099-01-01T00:00:00Z"}
    )
    assert patched.status == 200 and patched.body["scopes"] == "+@all ~* resetchannels"
    assert patched.body["expires_at"].startswith("2099-01-01")
    cleared = await api.patch(one, token=token, json={"expires_at": None})
    assert cleared.body["expires_at"] is None
    assert (await api.delete(one, token=token)).status == 204
    assert (await api.get(one, token=token)).body["revoked_at"] is not None
    assert (await api.delete(one, token=token)).status == 204  # idempotent
    again = await api.patch(one, token=token, json={"name": "n"})
    assert again.status == 409 and again.error["code"] == "key_revoked"
    quota = await api.get(f"/v1/orgs/{org}/quota", token=token)
    assert quota.body["used"]["api_keys"] == 2  # revoked keys do not count


async def test_static_provisioner_gives_each_instance_a_db(
    database_url: str, redis_server: RedisServer
) -> None:
    settings = control_settings(database_url, provisioner="static")
    async for api in api_for(settings):
        user = await api.register()
        org, token = user["org"]["id"], user["access_token"]
        none_yet = await api.post(
            f"/v1/orgs/{org}/instances", token=token, json={"name": "a", "memory_mb": 1}
        )
        assert none_yet.status == 503 and none_yet.error["code"] == "no_backend_capacity"
        admin = await admin_token(api, settings)
        server = {
            "name": "shared-1",
            "host": "127.0.0.1",
            "port": redis_server.port,
            "password": redis_server.password,
            "databases": 16,
        }
        denied = await api.post("/v1/admin/servers", token=token, json=server)
        assert denied.status == 403
        registered = await api.post("/v1/admin/servers", token=admin, json=server)
        assert registered.status == 201 and "password" not in registered.body
        dup = await api.post("/v1/admin/servers", token=admin, json=server)
        assert dup.status == 409
        first = await new_instance(api, token, org, name="a")
        second = await new_instance(api, token, org, name="b")
        assert first["status"] == second["status"] == "running"
        b1 = await backend_of(settings, first["id"])
        b2 = await backend_of(settings, second["id"])
        assert (b1.db, b2.db) == (0, 1) and b1.shared and b2.shared
        with direct(b1) as r:
            r.set("tenant-a", "secret")
        listed = await api.get("/v1/admin/servers", token=admin)
        assert listed.body["items"][0]["databases_used"] == 2
        in_use = await api.delete(f"/v1/admin/servers/{registered.body['id']}", token=admin)
        assert in_use.status == 409 and in_use.error["code"] == "server_in_use"
        assert (
            await api.delete(f"/v1/orgs/{org}/instances/{first['id']}", token=token)
        ).status == 204
        with direct(b1) as r:
            assert r.dbsize() == 0  # the next tenant of db 0 starts empty
        await api.delete(f"/v1/orgs/{org}/instances/{second['id']}", token=token)
        removed = await api.delete(f"/v1/admin/servers/{registered.body['id']}", token=admin)
        assert removed.status == 204


async def test_control_plane_restart_adopts_running_instances(database_url: str) -> None:
    settings = control_settings(database_url, instances_stop_on_exit="false")
    async for api in api_for(settings):
        user = await api.register()
        created = await new_instance(api, user["access_token"], user["org"]["id"])
    backend = await backend_of(settings, created["id"])
    with direct(backend) as r:
        pid = r.info("server")["process_id"]  # still running after the app stopped
    try:
        restarted = dataclasses.replace(
            settings, instances_stop_on_exit=True, instances_dir=settings.instances_dir
        )
        async for api in api_for(restarted):
            for _ in range(100):  # adoption runs in the background at start-up
                status = await api.get(
                    f"/v1/orgs/{user['org']['id']}/instances/{created['id']}/stats",
                    token=user["access_token"],
                )
                if status.status == 200:
                    break
                await asyncio.sleep(0.05)
            async with aioredis.Redis(
                host=backend.host, port=backend.port, password=backend.password
            ) as r:
                assert (await r.info("server"))["process_id"] == pid  # adopted, not restarted
        # stop_on_exit stopped the adopted server: no orphan left behind
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"adopted redis-server {pid} still runs")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
