"""Data-plane limits in the API: the `limits` object of keys and instances, and org defaults.

Keys and instances carry `"limits": {ops_per_second, burst, max_connections,
max_request_bytes, daily_commands, daily_bytes}`; each is a whole number or null (inherit).
On create and PATCH the object may be partial: given fields are set (null clears), absent ones
stay. An org's defaults for its instances are set by platform admins
(`PUT /v1/orgs/{org_id}/limits`, which replaces all six) and readable by its members. How they
combine, and what the gateway does with them, is in docs/limits.md.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from redisgate.control.spec import Call, obj, reply
from redisgate.limits import FIELDS, MAXIMUM, MINIMUM, Limits
from redisgate.store import audit
from redisgate.store import limits as limit_store


def _field(name: str) -> dict[str, Any]:
    return {
        "type": ["integer", "null"],
        "minimum": MINIMUM[name],
        "maximum": MAXIMUM[name],
    }


LIMITS: dict[str, Any] = obj({name: _field(name) for name in FIELDS})  # replies: all six
LIMITS_CHANGE: dict[str, Any] = obj({}, {name: _field(name) for name in FIELDS})  # bodies
ORG_LIMITS_REPLY = obj({"limits": LIMITS})


def changed(current: Limits, body: dict[str, Any]) -> Limits | None:
    """The limits after applying the body's `limits` (None when the body has none)."""
    if "limits" not in body:
        return None
    return current.merged(body["limits"])


async def get_org_limits(call: Call) -> web.StreamResponse:
    assert call.org_id
    async with call.connect() as conn:
        limits = await limit_store.org_limits(conn, call.org_id)
    return reply({"limits": limits.public()})


async def put_org_limits(call: Call) -> web.StreamResponse:
    """Platform admins set an org's defaults for its instances (absent fields: null)."""
    org_id = call.path_id("org_id")
    limits = Limits().merged(call.body)
    async with call.connect() as conn, conn.transaction():
        before = await limit_store.org_limits(conn, org_id)
        await limit_store.set_limits(conn, "org_quotas", org_id, limits)
        await audit.record(
            conn,
            call.actor(),
            "limits.update",
            org_id=org_id,
            target_type="org",
            target_id=org_id,
            before=before.public(),
            after=limits.public(),
        )
    return reply({"limits": limits.public()})
