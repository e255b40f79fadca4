"""A control API per test against its own fresh database, driven through real HTTP.

`Api` checks every response it sees against /openapi.json: the status must be documented for
that route and the body must validate against the documented schema. So every test of a route
is also a test that the document tells the truth about it.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator, FormatChecker

from redisgate.config import Settings
from redisgate.config.load import load_settings
from redisgate.control.app import create_app

PASSWORD = "correct horse battery staple"

# Cheap argon2 so the suite stays fast; production defaults are in config.py (t=3, 64 MiB, p=4).
TEST_ENV = {
    "REDISGATE_JWT_SECRET": "test-secret-" + "x" * 40,
    "REDISGATE_ARGON2_TIME_COST": "1",
    "REDISGATE_ARGON2_MEMORY_KIB": "64",
    "REDISGATE_ARGON2_PARALLELISM": "1",
    "REDISGATE_REGISTER_MAX_PER_ADDR": "1000",
    # Every app a test starts stops the redis-servers its provisioner started.
    "REDISGATE_INSTANCES_STOP_ON_EXIT": "true",
}


def control_settings(database_url: str, **extra: str) -> Settings:
    """Settings of a test's control API; local instances live in a folder of their own."""
    instances = tempfile.mkdtemp(prefix="rg-instances-")
    atexit.register(shutil.rmtree, instances, ignore_errors=True)
    env = {"REDISGATE_DATABASE_URL": database_url, "REDISGATE_INSTANCES_DIR": instances, **TEST_ENV}
    env.update({"REDISGATE_" + k.upper(): v for k, v in extra.items()})
    return load_settings(env=env)


@dataclass
class Response:
    status: int
    headers: Any
    body: Any

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and "error" in self.body, self.body
        error: dict[str, Any] = self.body["error"]
        return error


class Api:
    """An HTTP client for the control API that checks responses against the document."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.document: dict[str, Any] | None = None
        self.seen: set[tuple[str, str, int]] = set()

    async def load_document(self) -> None:
        response = await self.client.get("/openapi.json")
        assert response.status == 200
        self.document = await response.json()

    def _operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        assert self.document is not None
        for template, methods in self.document["paths"].items():
            pattern = "^" + re.sub(r"\{\w+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in methods:
                return template, methods[method.lower()]
        raise AssertionError(f"{method} {path} is not in /openapi.json")

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Response:
        if self.document is None:
            await self.load_document()
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        raw: ClientResponse = await self.client.request(
            method,
            path,
            json=json,
            data=data,
            headers=all_headers,
            params=params,
            allow_redirects=False,  # a redirect is the response checked against the document
        )
        body: Any = None
        if raw.content_type == "application/json":
            body = await raw.json()
        else:
            body = await raw.text()
        self._check(method, path.split("?")[0], raw.status, raw.content_type, body)
        return Response(raw.status, raw.headers, body)

    def _check(self, method: str, path: str, status: int, ctype: str, body: Any) -> None:
        assert self.document is not None
        template, op = self._operation(method, path)
        self.seen.add((method.upper(), template, status))
        documented = op["responses"]
        assert str(status) in documented, (
            f"{method} {template} answered {status}, not documented ({sorted(documented)})"
        )
        content = documented[str(status)].get("content")
        if content is None:
            assert body in ("", None), f"{method} {template} {status}: undocumented body {body!r}"
            return
        assert ctype in content, f"{method} {template} {status}: content type {ctype}"
        schema = content[ctype]["schema"]
        if "$ref" in schema:
            schema = self.document["components"]["schemas"][schema["$ref"].split("/")[-1]]
        errors = list(
            Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(body)
        )
        assert not errors, f"{method} {template} {status}: {errors[0].message} in {body!r}"

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Response:
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Response:
        return await self.request("PATCH", path, **kw)

    async def put(self, path: str, **kw: Any) -> Response:
        return await self.request("PUT", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.request("DELETE", path, **kw)

    # --- Shortcuts ---

    async def register(
        self, email: str | None = None, password: str = PASSWORD, name: str = ""
    ) -> dict[str, Any]:
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
        body: dict[str, Any] = {"email": email, "password": password}
        if name:
            body["name"] = name
        response = await self.post("/v1/auth/register", json=body)
        assert response.status == 201, response.body
        result: dict[str, Any] = response.body
        result["email"] = email
        return result

    async def new_member(self, owner: dict[str, Any], role: str) -> dict[str, Any]:
        """A newly registered user, added to `owner`'s first org with `role`."""
        member = await self.register()
        added = await self.post(
            f"/v1/orgs/{owner['org']['id']}/members",
            token=owner["access_token"],
            json={"email": member["email"], "role": role},
        )
        assert added.status == 201, added.body
        return member


@pytest.fixture
async def settings(database_url: str) -> Settings:
    return control_settings(database_url)


async def api_for(settings: Settings) -> AsyncIterator[Api]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield Api(client)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async for a in api_for(settings):
        yield a
