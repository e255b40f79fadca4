"""API keys of an instance (`/v1/orgs/{org_id}/instances/{instance_id}/keys...`).

The token is shown once, in the reply that creates it, with a ready connection URL; only its
SHA-256 digest is stored. Scopes are validated with the parser the gateway uses and stored in
canonical form, so what a listing shows is exactly what the gateway enforces. A key's
`limits` (control/limits.py) apply on top of its instance's.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from redisgate import api_key_format
from redisgate.control import pagination
from redisgate.control.limits import LIMITS, LIMITS_CHANGE, changed
from redisgate.control.spec import TIME, UUID, Call, no_content, obj, page_of, reply
from redisgate.errors import Conflict, ValidationFailed
from redisgate.limits import NO_LIMITS
from redisgate.scopes import DEFAULT_PRESET, PRESETS, ScopeError, parse_scope, prefix_scope
from redisgate.store import api_keys, audit, instances
from redisgate.store import limits as limit_store
from redisgate.store.api_keys import ApiKey

KEY_NAME = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}
SCOPES = {"type": "string", "maxLength": 8192}
PRESET = {"type": "string", "enum": sorted(PRESETS)}
PREFIX = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^\S+$"}
EXPIRES = {"type": ["string", "null"], "format": "date-time"}
KEY: dict[str, Any] = obj(
    {
        "id": {"type": "string"},
        "instance_id": UUID,
        "name": {"type": "string"},
        "scopes": {"type": "string"},
        "expires_at": {"type": ["string", "null"]},
        "last_used_at": {"type": ["string", "null"]},
        "created_at": TIME,
        "updated_at": TIME,
        "revoked_at": {"type": ["string", "null"]},
        "limits": LIMITS,
    }
)
NEW_KEY: dict[str, Any] = obj(
    {**KEY["properties"], "token": {"type": "string"}, "url": {"type": "string"}}
)
KEYS_REPLY = page_of(KEY)
CREATE_BODY = obj(
    {"name": KEY_NAME},
    {
        "scopes": SCOPES,
        "preset": PRESET,
        "prefix": PREFIX,
        "expires_at": EXPIRES,
        "limits": LIMITS_CHANGE,
    },
)
PATCH_BODY = {
    **obj(
        {},
        {"name": KEY_NAME, "scopes": SCOPES, "expires_at": EXPIRES, "limits": LIMITS_CHANGE},
    ),
    "minProperties": 1,
}


def _scopes(body: dict[str, Any]) -> str:
    """The canonical scope from `scopes`, or `preset` (+ `prefix`); 422 naming the problem."""
    if "scopes" in body and ("preset" in body or "prefix" in body):
        raise ValidationFailed(
            "give either scopes, or a preset (with an optional prefix), not both",
            details={"fields": {"scopes": "cannot be combined with preset or prefix"}},
        )
    try:
        if "scopes" in body:
            text = body["scopes"]
        elif "prefix" in body:
            text = prefix_scope(body["prefix"], body.get("preset", DEFAULT_PRESET))
        else:
            text = PRESETS[body.get("preset", DEFAULT_PRESET)]
        return parse_scope(text).canonical
    except ScopeError as exc:
        raise ValidationFailed(
            f"invalid scopes: {exc}",
            details={"fields": {"scopes": str(exc)}, "position": exc.position},
        ) from None
    except ValueError as exc:
        raise ValidationFailed(str(exc), details={"fields": {"prefix": str(exc)}}) from None


def _expiry(body: dict[str, Any]) -> datetime | None:
    raw = body.get("expires_at")
    if raw is None:
        return None
    try:  # RFC 3339 allows lowercase t and z, which fromisoformat does not
        value = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            "expires_at is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)",
            details={"fields": {"expires_at": "is not an RFC 3339 time"}},
        ) from None
    if value.year >= 9000:
        raise ValidationFailed(
            "expires_at is too far away; leave it out (null) for a key that never expires",
            details={"fields": {"expires_at": "is after the year 8999"}},
        )
    if value.tzinfo is None:
        raise ValidationFailed(
            "expires_at needs a time zone (e.g. 2027-01-01T00:00:00Z)",
            details={"fields": {"expires_at": "needs a time zone"}},
        )
    if value <= datetime.now(UTC):
        raise ValidationFailed(
            "expires_at is in the past", details={"fields": {"expires_at": "is in the past"}}
        )
    return value


async def list_keys(call: Call) -> web.StreamResponse:
    assert call.org_id
    limit = call.query.get("limit", pagination.DEFAULT_LIMIT)
    after = pagination.time_text(call.query.get("cursor"))
    async with call.connect() as conn:
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
        rows = await api_keys.list_keys(conn, instance.id, after=after, limit=limit)
    key = [rows[-1].created_at.isoformat(), rows[-1].id] if rows else None
    return reply(pagination.page([k.public() for k in rows], limit, key))


async def create_key(call: Call) -> web.StreamResponse:
    assert call.org_id
    scopes, expires_at = _scopes(call.body), _expiry(call.body)
    minted = api_key_format.mint()
    async with call.connect() as conn, conn.transaction():
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
        key = await api_keys.create_key(
            conn,
            key_id=minted.key_id,
            digest=minted.digest,
            instance_id=instance.id,
            org_id=call.org_id,
            name=call.body["name"].strip(),
            scopes=scopes,
            expires_at=expires_at,
            created_by=call.user.id,
        )
        new_limits = changed(NO_LIMITS, call.body)
        if new_limits is not None:
            await limit_store.set_limits(conn, "api_keys", key.id, new_limits)
            key = dataclasses.replace(key, limits=new_limits)
        await audit.record(
            conn,
            call.actor(),
            "key.create",
            org_id=call.org_id,
            target_type="api_key",
            target_id=key.id,
            after=_audited(key),
        )
    url = api_key_format.url(minted.token, *call.settings.gateway_address())
    return reply({**key.public(), "token": minted.token, "url": url}, status=201)


async def get_key(call: Call) -> web.StreamResponse:
    assert call.org_id
    async with call.connect() as conn:
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
        key = await api_keys.get_key(conn, instance.id, call.request.match_info["key_id"])
    return reply(key.public())


async def patch_key(call: Call) -> web.StreamResponse:
    assert call.org_id
    body = call.body
    scopes = _scopes({"scopes": body["scopes"]}) if "scopes" in body else None
    expires_at = _expiry(body) if body.get("expires_at") is not None else None
    async with call.connect() as conn, conn.transaction():
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
        before = await api_keys.get_key(
            conn, instance.id, call.request.match_info["key_id"], lock=True
        )
        if before.revoked_at is not None:
            raise Conflict("this key is revoked; create a new one", code="key_revoked")
        new_limits = changed(before.limits, body)
        if new_limits is not None:  # first, so the update below returns them
            await limit_store.set_limits(conn, "api_keys", before.id, new_limits)
        after = await api_keys.update_key(
            conn,
            before,
            name=body["name"].strip() if "name" in body else None,
            scopes=scopes,
            expires_at=expires_at,
            clear_expiry="expires_at" in body and body["expires_at"] is None,
        )
        await audit.record(
            conn,
            call.actor(),
            "key.update",
            org_id=call.org_id,
            target_type="api_key",
            target_id=after.id,
            before=_audited(before),
            after=_audited(after),
        )
    return reply(after.public())


async def revoke_key(call: Call) -> web.StreamResponse:
    assert call.org_id
    async with call.connect() as conn, conn.transaction():
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
        before = await api_keys.get_key(
            conn, instance.id, call.request.match_info["key_id"], lock=True
        )
        key = await api_keys.revoke_key(conn, before.id)
        if before.revoked_at is None:
            await audit.record(
                conn,
                call.actor(),
                "key.revoke",
                org_id=call.org_id,
                target_type="api_key",
                target_id=key.id,
                before=_audited(before),
            )
    return no_content()


def _audited(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "scopes": key.scopes,
        "expires_at": None if key.expires_at is None else key.expires_at.isoformat(),
        "limits": key.limits.public(),
    }
