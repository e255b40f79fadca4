"""/healthz and /readyz of the control API against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from redisgate.config.load import load_settings
from redisgate.control.app import create_app
from redisgate.errors import ConfigError
from redisgate.launcher.process import free_port
from tests.integration.control.conftest import control_settings


async def client_for(database_url: str) -> AsyncIterator[TestClient[object, object]]:
    settings = control_settings(database_url)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_ready_when_migrated(database_url: str) -> None:
    async for client in client_for(database_url):
        response = await client.get("/healthz")
        assert response.status == 200 and await response.json() == {"status": "ok"}
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 200, body
        assert body["status"] == "ready" and len(body["installation_id"]) == 36


async def test_not_ready_with_pending_migrations(empty_database_url: str) -> None:
    async for client in client_for(empty_database_url):
        response = await client.get("/readyz")
        assert response.status == 503
        error = (await response.json())["error"]
        assert error["code"] == "migrations_pending"
        assert "redisgate migrate" in error["message"]


async def test_starts_and_answers_503_while_postgres_is_down() -> None:
    dead = f"postgresql://nobody:pw@127.0.0.1:{free_port()}/redisgate"
    async for client in client_for(dead):
        assert (await client.get("/healthz")).status == 200
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["error"]["code"] == "database_unavailable"
        assert "pw@" not in body["error"]["message"]


def test_control_needs_a_database_url() -> None:
    with pytest.raises(ConfigError, match="database_url is not set"):
        create_app(load_settings(env={}))
