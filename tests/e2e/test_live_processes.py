"""Two `redisgate proxy` processes and the control API on one PostgreSQL: a key revoked over
HTTP closes its live sessions on both gateways within a second, and a re-scope applies to
the next command on both (the live-policy issue's multi-gateway test)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from redisgate.launcher.redis import RedisServer
from redisgate.scopes import PRESETS
from tests.e2e.test_proxy_process import NO_RETRY, Proxy, start_proxy, wait_for  # noqa: F401
from tests.integration.control.conftest import api_for, control_settings
from tests.integration.control.test_quotas import admin_token


def closed(client: redis.Redis) -> Callable[[], bool]:
    def check() -> bool:
        try:
            client.ping()
        except (redis.ConnectionError, redis.AuthenticationError):
            return True
        except redis.ResponseError:
            return False
        return False

    return check


async def test_revocation_and_rescoping_reach_two_gateway_processes(
    database_url: str,
    redis_server: RedisServer,
    start_proxy: Callable[..., Proxy],  # noqa: F811
) -> None:
    gateways = [start_proxy("--database-url", database_url, "--port", "0") for _ in range(2)]
    ports = [g.port() for g in gateways]
    settings = control_settings(database_url, provisioner="static")
    async for api in api_for(settings):
        admin = await admin_token(api, settings)
        server = {
            "name": "shared",
            "host": "127.0.0.1",
            "port": redis_server.port,
            "password": redis_server.password,
        }
        assert (await api.post("/v1/admin/servers", token=admin, json=server)).status == 201
        user = await api.register()
        org, token = user["org"]["id"], user["access_token"]
        created = await api.post(
            f"/v1/orgs/{org}/instances", token=token, json={"name": "c", "memory_mb": 8}
        )
        keys = f"/v1/orgs/{org}/instances/{created.body['id']}/keys"
        key = await api.post(keys, token=token, json={"name": "k", "preset": "full"})
        clients = [
            redis.Redis(port=port, password=key.body["token"], retry=NO_RETRY) for port in ports
        ]
        for client in clients:
            assert client.set("app:1", "v")

        # re-scoped: the next command on each gateway is judged by the new scope
        scopes = PRESETS["read-only"]
        assert (
            await api.patch(f"{keys}/{key.body['id']}", token=token, json={"scopes": scopes})
        ).status == 200

        def read_only(client: redis.Redis) -> Callable[[], bool]:
            def check() -> bool:
                try:
                    client.set("app:1", "w")
                except redis.exceptions.NoPermissionError:
                    return True
                return False

            return check

        for client in clients:
            wait_for(read_only(client), "the new scope", 5.0)
            assert client.get("app:1") in (b"v", b"w")

        # revoked: both gateways close the key's sessions
        started = time.monotonic()
        assert (await api.delete(f"{keys}/{key.body['id']}", token=token)).status == 204
        for client in clients:
            wait_for(closed(client), "the session to close", 5.0)
        print(
            f"revoked over HTTP -> closed on 2 gateway processes: "
            f"{(time.monotonic() - started) * 1000:.0f} ms"
        )
