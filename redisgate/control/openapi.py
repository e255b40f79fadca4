"""The OpenAPI 3.1 document, derived from the route table (never written by hand)."""

from __future__ import annotations

import re
from typing import Any

from redisgate import __version__
from redisgate.control.roles import PERMISSIONS
from redisgate.control.spec import ERROR, Access, Route

_PATH_PARAM = re.compile(r"\{(\w+)\}")

_STATUS_TEXT = {
    400: "The body is not a JSON object (`invalid_json`).",
    401: "No valid access token (`unauthenticated`, `token_expired`, `session_ended`...).",
    403: "The caller's role does not allow this (`insufficient_role`, `platform_admin_only`), "
    "or a request using the rg_refresh cookie lacks a matching X-CSRF-Token (`csrf_failed`).",
    404: "Not found, or in an organization the caller is not a member of.",
    409: "Conflicts with what is stored (`email_taken`, `already_member`, `last_owner`, "
    "`quota_exceeded`).",
    413: "The body is larger than `control_max_body_bytes` (`body_too_large`).",
    422: "Invalid fields; `details.fields` names each (`validation_failed`).",
    429: "Too many failed logins (or registrations) from this address or for this email, or "
    "too many live-update streams open; see the `Retry-After` header (`too_many_requests`).",
    503: "PostgreSQL is unavailable (`database_unavailable`).",
}


def _access_text(route: Route) -> str:
    if route.access is Access.PUBLIC:
        return "No token needed."
    if route.access is Access.PLATFORM_ADMIN:
        return "Platform admins only."
    if route.access is Access.ORG:
        assert route.action is not None
        roles = ", ".join(sorted(r.value for r in PERMISSIONS[route.action][0]))
        return f"Action `{route.action}`: roles {roles}."
    return "Any logged-in user."


def operation_id(route: Route) -> str:
    return route.handler.__name__


def build(routes: list[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "operationId": operation_id(route),
            "summary": route.summary,
            "description": _access_text(route),
            "tags": [route.tag],
        }
        params = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in _PATH_PARAM.findall(route.path)
        ]
        params += [
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "schema": p.schema,
                "description": p.description,
            }
            for p in route.query
        ]
        params += [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required,
                "schema": p.schema,
                "description": p.description,
            }
            for p in route.headers
        ]
        if params:
            op["parameters"] = params
        if route.access is not Access.PUBLIC:
            op["security"] = [{"bearer": []}]
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": route.body}},
            }
        ok: dict[str, Any] = {"description": "Success."}
        if route.response is not None:
            ok["content"] = {route.content_type: {"schema": route.response}}
        if route.response_headers:
            ok["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in route.response_headers
            }
        responses: dict[str, Any] = {str(route.status): ok}
        for status in _errors_of(route):
            responses[str(status)] = {
                "description": _STATUS_TEXT[status],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        op["responses"] = responses
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RedisGate control API",
            "version": __version__,
            "description": "Users, sessions, organizations, roles, quotas and audit. Errors are "
            '`{"error": {"code", "message", "details"}}`; list endpoints page with `limit` and '
            "`cursor` (pass back `next_cursor`).",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _errors_of(route: Route) -> list[int]:
    found = set(route.errors)
    if route.access is not Access.PUBLIC:
        found.add(401)
    if route.access is Access.ORG:
        found |= {403, 404}
    if route.access is Access.PLATFORM_ADMIN:
        found.add(403)
    if route.body is not None:
        found |= {400, 413, 422}
    if route.query:
        found.add(422)
    if route.path.startswith("/v1"):
        found.add(503)
    return sorted(found)
