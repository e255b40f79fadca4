"""The demo account of `redisgate dev`: a user, their org, an instance and a full-access key.

Made through the control API over HTTP, exactly as a user would (register or log in, create
the instance, wait until it runs, create a key), and idempotent across runs: the password and
the key's token are kept (0600) in the data folder, and what exists already is reused. The
token cannot be read back from the server (only its digest is stored), so a lost or revoked
one is replaced by a new key.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from redisgate import api_key_format
from redisgate.errors import ServiceError

DEMO_EMAIL = "demo@redisgate.dev"
DEMO_INSTANCE = "demo"
DEMO_MEMORY_MB = 64
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Demo:
    email: str
    password: str
    org_id: str
    instance_id: str
    token: str
    url: str
    rest_url: str | None = None  # the HTTP command API's (None: http_enabled is off)


def _read(path: Path) -> str | None:
    """A secret kept in the data folder, if any."""
    return (path.read_text().strip() or None) if path.exists() else None


def _write(path: Path, value: str) -> str:
    """Keep a secret in the data folder (0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


class _Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.token = ""

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            data = await response.json() if response.content_type == "application/json" else None
            return response.status, data

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, data = await self.call(method, path, body)
        if got != status:
            raise ServiceError(f"demo setup: {method} {path} answered {got}: {data}")
        return data


async def ensure_demo(control_url: str, data_dir: Path) -> Demo:
    """The demo user, org, running instance and a working key (created when missing)."""
    password = _read(data_dir / "demo-password") or _write(
        data_dir / "demo-password", secrets.token_urlsafe(12)
    )
    async with aiohttp.ClientSession() as session:
        api = _Client(session, control_url)
        login = {"email": DEMO_EMAIL, "password": password}
        status, tokens = await api.call("POST", "/v1/auth/login", login)
        if status == 401:
            status, tokens = await api.call("POST", "/v1/auth/register", {**login, "name": "Demo"})
            if status == 409:
                raise ServiceError(
                    f"the demo user exists but its password is not the one kept in "
                    f"{data_dir / 'demo-password'}; remove the data folder to start afresh"
                )
            if status != 201:
                raise ServiceError(f"demo setup: registration answered {status}: {tokens}")
        elif status != 200:
            raise ServiceError(f"demo setup: login answered {status}: {tokens}")
        api.token = tokens["access_token"]
        me = await api.ok("GET", "/v1/me")
        org_id = me["orgs"][0]["id"]
        instance = await _instance(api, org_id)
        token = await _key(api, org_id, instance["id"], data_dir / "demo-key")
    host, port = instance["endpoint"]["host"], instance["endpoint"]["port"]
    return Demo(
        email=DEMO_EMAIL,
        password=password,
        org_id=org_id,
        instance_id=instance["id"],
        token=token,
        url=api_key_format.url(token, host, port),
        rest_url=instance.get("rest_url"),
    )


async def _instance(api: _Client, org_id: str) -> dict[str, Any]:
    listed = await api.ok("GET", f"/v1/orgs/{org_id}/instances")
    found = [i for i in listed["items"] if i["name"] == DEMO_INSTANCE]
    if found:
        instance: dict[str, Any] = found[0]
    else:
        # persistent: the demo's data survives `redisgate dev` restarts
        body = {"name": DEMO_INSTANCE, "memory_mb": DEMO_MEMORY_MB, "persistence": True}
        instance = await api.ok("POST", f"/v1/orgs/{org_id}/instances", body, 201)
        if instance["status"] == "failed":
            raise ServiceError(f"the demo instance failed to start: {instance['status_reason']}")
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    while instance["status"] != "running":  # a re-adopted server may still be starting
        if asyncio.get_running_loop().time() > deadline:
            raise ServiceError(
                f"the demo instance is {instance['status']}: {instance['status_reason']}"
            )
        await asyncio.sleep(0.1)
        instance = await api.ok("GET", f"/v1/orgs/{org_id}/instances/{instance['id']}")
    return instance


async def _key(api: _Client, org_id: str, instance_id: str, token_file: Path) -> str:
    keys = f"/v1/orgs/{org_id}/instances/{instance_id}/keys"
    token = _read(token_file)
    key_id = api_key_format.key_id_of(token.encode()) if token else None
    if token and key_id:
        status, key = await api.call("GET", f"{keys}/{key_id}")
        if status == 200 and key["revoked_at"] is None:
            return token
    created = await api.ok("POST", keys, {"name": "demo", "preset": "full"}, 201)
    return _write(token_file, created["token"])
