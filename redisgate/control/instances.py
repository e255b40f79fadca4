"""Instances: a tenant's Redis behind the gateway (`/v1/orgs/{org_id}/instances...`).

Creating one is two steps: the row (`provisioning`) is written inside the transaction that
checks the org's instance and memory quotas; then, after commit, the provisioner gives it a
Redis and the row becomes `running` (or `failed` with a reason). The reply carries whichever
status it reached. Users see the gateway's address, never the backend's. An instance's
`limits` (control/limits.py) apply to all its keys together.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import redis.exceptions
from aiohttp import web

from redisgate import api_key_format
from redisgate.control import pagination
from redisgate.control.limits import LIMITS, LIMITS_CHANGE, changed
from redisgate.control.spec import TIME, UUID, Call, no_content, obj, page_of, reply
from redisgate.control.state import PROVISIONING
from redisgate.errors import Conflict, ServiceUnavailable
from redisgate.limits import NO_LIMITS
from redisgate.provision import EVICTION_POLICIES
from redisgate.provision.backend_client import client_for
from redisgate.store import api_keys, audit, instances
from redisgate.store import limits as limit_store
from redisgate.store.instances import Instance

INSTANCE_NAME = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}
MEMORY = {"type": "integer", "minimum": 1, "maximum": 1_048_576}
POLICY = {"type": "string", "enum": list(EVICTION_POLICIES)}
ENDPOINT = obj({"host": {"type": "string"}, "port": {"type": "integer"}})
INSTANCE: dict[str, Any] = obj(
    {
        "id": UUID,
        "org_id": UUID,
        "name": {"type": "string"},
        "memory_mb": {"type": "integer"},
        "eviction_policy": POLICY,
        "persistence": {"type": "boolean"},
        "status": {"type": "string", "enum": list(instances.STATUSES)},
        "status_reason": {"type": "string"},
        "endpoint": ENDPOINT,
        "redis_cli": {"type": "string"},
        "rest_url": {
            "type": ["string", "null"],
            "description": "Base URL of the HTTP command API (Upstash-compatible REST: "
            "docs/http.md), used with an API key as a bearer token; null when it is off.",
        },
        "created_at": TIME,
        "updated_at": TIME,
        "limits": LIMITS,
    }
)
INSTANCES_REPLY = page_of(INSTANCE)
PERSISTENCE = {
    "type": "boolean",
    "default": True,
    "description": "Keep the data across restarts of the instance's Redis: an append-only "
    "file fsynced every second plus periodic snapshots (on by default; false: a cache whose "
    "data a restart may lose). The static provisioner records it only: its servers persist "
    "as their operator configured them.",
}
CREATE_BODY = obj(
    {"name": INSTANCE_NAME, "memory_mb": MEMORY},
    {"eviction_policy": POLICY, "persistence": PERSISTENCE, "limits": LIMITS_CHANGE},
)
PATCH_BODY = {
    **obj(
        {},
        {
            "name": INSTANCE_NAME,
            "memory_mb": MEMORY,
            "eviction_policy": POLICY,
            "persistence": {k: v for k, v in PERSISTENCE.items() if k != "default"},
            "limits": LIMITS_CHANGE,
        },
    ),
    "minProperties": 1,
}
NUMBER = {"type": ["number", "null"]}
STATS_REPLY = obj(
    {
        "used_memory_bytes": {"type": "integer"},
        "used_memory_peak_bytes": {"type": "integer"},
        "maxmemory_bytes": {"type": "integer"},
        "keys": {"type": "integer"},
        "ops_per_second": {"type": "integer"},
        "connected_clients": {"type": "integer"},
        "hit_ratio": NUMBER,
        "evicted_keys": {"type": "integer"},
        "server_wide": {"type": "boolean"},
        "sampled_at": TIME,
    }
)


def rest_url(call: Call) -> str | None:
    """The HTTP command API's base URL (HTTPS when its TLS port is set), None when it is off."""
    settings = call.settings
    if not settings.http_enabled:
        return None
    host, _ = settings.gateway_address()
    if settings.http_tls_port:
        return f"https://{host}:{settings.http_tls_port}"
    return f"http://{host}:{settings.http_port}"


def present(call: Call, instance: Instance) -> dict[str, Any]:
    host, port = call.settings.gateway_address()
    return {
        **instance.public(),
        "endpoint": {"host": host, "port": port},
        "redis_cli": f"redis-cli -u {api_key_format.url('<API_KEY>', host, port)}",
        "rest_url": rest_url(call),
    }


async def list_instances(call: Call) -> web.StreamResponse:
    assert call.org_id
    limit = call.query.get("limit", pagination.DEFAULT_LIMIT)
    after = pagination.time_id(call.query.get("cursor"))
    async with call.connect() as conn:
        rows = await instances.list_instances(conn, call.org_id, after=after, limit=limit)
    key = [rows[-1].created_at.isoformat(), rows[-1].id] if rows else None
    return reply(pagination.page([present(call, i) for i in rows], limit, key))


