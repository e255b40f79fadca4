"""Backend servers of the `static` provisioner (`/v1/admin/servers`, platform admins only).

Each registered Redis server lends one db per instance. The server's password is stored for
the gateway and never returned.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from redisgate.control.spec import TIME, UUID, Call, no_content, obj, reply
from redisgate.store import audit, backend_servers

SERVER: dict[str, Any] = obj(
    {
        "id": UUID,
        "name": {"type": "string"},
        "host": {"type": "string"},
        "port": {"type": "integer"},
        "username": {"type": ["string", "null"]},
        "tls": {"type": "boolean"},
        "databases": {"type": "integer"},
        "created_at": TIME,
    },
    {"databases_used": {"type": "integer"}},
)
SERVERS_REPLY = obj({"items": {"type": "array", "items": SERVER}})
CREATE_BODY = obj(
    {
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"},
        "host": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^\S+$"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    },
    {
        "username": {"type": "string", "minLength": 1, "maxLength": 200},
        "password": {"type": "string", "minLength": 1, "maxLength": 1000},
        "tls": {"type": "boolean"},
        "databases": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
    },
)


async def list_servers(call: Call) -> web.StreamResponse:
    async with call.connect() as conn:
        rows = await backend_servers.list_servers(conn)
    return reply({"items": [server.public(used) for server, used in rows]})


async def create_server(call: Call) -> web.StreamResponse:
    body = call.body
    async with call.connect() as conn, conn.transaction():
        server = await backend_servers.create_server(
            conn,
            name=body["name"].strip(),
            host=body["host"],
            port=body["port"],
            username=body.get("username"),
            password=body.get("password"),
            tls=body.get("tls", False),
            databases=body.get("databases", 16),
        )
        await audit.record(
            conn,
            call.actor(),
            "server.create",
            org_id=None,
            target_type="backend_server",
            target_id=server.id,
            after=server.public(),
        )
    return reply(server.public(0), status=201)


async def delete_server(call: Call) -> web.StreamResponse:
    server_id = call.path_id("server_id")
    async with call.connect() as conn, conn.transaction():
        server = await backend_servers.get_server(conn, server_id)
        await backend_servers.delete_server(conn, server_id)
        await audit.record(
            conn,
            call.actor(),
            "server.delete",
            org_id=None,
            target_type="backend_server",
            target_id=server_id,
            before=server.public(),
        )
    return no_content()
