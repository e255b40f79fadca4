"""The caller's own account: `/v1/me` and their sessions."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from redisgate.control import pagination
from redisgate.control.identity import ORG_REF, PASSWORD, USER
from redisgate.control.passwords import password_problem
from redisgate.control.spec import (
    NAME,
    TIME,
    UUID,
    Call,
    client_addr,
    no_content,
    obj,
    page_of,
    reply,
)
from redisgate.control.state import PASSWORDS, THROTTLE
from redisgate.errors import NotFound, TooManyRequests, ValidationFailed
from redisgate.store import audit, orgs, sessions, users

ME_REPLY = obj({"user": USER, "orgs": {"type": "array", "items": ORG_REF}})
ME_PATCH = {
    **obj({}, {"name": NAME, "password": PASSWORD, "current_password": PASSWORD}),
    "minProperties": 1,
}
SESSION: dict[str, Any] = obj(
    {
        "id": UUID,
        "current": {"type": "boolean"},
        "remember_me": {"type": "boolean"},
        "user_agent": {"type": "string"},
        "client_addr": {"type": "string"},
        "created_at": TIME,
        "last_used_at": TIME,
        "expires_at": TIME,
    }
)
SESSIONS_REPLY = page_of(SESSION)


async def get_me(call: Call) -> web.StreamResponse:
    async with call.connect() as conn:
        memberships = await orgs.list_user_orgs(conn, call.user.id)
    refs = [{"id": str(o.id), "name": o.name, "role": role} for o, role, _ in memberships]
    return reply({"user": call.user.public(), "orgs": refs})


async def patch_me(call: Call) -> web.StreamResponse:
    """Change the name and/or the password (which needs the current one, and ends the other
    sessions: whoever else knew the old password is logged out)."""
    body, user = call.body, call.user
    new_hash = None
    if "password" in body:
        current = body.get("current_password")
        if current is None:
            raise ValidationFailed(
                "invalid fields: current_password",
                details={"fields": {"current_password": "is required to change the password"}},
            )
        problem = password_problem(body["password"], user.email)
        if problem:
            raise ValidationFailed(
                "invalid fields: password", details={"fields": {"password": problem}}
            )
        passwords, throttle = call.request.app[PASSWORDS], call.request.app[THROTTLE]
        # The login throttle guards this guess too: a stolen access token must not turn into
        # unlimited tries at the password (and then a takeover).
        addr, now = client_addr(call.request), time.monotonic()
        wait = throttle.retry_after(user.email, addr, now)
        if wait:
            raise TooManyRequests(
                f"too many wrong passwords; try again in {wait} s", retry_after_s=wait
            )
        throttle.failed(user.email, addr, now)  # taken back below if it was right
        async with call.connect() as conn:
            stored = await users.get_password_hash(conn, user.id)
        ok, _ = await passwords.verify(stored, current)
        if not ok:
            raise ValidationFailed(
                "the current password is wrong",
                details={"fields": {"current_password": "is not your current password"}},
            )
        throttle.succeeded(user.email, addr)
        new_hash = await passwords.hash(body["password"])
    elif "current_password" in body:
        raise ValidationFailed(
            "invalid fields: password",
            details={"fields": {"password": "is required with current_password"}},
        )
    async with call.connect() as conn, conn.transaction():
        before = {"name": user.name}
        if "name" in body:
            user = await users.set_name(conn, user.id, body["name"].strip())
        after: dict[str, Any] = {"name": user.name}
        if new_hash is not None:
            await users.set_password_hash(conn, user.id, new_hash)
            assert call.caller is not None
            ended = await sessions.revoke_others(conn, user.id, call.caller.session_id, "password")
            after["password_changed"] = True
            after["other_sessions_ended"] = ended
        await audit.record(
            conn,
            call.actor(),
            "user.update",
            org_id=None,
            target_type="user",
            target_id=user.id,
            before=before,
            after=after,
        )
    return reply({"user": user.public()})


async def list_sessions(call: Call) -> web.StreamResponse:
    limit = call.query.get("limit", pagination.DEFAULT_LIMIT)
    after = pagination.time_id(call.query.get("cursor"))
    async with call.connect() as conn:
        rows = await sessions.list_live(conn, call.user.id, after=after, limit=limit)
    assert call.caller is not None
    items = [
        {
            "id": str(s.id),
            "current": s.id == call.caller.session_id,
            "remember_me": s.remember_me,
            "user_agent": s.user_agent,
            "client_addr": s.client_addr,
            "created_at": s.created_at.isoformat(),
            "last_used_at": s.last_used_at.isoformat(),
            "expires_at": s.expires_at.isoformat(),
        }
        for s in rows
    ]
    key = [rows[-1].created_at.isoformat(), rows[-1].id] if rows else None
    return reply(pagination.page(items, limit, key))


async def delete_session(call: Call) -> web.StreamResponse:
    session_id = call.path_id("session_id")
    async with call.connect() as conn, conn.transaction():
        if not await sessions.revoke(conn, call.user.id, session_id, "user"):
            raise NotFound("no such live session of yours", code="session_not_found")
        await audit.record(
            conn,
            call.actor(),
            "session.revoke",
            org_id=None,
            target_type="session",
            target_id=session_id,
            after={"reason": "revoked by the user"},
        )
    return no_content()