async def create_instance(call: Call) -> web.StreamResponse:
    assert call.org_id
    provisioning = call.request.app[PROVISIONING]
    body = call.body
    async with call.connect() as conn, conn.transaction():
        instance = await instances.create_instance(
            conn,
            call.org_id,
            name=body["name"].strip(),
            memory_mb=body["memory_mb"],
            eviction_policy=body.get("eviction_policy", "noeviction"),
            persistence=body.get("persistence", True),
            provisioner=provisioning.kind,
            created_by=call.user.id,
        )
        new_limits = changed(NO_LIMITS, body)
        if new_limits is not None:
            await limit_store.set_limits(conn, "instances", instance.id, new_limits)
            instance = dataclasses.replace(instance, limits=new_limits)
        instance = await provisioning.allocate(conn, instance)
        await audit.record(
            conn,
            call.actor(),
            "instance.create",
            org_id=call.org_id,
            target_type="instance",
            target_id=instance.id,
            after=_audited(instance),
        )
    instance = await provisioning.start(instance)
    return reply(present(call, instance), status=201)


async def get_instance(call: Call) -> web.StreamResponse:
    assert call.org_id
    async with call.connect() as conn:
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
    return reply(present(call, instance))


async def patch_instance(call: Call) -> web.StreamResponse:
    assert call.org_id
    body = call.body
    async with call.connect() as conn, conn.transaction():
        before = await instances.get_instance(
            conn, call.org_id, call.path_id("instance_id"), lock=True
        )
        new_limits = changed(before.limits, body)
        if new_limits is not None:  # first, so the update below returns them
            await limit_store.set_limits(conn, "instances", before.id, new_limits)
        after = await instances.update_instance(
            conn,
            before,
            name=body["name"].strip() if "name" in body else None,
            memory_mb=body.get("memory_mb"),
            eviction_policy=body.get("eviction_policy"),
            persistence=body.get("persistence"),
        )
        await audit.record(
            conn,
            call.actor(),
            "instance.update",
            org_id=call.org_id,
            target_type="instance",
            target_id=after.id,
            before=_audited(before),
            after=_audited(after),
        )
        # Applied before commit: a backend that refuses the change rolls the row back.
        if after.status == "running":
            await call.request.app[PROVISIONING].update(after)
    return reply(present(call, after))


async def delete_instance(call: Call) -> web.StreamResponse:
    """Stop and wipe its Redis, then delete the row (its keys go with it)."""
    assert call.org_id
    provisioning = call.request.app[PROVISIONING]
    async with call.connect() as conn, conn.transaction():
        instance = await instances.get_instance(
            conn, call.org_id, call.path_id("instance_id"), lock=True
        )
        revoked = await api_keys.revoke_instance_keys(conn, instance.id)
        await provisioning.remove(instance)
        await instances.delete_instance(conn, instance.id)
        await audit.record(
            conn,
            call.actor(),
            "instance.delete",
            org_id=call.org_id,
            target_type="instance",
            target_id=instance.id,
            before={**_audited(instance), "keys_revoked": revoked},
        )
    return no_content()


async def instance_stats(call: Call) -> web.StreamResponse:
    """Figures from the backend's INFO; on a shared server, ops/s and clients are server-wide."""
    assert call.org_id
    async with call.connect() as conn:
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
    if instance.status != "running" or instance.backend is None:
        raise Conflict(
            f"the instance is {instance.status}, so it has no stats yet"
            + (f": {instance.status_reason}" if instance.status_reason else ""),
            code="instance_not_running",
        )
    try:
        async with client_for(instance.backend) as client:
            info = await client.info()
            keys = await client.dbsize()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise ServiceUnavailable(
            f"the instance's Redis does not answer: {exc}", code="backend_unavailable"
        ) from None
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    return reply(
        {
            "used_memory_bytes": int(info.get("used_memory", 0)),
            "used_memory_peak_bytes": int(info.get("used_memory_peak", 0)),
            "maxmemory_bytes": int(info.get("maxmemory", 0)),
            "keys": int(keys),
            "ops_per_second": int(info.get("instantaneous_ops_per_sec", 0)),
            "connected_clients": int(info.get("connected_clients", 0)),
            "hit_ratio": hits / (hits + misses) if hits + misses else None,
            "evicted_keys": int(info.get("evicted_keys", 0)),
            "server_wide": instance.backend.shared,
            "sampled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )


def _audited(instance: Instance) -> dict[str, Any]:
    return {
        "name": instance.name,
        "memory_mb": instance.memory_mb,
        "eviction_policy": instance.eviction_policy,
        "persistence": instance.persistence,
        "status": instance.status,
        "limits": instance.limits.public(),
    }
