"""Organizations, their quota and their audit log (`/v1/orgs...`)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from redisgate.control import pagination
from redisgate.control.spec import ROLE, TIME, UUID, Call, Param, no_content, obj, page_of, reply
from redisgate.control.state import PROVISIONING
from redisgate.errors import QuotaExceeded
from redisgate.store import audit, instances, org_quotas, orgs

ORG_NAME = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}
ORG: dict[str, Any] = obj(
    {
        "id": UUID,
        "name": {"type": "string"},
        "personal": {"type": "boolean"},
        "role": ROLE,
        "created_at": TIME,
        "updated_at": TIME,
    }
)
ORG_BODY = obj({"name": ORG_NAME})
ORGS_REPLY = page_of(ORG)

COUNT = {"type": "integer", "minimum": 0, "maximum": 1_000_000_000}
LIMITS = obj({"max_instances": COUNT, "max_memory_mb": COUNT, "max_api_keys": COUNT})
USED = {"type": ["integer", "null"]}
QUOTA_REPLY = obj(
    {
        "org_id": UUID,
        "limits": LIMITS,
        "used": obj({"instances": USED, "memory_mb": USED, "api_keys": USED}),
        "updated_at": TIME,
    }
)

AUDIT_ENTRY: dict[str, Any] = obj(
    {
        "id": {"type": "integer"},
        "org_id": {"type": ["string", "null"]},
        "actor_id": {"type": ["string", "null"]},
        "action": {"type": "string"},
        "target": obj({"type": {"type": "string"}, "id": {"type": "string"}}),
        "client_addr": {"type": "string"},
        "request_id": {"type": "string"},
        "before": {},
        "after": {},
        "created_at": TIME,
    }
)
AUDIT_REPLY = page_of(AUDIT_ENTRY)
AUDIT_QUERY = (
    Param("action", {"type": "string", "maxLength": 100}, "Only this action (e.g. org.update)."),
    Param("actor", {"type": "string", "format": "uuid"}, "Only actions by this user id."),
    Param("since", TIME, "Only entries at or after this time (RFC 3339)."),
    Param("until", TIME, "Only entries before this time (RFC 3339)."),
)


def _org(org: orgs.Org, role: str) -> dict[str, Any]:
    return {**org.public(), "role": role}


async def list_orgs(call: Call) -> web.StreamResponse:
    limit = call.query.get("limit", pagination.DEFAULT_LIMIT)
    after = pagination.time_id(call.query.get("cursor"))
    async with call.connect() as conn:
        rows = await orgs.list_user_orgs(conn, call.user.id, after=after, limit=limit)
    key = [rows[-1][2].isoformat(), rows[-1][0].id] if rows else None
    return reply(pagination.page([_org(o, r) for o, r, _ in rows], limit, key))


async def create_org(call: Call) -> web.StreamResponse:
    async with call.connect() as conn, conn.transaction():
        owned, most = await orgs.count_owned(conn, call.user.id), call.settings.max_orgs_per_user
        if owned >= most:
            raise QuotaExceeded(
                f"you own {owned} organizations, the most one account may own ({most}); "
                "delete one you no longer need, or ask a platform admin",
                details={"resource": "organizations", "used": owned, "limit": most},
            )
        org = await orgs.create_org(
            conn,
            call.body["name"].strip(),
            call.user.id,
            org_quotas.default_quota(call.settings),
            personal=False,
        )
        await audit.record(
            conn,
            call.actor(),
            "org.create",
            org_id=org.id,
            target_type="org",
            target_id=org.id,
            after=org.public(),
        )
    return reply(_org(org, "owner"), status=201)


async def get_org(call: Call) -> web.StreamResponse:
    assert call.org_id and call.role
    async with call.connect() as conn:
        org = await orgs.get_org(conn, call.org_id)
    return reply(_org(org, call.role))


async def patch_org(call: Call) -> web.StreamResponse:
    assert call.org_id and call.role
    async with call.connect() as conn, conn.transaction():
        before = await orgs.get_org(conn, call.org_id, lock=True)
        org = await orgs.rename_org(conn, call.org_id, call.body["name"].strip())
        await audit.record(
            conn,
            call.actor(),
            "org.update",
            org_id=org.id,
            target_type="org",
            target_id=org.id,
            before={"name": before.name},
            after={"name": org.name},
        )
    return reply(_org(org, call.role))


async def delete_org(call: Call) -> web.StreamResponse:
    assert call.org_id
    provisioning = call.request.app[PROVISIONING]
    async with call.connect() as conn, conn.transaction():
        org = await orgs.get_org(conn, call.org_id, lock=True)
        removed = await instances.all_instances(conn, org_id=org.id)
        for instance in removed:  # their Redis and data go with the org
            await provisioning.remove(instance)
            await instances.delete_instance(conn, instance.id)
        await orgs.delete_org(conn, org.id)
        await audit.record(
            conn,
            call.actor(),
            "org.delete",
            org_id=org.id,
            target_type="org",
            target_id=org.id,
            before={**org.public(), "instances_deleted": [str(i.id) for i in removed]},
        )
    return no_content()


def _quota(quota: org_quotas.Quota, used: dict[str, int | None]) -> dict[str, Any]:
    return {
        "org_id": str(quota.org_id),
        "limits": quota.limits.public(),
        "used": used,
        "updated_at": quota.updated_at.isoformat(),
    }


async def get_quota(call: Call) -> web.StreamResponse:
    assert call.org_id
    async with call.connect() as conn:
        quota = await org_quotas.get_quota(conn, call.org_id)
        used = await org_quotas.usage(conn, call.org_id)
    return reply(_quota(quota, used))


async def put_quota(call: Call) -> web.StreamResponse:
    """Platform admins set an org's limits (lowering below current use blocks new creates only)."""
    org_id = call.path_id("org_id")
    limits = org_quotas.QuotaLimits(**call.body)
    async with call.connect() as conn, conn.transaction():
        before = await org_quotas.get_quota(conn, org_id)
        quota = await org_quotas.set_quota(conn, org_id, limits)
        await audit.record(
            conn,
            call.actor(),
            "quota.update",
            org_id=org_id,
            target_type="org",
            target_id=org_id,
            before=before.limits.public(),
            after=limits.public(),
        )
        used = await org_quotas.usage(conn, org_id)
    return reply(_quota(quota, used))


async def list_audit(call: Call) -> web.StreamResponse:
    assert call.org_id
    q = call.query
    limit = q.get("limit", pagination.DEFAULT_LIMIT)
    actor = q.get("actor")
    async with call.connect() as conn:
        entries = await audit.list_entries(
            conn,
            call.org_id,
            action=q.get("action"),
            actor_id=None if actor is None else uuid.UUID(actor),
            since=q.get("since"),
            until=q.get("until"),
            before_id=pagination.integer(q.get("cursor")),
            limit=limit,
        )
    key = [entries[-1].id] if entries else None
    return reply(pagination.page([e.public() for e in entries], limit, key))
