"""Health endpoints: /healthz (the process answers) and /readyz (it can do real work)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from redisgate.control.spec import Call, obj
from redisgate.control.state import POOL, SETTINGS
from redisgate.errors import StoreError
from redisgate.store import migrations
from redisgate.store.db import map_exceptions
from redisgate.store.installation import get_installation_id

READY_TIMEOUT_S = 3.0


HEALTHZ_REPLY = obj({"status": {"const": "ok"}})
READYZ_REPLY = obj({"status": {"const": "ready"}, "installation_id": {"type": "string"}})


async def healthz(call: Call) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def readyz(call: Call) -> web.StreamResponse:
    """Ready when PostgreSQL answers and every migration shipped with us is applied."""
    request = call.request
    settings = request.app[SETTINGS]
    folder = settings.migrations_dir or migrations.default_migrations_dir()
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            with map_exceptions("PostgreSQL is unreachable"):
                async with request.app[POOL].acquire() as conn:
                    todo = await migrations.pending(conn, folder)
                    installation = await get_installation_id(conn) if not todo else None
    except (StoreError, TimeoutError) as exc:
        message = str(exc) or f"PostgreSQL did not answer within {READY_TIMEOUT_S:g}s"
        return _unavailable("database_unavailable", message)
    if todo:
        names = ", ".join(m.path.name for m in todo)
        return _unavailable("migrations_pending", f"run `redisgate migrate`: pending {names}")
    return web.json_response({"status": "ready", "installation_id": str(installation)})


def _unavailable(code: str, message: str) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": {}}}
    return web.json_response(body, status=503)
