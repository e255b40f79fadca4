"""The web console's short-lived key for its data browser and CLI
(`POST /v1/orgs/{org_id}/instances/{instance_id}/console-key`).

The console runs commands through the gateway's HTTP command API (docs/http.md) like any
client, so it needs an API key; the control plane mints one for the signed-in user, per
instance, on demand. It is an ordinary key at the gateway (checked, limited, metered and
refused once expired: the gateway's sweep ends its sessions) with three differences, kept in
the `console` column: it expires within `console_key_ttl_s` (at most 15 minutes), the keys API
neither lists nor counts it against `max_api_keys`, and expired ones are deleted (a few on each
mint, the rest by the control process's hourly pruning).

Its scope never exceeds what the caller could give a key of their own: a role that may manage
keys (and so write data) gets `CONSOLE_WRITE_SCOPE`, the `full` preset without the commands
that reach past the data (`@admin`, `@dangerous`) and without scripts; any other role (a
viewer) gets the `read-only` preset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from redisgate import api_key_format
from redisgate.control import roles
from redisgate.control.instances import rest_url
from redisgate.control.spec import TIME, Call, obj, reply
from redisgate.errors import Conflict
from redisgate.scopes import PRESETS, parse_scope
from redisgate.store import api_keys, audit, instances

CONSOLE_WRITE_SCOPE = (
    "+@all -@admin -@dangerous -@scripting +info +keys +sort +sort_ro allkeys allchannels"
)
CONSOLE_READ_SCOPE = PRESETS["read-only"]
# Expired console keys deleted per mint, and how long after expiry (bounded work per request).
CLEANUP_PER_MINT = 100
CLEANUP_GRACE_S = 3600.0

CONSOLE_KEY: dict[str, Any] = obj(
    {
        "token": {
            "type": "string",
            "description": "The API key: a bearer token for rest_url (docs/http.md).",
        },
        "key_id": {"type": "string"},
        "expires_at": TIME,
        "rest_url": {"type": "string", "description": "The HTTP command API's base URL."},
        "scopes": {
            "type": "string",
            "description": "Canonical scope: read-only for viewers; for roles that may "
            "manage keys, every data command but @admin, @dangerous and @scripting.",
        },
    }
)


def scope_for(role: roles.Role) -> str:
    """The canonical scope of a console key for `role`."""
    text = CONSOLE_WRITE_SCOPE if roles.allows(role, "keys.manage") else CONSOLE_READ_SCOPE
    return parse_scope(text).canonical


async def create_console_key(call: Call) -> web.StreamResponse:
    assert call.org_id and call.role
    base_url = rest_url(call)
    if base_url is None:
        raise Conflict(
            "the gateway's HTTP command API is off (http_enabled), so the console cannot "
            "run commands",
            code="http_api_disabled",
        )
    scopes = scope_for(call.role)
    minted = api_key_format.mint()
    expires_at = datetime.now(UTC) + timedelta(seconds=call.settings.console_key_ttl_s)
    async with call.connect() as conn, conn.transaction():
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
        if instance.status != "running":
            raise Conflict(
                f"the instance is {instance.status}, not running; try again once it runs",
                code="instance_not_running",
            )
        await api_keys.delete_expired_console_keys(
            conn, grace_s=CLEANUP_GRACE_S, limit=CLEANUP_PER_MINT
        )
        key = await api_keys.create_console_key(
            conn,
            key_id=minted.key_id,
            digest=minted.digest,
            instance_id=instance.id,
            org_id=call.org_id,
            name=f"console ({call.user.email})"[:100],
            scopes=scopes,
            expires_at=expires_at,
            created_by=call.user.id,
        )
        await audit.record(
            conn,
            call.actor(),
            "key.console_create",
            org_id=call.org_id,
            target_type="api_key",
            target_id=key.id,
            after={
                "instance_id": str(instance.id),
                "scopes": scopes,
                "expires_at": expires_at.isoformat(),
                "role": call.role.value,
            },
        )
    return reply(
        {
            "token": minted.token,
            "key_id": key.id,
            "expires_at": expires_at.isoformat(),
            "rest_url": base_url,
            "scopes": scopes,
        },
        status=201,
    )


async def prune_expired(conn: asyncpg.Connection) -> int:
    """Delete every console key expired over the grace period (the hourly pruning)."""
    total = 0
    while True:
        deleted = await api_keys.delete_expired_console_keys(
            conn, grace_s=CLEANUP_GRACE_S, limit=1000
        )
        total += deleted
        if deleted < 1000:
            return total
