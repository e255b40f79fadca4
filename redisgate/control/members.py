"""Members of an organization and their roles (`/v1/orgs/{org_id}/members...`).

Every change locks the org row first, so two concurrent changes cannot both see "another
owner remains" and leave the org with none. Touching an owner (or making one) needs the
`members.manage_owners` action, which only owners have.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from redisgate.control import pagination, roles
from redisgate.control.spec import EMAIL, ROLE, TIME, UUID, Call, no_content, obj, page_of, reply
from redisgate.errors import Conflict, NotFound
from redisgate.store import audit, orgs, users

MEMBER: dict[str, Any] = obj(
    {
        "user_id": UUID,
        "email": {"type": "string"},
        "name": {"type": "string"},
        "role": ROLE,
        "joined_at": TIME,
    }
)
MEMBERS_REPLY = page_of(MEMBER)
ADD_BODY = obj({"email": EMAIL, "role": ROLE})
PATCH_BODY = obj({"role": ROLE})


async def list_members(call: Call) -> web.StreamResponse:
    assert call.org_id
    limit = call.query.get("limit", pagination.DEFAULT_LIMIT)
    after = pagination.time_id(call.query.get("cursor"))
    async with call.connect() as conn:
        rows = await orgs.list_members(conn, call.org_id, after=after, limit=limit)
    key = [rows[-1].joined_at.isoformat(), rows[-1].user_id] if rows else None
    return reply(pagination.page([m.public() for m in rows], limit, key))


async def add_member(call: Call) -> web.StreamResponse:
    assert call.org_id and call.role
    role = call.body["role"]
    if role == roles.Role.OWNER:
        roles.require(call.role, "members.manage_owners")
    async with call.connect() as conn, conn.transaction():
        await orgs.get_org(conn, call.org_id, lock=True)
        user = await users.find_by_email(conn, call.body["email"].strip())
        if user is None:
            raise NotFound(
                "no account has this email; ask them to register first, then add them",
                code="user_not_found",
            )
        member = await orgs.add_member(conn, call.org_id, user.id, role)
        await audit.record(
            conn,
            call.actor(),
            "member.add",
            org_id=call.org_id,
            target_type="user",
            target_id=user.id,
            after={"role": role},
        )
    return reply(member.public(), status=201)


async def patch_member(call: Call) -> web.StreamResponse:
    assert call.org_id and call.role
    user_id = call.path_id("user_id")
    role = call.body["role"]
    async with call.connect() as conn, conn.transaction():
        await orgs.get_org(conn, call.org_id, lock=True)
        before = await orgs.get_member(conn, call.org_id, user_id)
        if roles.Role.OWNER in (before.role, role) and before.role != role:
            roles.require(call.role, "members.manage_owners")
        if before.role == roles.Role.OWNER and role != roles.Role.OWNER:
            await _keep_an_owner(conn, call)
        member = await orgs.set_role(conn, call.org_id, user_id, role)
        await audit.record(
            conn,
            call.actor(),
            "member.update",
            org_id=call.org_id,
            target_type="user",
            target_id=user_id,
            before={"role": before.role},
            after={"role": role},
        )
    return reply(member.public())


async def remove_member(call: Call) -> web.StreamResponse:
    assert call.org_id and call.role
    user_id = call.path_id("user_id")
    async with call.connect() as conn, conn.transaction():
        await orgs.get_org(conn, call.org_id, lock=True)
        before = await orgs.get_member(conn, call.org_id, user_id)
        if before.role == roles.Role.OWNER:
            roles.require(call.role, "members.manage_owners")
            await _keep_an_owner(conn, call)
        await orgs.remove_member(conn, call.org_id, user_id)
        await audit.record(
            conn,
            call.actor(),
            "member.remove",
            org_id=call.org_id,
            target_type="user",
            target_id=user_id,
            before={"role": before.role, "email": before.email},
        )
    return no_content()


async def leave(call: Call) -> web.StreamResponse:
    """The caller leaves the org (any role may; the last owner must hand over first)."""
    assert call.org_id and call.role
    async with call.connect() as conn, conn.transaction():
        await orgs.get_org(conn, call.org_id, lock=True)
        if call.role == roles.Role.OWNER:
            await _keep_an_owner(conn, call)
        await orgs.remove_member(conn, call.org_id, call.user.id)
        await audit.record(
            conn,
            call.actor(),
            "member.leave",
            org_id=call.org_id,
            target_type="user",
            target_id=call.user.id,
            before={"role": call.role.value},
        )
    return no_content()


async def _keep_an_owner(conn: Any, call: Call) -> None:
    assert call.org_id
    if await orgs.count_owners(conn, call.org_id) <= 1:
        raise Conflict(
            "an organization keeps at least one owner: make someone else an owner first "
            "(or delete the organization)",
            code="last_owner",
        )
