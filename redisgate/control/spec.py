"""How a route is declared: method, path, handler, who may call it, and its JSON schemas.

Each route is declared once (in `routes.py`); the aiohttp router, the access checks, request
validation and `/openapi.json` are all derived from these declarations, so the document
cannot list a route the app does not serve, or the other way round.

Schemas are JSON Schema (2020-12) dicts: OpenAPI 3.1 embeds them as they are, and `jsonschema`
validates requests with them.
"""

from __future__ import annotations

import contextlib
import enum
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from redisgate.config import Settings
from redisgate.control.roles import Role
from redisgate.control.state import POOL, REQUEST_ID, SETTINGS, TRUSTED_PROXIES
from redisgate.errors import NotFound
from redisgate.store.audit import Actor
from redisgate.store.db import map_exceptions
from redisgate.store.users import User

Schema = dict[str, Any]
Handler = Callable[["Call"], Awaitable[web.StreamResponse]]


class Access(enum.Enum):
    PUBLIC = "public"  # no token
    USER = "user"  # any logged-in user
    ORG = "org"  # a member of {org_id} whose role allows the route's action
    PLATFORM_ADMIN = "platform_admin"  # users created with `redisgate admin create-user --admin`


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter (or with `location`, a header or cookie one the handler reads
    itself); `schema` is JSON Schema of its value after conversion."""

    name: str
    schema: Schema
    description: str
    required: bool = False
    location: str = "query"  # "query", "header" or "cookie"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    access: Access
    action: str | None = None  # the roles.PERMISSIONS action of an ORG route
    body: Schema | None = None
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()  # header and cookie parameters (documented; handler reads)
    response: Schema | None = None  # None: no body (204) or not JSON
    response_headers: tuple[tuple[str, str], ...] = ()  # (name, description) of the success
    status: int = 200
    errors: tuple[int, ...] = ()
    tag: str = "misc"
    content_type: str = "application/json"

    @property
    def streams(self) -> bool:
        """A long-lived response: the handler runs without holding a database connection."""
        return self.content_type == "text/event-stream"


@dataclass(slots=True)
class Caller:
    user: User
    session_id: uuid.UUID
    token_expires_at: float = 0.0  # the access token's `exp` (Unix time)


@dataclass(slots=True)
class Call:
    """What a handler gets: the request, its validated input and who is asking."""

    request: web.Request
    route: Route
    body: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    caller: Caller | None = None
    org_id: uuid.UUID | None = None
    role: Role | None = None
    conn: asyncpg.Connection | None = None

    @property
    def settings(self) -> Settings:
        return self.request.app[SETTINGS]

    @property
    def user(self) -> User:
        assert self.caller is not None, "route declared PUBLIC"
        return self.caller.user

    def path_id(self, name: str) -> uuid.UUID:
        """A uuid path parameter; anything else cannot name a row, so 404."""
        try:
            return uuid.UUID(self.request.match_info[name])
        except ValueError:
            raise NotFound(f"no such {name.removesuffix('_id')}", code="not_found") from None

    def actor(self, user_id: uuid.UUID | None = None) -> Actor:
        """Who acts (the caller, or `user_id` on routes before login) for the audit log."""
        return Actor(
            user_id=user_id or (self.caller.user.id if self.caller else None),
            client_addr=client_addr(self.request),
            request_id=self.request.get(REQUEST_ID, ""),
        )

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[asyncpg.Connection]:
        """The request's connection (taken once, by the dispatcher or here)."""
        if self.conn is not None:
            yield self.conn
            return
        with map_exceptions("PostgreSQL is unreachable"):
            async with self.request.app[POOL].acquire() as conn:
                self.conn = conn
                try:
                    yield conn
                finally:
                    self.conn = None


def client_addr(request: web.Request) -> str:
    """The client's address: the TCP peer, or for a trusted proxy the last address in
    X-Forwarded-For that is not itself a trusted proxy (earlier entries can be forged)."""
    peer = request.remote or ""
    trusted = request.app[TRUSTED_PROXIES]
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return peer


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(data: Any) -> str:
    return json.dumps(data, default=_default, separators=(",", ":"))


def reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def no_content() -> web.Response:
    return web.Response(status=204)


# --- Schema building blocks ----------------------------------------------------------------


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """A closed object schema: unknown fields are rejected."""
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


UUID: Schema = {"type": "string", "format": "uuid"}
TIME: Schema = {"type": "string", "format": "date-time"}
EMAIL: Schema = {
    "type": "string",
    "minLength": 3,
    "maxLength": 254,
    "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    # Validation replaces the value by `emails.normalize_email`'s (or names the field).
    "x-normalize": "email",
}
NAME: Schema = {"type": "string", "maxLength": 200}
ROLE: Schema = {"type": "string", "enum": [r.value for r in Role]}
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size (default 50).")
CURSOR = Param(
    "cursor", {"type": "string", "maxLength": 200}, "The `next_cursor` of the previous page."
)
PAGE = (LIMIT, CURSOR)


def page_of(item: Schema) -> Schema:
    return obj(
        {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}}
    )


ERROR: Schema = obj(
    {
        "error": obj(
            {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            }
        )
    }
)
