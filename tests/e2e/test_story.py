"""The whole story against `redisgate dev`, as the README tells it: register, create an
instance, mint a scoped key, use it with redis-py through the gateway, revoke it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.test_dev import LINE_COUNT, Dev, dev_dir  # noqa: F401 (the fixture)


def call(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.slow
def test_register_instance_scoped_key_gateway_revoke(dev_dir: Path) -> None:  # noqa: F811
    dev = Dev(dev_dir)
    try:
        lines = dev.read_lines()
        assert len(lines) == LINE_COUNT, f"got {lines}"
        control = lines[1].split("=", 1)[1]
        email, password = lines[2].split("=", 1)[1].split(":", 1)
        status, demo = call(
            "POST", f"{control}/v1/auth/login", {"email": email, "password": password}
        )
        assert status == 200, demo

        status, alice = call(
            "POST",
            f"{control}/v1/auth/register",
            {"email": "alice@example.com", "password": "a long enough passphrase"},
        )
        assert status == 201, alice
        token, org = alice["access_token"], alice["org"]["id"]
        started = time.monotonic()
        status, instance = call(
            "POST", f"{control}/v1/orgs/{org}/instances", {"name": "cache", "memory_mb": 32}, token
        )
        assert status == 201 and instance["status"] == "running", instance
        keys = f"{control}/v1/orgs/{org}/instances/{instance['id']}/keys"
        status, full = call("POST", keys, {"name": "ops"}, token)
        assert status == 201, full
        with redis.Redis.from_url(full["url"]) as r:
            assert r.ping()
            first_pong_s = time.monotonic() - started
            assert r.set("app:1", "hello")
        status, key = call("POST", keys, {"name": "web", "scopes": "+@read ~app:*"}, token)
        assert status == 201, key
        with redis.Redis.from_url(key["url"]) as r:
            assert r.get("app:1") == b"hello"
            with pytest.raises(redis.exceptions.NoPermissionError):
                r.set("app:1", "v")
            with pytest.raises(redis.exceptions.NoPermissionError):
                r.get("other:1")
        print(f"POST /instances -> first PONG through the gateway: {first_pong_s * 1000:.0f} ms")

        # another org sees nothing of it, and its keys do not open alice's instance
        status, bob = call(
            "POST",
            f"{control}/v1/auth/register",
            {"email": "bob@example.com", "password": "another long passphrase"},
        )
        assert status == 201
        status, _ = call(
            "GET", f"{control}/v1/orgs/{org}/instances/{instance['id']}", token=bob["access_token"]
        )
        assert status == 404
        status, _ = call(
            "GET",
            f"{control}/v1/orgs/{bob['org']['id']}/instances/{instance['id']}",
            token=bob["access_token"],
        )
        assert status == 404

        # revoked: new connections are refused at once
        status, _ = call("DELETE", f"{keys}/{key['id']}", token=token)
        assert status == 204
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(key["url"]).ping()

        # deleting the instance stops its Redis; a key of it no longer works
        status, other_key = call("POST", keys, {"name": "full"}, token)
        assert status == 201
        status, _ = call(
            "DELETE", f"{control}/v1/orgs/{org}/instances/{instance['id']}", token=token
        )
        assert status == 204
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(other_key["url"]).ping()
        code, err = dev.stop()
    finally:
        dev.kill()
    assert code == 0, err
