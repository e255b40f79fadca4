"""Live updates (`GET /v1/orgs/{id}/events`): changes by anyone reach an org's streams through
PostgreSQL LISTEN/NOTIFY; streams are bounded, end with their access token or the member's
access, and the whole process holds one LISTEN connection however many streams are open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from redisgate.config import Settings
from redisgate.control import events as events_module
from redisgate.control.events import EVENTS
from tests.integration.control.conftest import Api, api_for, control_settings
from tests.integration.control.test_quotas import admin_token


class EventStream:
    """A reader of one open stream: events as (kind, data), comments kept apart."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []
        self.ended = False

    async def next(self, wait_s: float = 5.0) -> tuple[str, dict[str, Any]]:
        event, data = "", ""
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), wait_s)
            if not line:
                self.ended = True
                raise EOFError("the stream ended")
            text = line.decode().rstrip("\n")
            if text.startswith(":"):
                self.comments.append(text[1:].strip())
            elif text.startswith("event: "):
                event = text[7:]
            elif text.startswith("data: "):
                data = text[6:]
            elif text == "" and event:
                return event, json.loads(data)

    async def until(self, kind: str, ident: str, wait_s: float = 5.0) -> dict[str, Any]:
        """The next event of `kind` about `ident` (others are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            event, data = await self.next(max(0.1, deadline - loop.time()))
            assert event == data["kind"]
            if event == kind and data["id"] == ident:
                return data

    async def end(self, wait_s: float = 5.0) -> None:
        with contextlib.suppress(EOFError):
            while True:
                await self.next(wait_s)


@contextlib.asynccontextmanager
async def events(api: Api, org: str, token: str) -> AsyncIterator[EventStream]:
    response = await api.client.get(
        f"/v1/orgs/{org}/events", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-store"
    assert "X-Request-ID" in response.headers
    try:
        yield EventStream(response)
    finally:
        response.close()


async def test_changes_by_another_user_reach_the_stream(api: Api) -> None:
    owner = await api.register()
    org, token = owner["org"]["id"], owner["access_token"]
    viewer = await api.new_member(owner, "viewer")
    async with events(api, org, viewer["access_token"]) as stream:
        # An instance: created, then running (the provisioner's status change).
        created = await api.post(
            f"/v1/orgs/{org}/instances", token=token, json={"name": "main", "memory_mb": 8}
        )
        assert created.status == 201
        instance_id = created.body["id"]
        got = await stream.until("instance", instance_id)
        assert got == {"kind": "instance", "id": instance_id, "org_id": org}
        instance = f"/v1/orgs/{org}/instances/{instance_id}"
        assert (await api.patch(instance, token=token, json={"name": "renamed"})).status == 200
        await stream.until("instance", instance_id)
        # A key: created, re-scoped, revoked.
        key = await api.post(f"{instance}/keys", token=token, json={"name": "k"})
        await stream.until("key", key.body["id"])
        await api.patch(f"{instance}/keys/{key.body['id']}", token=token, json={"name": "k2"})
        await stream.until("key", key.body["id"])
        await api.delete(f"{instance}/keys/{key.body['id']}", token=token)
        await stream.until("key", key.body["id"])
        # A member joins, changes role; the org is renamed.
        other = await api.new_member(owner, "member")
        await stream.until("member", other["user"]["id"])
        path = f"/v1/orgs/{org}/members/{other['user']['id']}"
        await api.patch(path, token=token, json={"role": "viewer"})
        await stream.until("member", other["user"]["id"])
        await api.patch(f"/v1/orgs/{org}", token=token, json={"name": "Renamed"})
        await stream.until("org", org)
        # Deleted instances too; a console key (invisible in the keys API) says nothing.
        await api.post(f"{instance}/console-key", token=token)
        await api.delete(instance, token=token)
        event, data = await stream.next()
        assert (event, data["id"]) == ("instance", instance_id)


async def test_streams_see_their_own_org_only(api: Api) -> None:
    alice, bob = await api.register(), await api.register()
    async with events(api, alice["org"]["id"], alice["access_token"]) as stream:
        await api.patch(
            f"/v1/orgs/{bob['org']['id']}", token=bob["access_token"], json={"name": "Bob's"}
        )
        await api.patch(
            f"/v1/orgs/{alice['org']['id']}", token=alice["access_token"], json={"name": "A"}
        )
        event, data = await stream.next()
        assert (event, data["id"]) == ("org", alice["org"]["id"])


async def test_outsiders_refused_and_quota_changes_seen(api: Api, settings: Settings) -> None:
    owner, outsider = await api.register(), await api.register()
    org = owner["org"]["id"]
    refused = await api.get(f"/v1/orgs/{org}/events", token=outsider["access_token"])
    assert refused.status == 404
    assert (await api.get(f"/v1/orgs/{org}/events")).status == 401
    admin = await admin_token(api, settings)
    async with events(api, org, owner["access_token"]) as stream:
        limits = {"max_instances": 2, "max_memory_mb": 512, "max_api_keys": 3}
        assert (await api.put(f"/v1/orgs/{org}/quota", token=admin, json=limits)).status == 200
        assert await stream.until("quota", org) == {"kind": "quota", "id": org, "org_id": org}
        put = await api.put(f"/v1/orgs/{org}/limits", token=admin, json={"max_connections": 5})
        assert put.status == 200, put.body
        await stream.until("quota", org)  # the org's default limits (a gateway notice)


async def test_stream_ends_when_the_member_is_removed(api: Api) -> None:
    owner = await api.register()
    org = owner["org"]["id"]
    member = await api.new_member(owner, "member")
    async with events(api, org, member["access_token"]) as stream:
        removed = await api.delete(
            f"/v1/orgs/{org}/members/{member['user']['id']}", token=owner["access_token"]
        )
        assert removed.status == 204
        await stream.end()
        assert stream.ended and "access to this organization ended" in stream.comments


async def test_stream_ends_at_logout(api: Api) -> None:
    owner = await api.register()
    async with events(api, owner["org"]["id"], owner["access_token"]) as stream:
        out = await api.post("/v1/auth/logout", json={"refresh_token": owner["refresh_token"]})
        assert out.status == 204
        await stream.end()
        assert "access to this organization ended" in stream.comments


async def test_stream_ends_when_its_access_token_expires(database_url: str) -> None:
    async for api in api_for(control_settings(database_url, access_token_ttl_s="2")):
        owner = await api.register()
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with events(api, owner["org"]["id"], owner["access_token"]) as stream:
            await stream.end(wait_s=5)
        assert loop.time() - started < 4
        assert any("expired" in c for c in stream.comments)


async def test_streams_are_bounded_and_share_one_listen_connection(database_url: str) -> None:
    settings = control_settings(
        database_url, events_max_streams_per_user="2", events_max_streams="3"
    )
    async for api in api_for(settings):
        alice, bob = await api.register(), await api.register()
        a_org, b_org = alice["org"]["id"], bob["org"]["id"]
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(2):
                await stack.enter_async_context(events(api, a_org, alice["access_token"]))
            third = await api.get(f"/v1/orgs/{a_org}/events", token=alice["access_token"])
            assert third.status == 429 and third.error["code"] == "too_many_requests"
            assert "Retry-After" in third.headers
            await stack.enter_async_context(events(api, b_org, bob["access_token"]))
            over = await api.get(f"/v1/orgs/{b_org}/events", token=bob["access_token"])
            assert over.status == 429
            hub = api.client.app[EVENTS] if api.client.app else None
            assert hub is not None and hub.streams == 3
            conn = await asyncpg.connect(database_url)
            try:
                listeners = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'redisgate-events' AND datname = current_database()"
                )
            finally:
                await conn.close()
            assert listeners == 1
        # Closed streams free their places (noticed at the next write: the heartbeat or an
        # event; an event is quicker here).
        for _ in range(50):
            await api.patch(f"/v1/orgs/{a_org}", token=alice["access_token"], json={"name": "x"})
            await api.patch(f"/v1/orgs/{b_org}", token=bob["access_token"], json={"name": "y"})
            if hub.streams == 0:
                break
            await asyncio.sleep(0.1)
        assert hub.streams == 0


async def test_provisioner_status_changes_reach_the_stream(api: Api, settings: Settings) -> None:
    """The instance's redis-server dies: the provisioner records failed, restarts it and
    records running, with no request involved; each change is an event."""
    owner = await api.register()
    org, token = owner["org"]["id"], owner["access_token"]
    created = await api.post(
        f"/v1/orgs/{org}/instances", token=token, json={"name": "main", "memory_mb": 8}
    )
    assert created.status == 201 and created.body["status"] == "running"
    instance_id = created.body["id"]
    assert settings.instances_dir is not None
    state = json.loads((settings.instances_dir / instance_id / "state.json").read_text())
    async with events(api, org, token) as stream:
        # The creation's own notices may still be on their way: let them pass first.
        with contextlib.suppress(TimeoutError):
            while True:
                await stream.next(wait_s=0.5)
        os.kill(state["pid"], signal.SIGKILL)
        # Events follow (failed, then running; the restart takes 0.1 s, so a read of the
        # status may see either) until the instance runs again.
        statuses = []
        while "running" not in statuses:
            await stream.until("instance", instance_id, wait_s=10)
            now = await api.get(f"/v1/orgs/{org}/instances/{instance_id}", token=token)
            statuses.append(now.body["status"])
        assert set(statuses) <= {"failed", "running"}


async def test_an_idle_stream_gets_heartbeats(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "HEARTBEAT_S", 0.2)
    owner = await api.register()
    async with events(api, owner["org"]["id"], owner["access_token"]) as stream:
        lines = [await asyncio.wait_for(stream.response.content.readline(), 2) for _ in range(4)]
    # The opening comment, then a ping after 0.2 s of nothing.
    assert lines[0].startswith(b": live updates") and lines[1] == b"\n"
    assert lines[2:] == [b": ping\n", b"\n"]


async def test_stream_headers_cors_and_security(database_url: str) -> None:
    settings = control_settings(database_url, control_cors_origins="https://dash.example")
    async for api in api_for(settings):
        owner = await api.register()
        response = await api.client.get(
            f"/v1/orgs/{owner['org']['id']}/events",
            headers={
                "Authorization": f"Bearer {owner['access_token']}",
                "Origin": "https://dash.example",
                "X-Request-ID": "stream-1",
            },
        )
        try:
            assert response.status == 200
            headers = response.headers
            assert headers["Access-Control-Allow-Origin"] == "https://dash.example"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["X-Request-ID"] == "stream-1"
            assert headers["Cache-Control"] == "no-store"  # the stream's own, kept
        finally:
            response.close()
