"""The OpenAPI document against the served routes, /docs, errors for unknown routes, request
ids, security headers, CORS, and 503 while PostgreSQL is down."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from redisgate.control import openapi
from redisgate.control.app import create_app
from redisgate.control.routes import ROUTES
from redisgate.control.spec import Access, Route
from redisgate.launcher.process import free_port
from tests.integration.control.conftest import Api, api_for, control_settings


async def test_document_lists_exactly_the_served_routes(api: Api) -> None:
    served = {
        (r.method, r.resource.canonical)
        for r in create_app(control_settings("postgresql://x@127.0.0.1/x")).router.routes()
        if r.resource is not None
    }
    document = (await api.get("/openapi.json")).body
    documented = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    assert served == documented
    assert len(documented) == len(ROUTES)
    assert document["openapi"].startswith("3.1")
    for path, methods in document["paths"].items():
        for op in methods.values():
            for response in op["responses"].values():
                for media in response.get("content", {}).values():
                    schema = media["schema"]
                    if "$ref" not in schema:
                        Draft202012Validator.check_schema(schema)
            names = re.findall(r"\{(\w+)\}", path)
            assert [p["name"] for p in op.get("parameters", []) if p["in"] == "path"] == names


def test_document_is_valid_openapi_3_1() -> None:
    validate(openapi.build(ROUTES))  # against the OpenAPI 3.1 meta-schema


def test_each_route_documents_success_and_its_access_errors() -> None:
    document = openapi.build(ROUTES)
    for route in ROUTES:
        responses = document["paths"][route.path][route.method.lower()]["responses"]
        assert str(route.status) in responses
        if route.access is not Access.PUBLIC:
            assert "401" in responses
        if route.access is Access.ORG:
            assert {"403", "404"} <= set(responses)


async def test_docs_page_is_self_contained(api: Api) -> None:
    page = await api.get("/docs")
    assert page.status == 200
    html = page.body
    for route in ROUTES:
        assert route.path.replace("{", "").split("/")[-1] in html.replace("{", "")
    assert "<script" not in html
    srcs = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert srcs and all(s.startswith(("/", "#")) for s in srcs), srcs
    css = await api.get("/docs/docs.css")
    assert css.status == 200 and "font" in css.body


async def test_the_api_reference_stays_at_docs(api: Api) -> None:
    """The control URL is the console now (test_console.py); the reference keeps /docs."""
    root = await api.get("/")
    assert root.status == 200 and "RedisGate" in root.body
    docs = await api.get("/docs")
    assert docs.status == 200 and "<h1>RedisGate control API" in docs.body


async def test_unknown_route_and_method_are_json(api: Api) -> None:
    raw = await api.client.get("/v1/nope")
    assert raw.status == 404
    assert (await raw.json())["error"]["code"] == "route_not_found"
    raw = await api.client.put("/v1/me")
    assert raw.status == 405
    assert (await raw.json())["error"]["code"] == "method_not_allowed"


async def test_request_id_echoed_or_made(api: Api) -> None:
    given = await api.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = await api.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])


async def test_security_headers_on_every_response(api: Api) -> None:
    for response in (
        await api.get("/healthz"),
        await api.get("/v1/me"),
        await api.post("/v1/auth/login", json={}),
        await api.get("/docs"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
        assert "Access-Control-Allow-Origin" not in response.headers


@pytest.fixture
async def cors_api(database_url: str) -> AsyncIterator[Api]:
    settings = control_settings(
        database_url, control_cors_origins="https://dash.example.com, http://localhost:3000"
    )
    async for api in api_for(settings):
        yield api


async def test_cors_for_configured_origins_only(cors_api: Api) -> None:
    client = cors_api.client
    preflight = await client.options(
        "/v1/me",
        headers={
            "Origin": "https://dash.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    simple = await cors_api.get("/healthz", headers={"Origin": "http://localhost:3000"})
    assert simple.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert simple.headers["Vary"] == "Origin"
    other = await cors_api.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = await client.options(
        "/v1/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert refused.status == 403 and "Access-Control-Allow-Origin" not in refused.headers


async def test_api_answers_503_while_postgres_is_down() -> None:
    dead = f"postgresql://nobody:pw@127.0.0.1:{free_port()}/redisgate"
    async for api in api_for(control_settings(dead)):
        response = await api.post(
            "/v1/auth/register", json={"email": "a@example.com", "password": "long enough pw"}
        )
        assert response.status == 503
        assert response.error["code"] == "database_unavailable"
        assert "pw@" not in response.error["message"]


PROTECTED = [r for r in ROUTES if r.access is not Access.PUBLIC]


@pytest.mark.parametrize("route", PROTECTED, ids=[f"{r.method} {r.path}" for r in PROTECTED])
async def test_every_protected_route_needs_a_token(api: Api, route: Route) -> None:
    path = re.sub(r"\{\w+\}", "00000000-0000-0000-0000-000000000000", route.path)
    response = await api.request(route.method, path, json={} if route.body else None)
    assert response.status == 401 and response.error["code"] == "unauthenticated"


async def test_requests_are_logged_with_their_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="redisgate.control.access"):
        await api.get("/v1/me", headers={"X-Request-ID": "trace-me-1"})
        await api.get("/healthz", headers={"X-Request-ID": "trace-me-2"})
    messages = [r.getMessage() for r in caplog.records]
    assert any("GET /v1/me 401" in m and "request_id=trace-me-1" in m for m in messages)
    assert not any("trace-me-2" in m for m in messages)  # probes stay out of the info log


async def test_client_address_from_trusted_proxies_only(database_url: str) -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    for trusted, expected in (("127.0.0.1", "203.0.113.9"), (None, "127.0.0.1")):
        extra = {"control_trusted_proxies": trusted} if trusted else {}
        async for api in api_for(control_settings(database_url, **extra)):
            user = await api.register()
            org = user["org"]["id"]
            await api.patch(
                f"/v1/orgs/{org}",
                token=user["access_token"],
                json={"name": "via proxy"},
                headers=forwarded,
            )
            log = await api.get(f"/v1/orgs/{org}/audit", token=user["access_token"])
            assert log.body["items"][0]["client_addr"] == expected
