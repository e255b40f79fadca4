"""Registration, login, token refresh and logout (`/v1/auth/*`)."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from aiohttp import web

from redisgate.control.passwords import password_problem
from redisgate.control.refusals import record_refusal
from redisgate.control.spec import (
    EMAIL,
    NAME,
    ROLE,
    TIME,
    UUID,
    Call,
    client_addr,
    no_content,
    obj,
    reply,
)
from redisgate.control.state import KEYRING, PASSWORDS, REGISTER_THROTTLE, THROTTLE
from redisgate.control.tokens import new_refresh_token, refresh_digest
from redisgate.errors import TooManyRequests, Unauthenticated, ValidationFailed
from redisgate.store import audit, orgs, sessions, users
from redisgate.store.org_quotas import default_quota
from redisgate.store.users import User

PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024}
REFRESH = {"type": "string", "minLength": 1, "maxLength": 200}

TOKENS: dict[str, Any] = obj(
    {
        "access_token": {"type": "string"},
        "refresh_token": {"type": "string"},
        "expires_in": {"type": "integer"},
        "token_type": {"const": "Bearer"},
    }
)
USER: dict[str, Any] = obj(
    {
        "id": UUID,
        "email": {"type": "string"},
        "name": {"type": "string"},
        "is_platform_admin": {"type": "boolean"},
        "created_at": TIME,
    }
)
ORG_REF: dict[str, Any] = obj({"id": UUID, "name": {"type": "string"}, "role": ROLE})

REGISTER_BODY = obj({"email": EMAIL, "password": PASSWORD}, {"name": NAME})
REGISTER_REPLY = obj(
    {"user": USER, "org": ORG_REF, **TOKENS["properties"]},
)
LOGIN_BODY = obj({"email": EMAIL, "password": PASSWORD}, {"remember_me": {"type": "boolean"}})
REFRESH_BODY = obj({"refresh_token": REFRESH})


async def create_personal_org(conn: asyncpg.Connection, call: Call, user: User) -> orgs.Org:
    """The org every user starts with (they own it); audited like any other create."""
    name = f"{user.name or user.email.split('@')[0]}'s organization"[:100]
    org = await orgs.create_org(conn, name, user.id, default_quota(call.settings), personal=True)
    actor = call.actor(user.id)
    await audit.record(
        conn,
        actor,
        "org.create",
        org_id=org.id,
        target_type="org",
        target_id=org.id,
        after=org.public(),
    )
    return org


async def start_session(
    conn: asyncpg.Connection, call: Call, user: User, *, remember_me: bool
) -> dict[str, Any]:
    """A new session and its first tokens, as the login reply carries them."""
    token, digest = new_refresh_token()
    s = call.settings
    session = await sessions.create_session(
        conn,
        user.id,
        digest,
        remember_me=remember_me,
        ttl_s=s.session_remember_ttl_s if remember_me else s.session_ttl_s,
        user_agent=call.request.headers.get("User-Agent", ""),
        client_addr=client_addr(call.request),
    )
    actor = call.actor(user.id)
    await audit.record(
        conn,
        actor,
        "session.create",
        org_id=None,
        target_type="session",
        target_id=session.id,
        after={"remember_me": remember_me},
    )
    return _tokens(call, user, session.id, token)


def _tokens(call: Call, user: User, session_id: Any, refresh_token: str) -> dict[str, Any]:
    keyring = call.request.app[KEYRING]
    return {
        "access_token": keyring.issue(user.id, session_id),
        "refresh_token": refresh_token,
        "expires_in": keyring.access_ttl_s,
        "token_type": "Bearer",
    }


async def register(call: Call) -> web.StreamResponse:
    email, password = call.body["email"].strip(), call.body["password"]
    problem = password_problem(password, email)
    if problem:
        raise ValidationFailed(
            "invalid fields: password", details={"fields": {"password": problem}}
        )
    throttle, addr = call.request.app[REGISTER_THROTTLE], client_addr(call.request)
    wait = throttle.retry_after(email, addr, time.monotonic())
    if wait:
        raise TooManyRequests(
            f"too many registrations from your address; try again in {wait} s",
            retry_after_s=wait,
        )
    throttle.failed(email, addr, time.monotonic())  # every attempt counts
    password_hash = await call.request.app[PASSWORDS].hash(password)
    async with call.connect() as conn, conn.transaction():
        user = await users.create_user(
            conn, email, call.body.get("name", "").strip(), password_hash
        )
        actor = call.actor(user.id)
        await audit.record(
            conn,
            actor,
            "user.register",
            org_id=None,
            target_type="user",
            target_id=user.id,
            after={"email": user.email, "name": user.name},
        )
        org = await create_personal_org(conn, call, user)
        tokens = await start_session(conn, call, user, remember_me=False)
    body = {"user": user.public(), "org": {"id": str(org.id), "name": org.name, "role": "owner"}}
    return reply({**body, **tokens}, status=201)


async def login(call: Call) -> web.StreamResponse:
    email, password = call.body["email"].strip(), call.body["password"]
    addr = client_addr(call.request)
    throttle, passwords = call.request.app[THROTTLE], call.request.app[PASSWORDS]
    now = time.monotonic()
    wait = throttle.retry_after(email, addr, now)
    if wait:
        raise TooManyRequests(f"too many failed logins; try again in {wait} s", retry_after_s=wait)
    # Counted as a failure before the (slow) check and taken back on success, so concurrent
    # guesses cannot all pass the throttle while the first ones are being verified.
    throttle.failed(email, addr, now)
    async with call.connect() as conn:
        found = await users.get_login(conn, email)
    if found is None:
        await passwords.burn(password)
        ok, new_hash = False, None
    else:
        ok, new_hash = await passwords.verify(found[1], password)
    if not ok or found is None:
        await record_refusal(
            call,
            "auth.login_failed",
            org_id=None,
            target_type="user" if found else "email",
            target_id=found[0].id if found else email,
            after={"email": email},
        )
        raise Unauthenticated("the email or password is wrong", code="invalid_credentials")
    throttle.succeeded(email, addr)
    user = found[0]
    async with call.connect() as conn, conn.transaction():
        if new_hash is not None:
            await users.set_password_hash(conn, user.id, new_hash)
        if not await orgs.has_org(conn, user.id):
            await create_personal_org(conn, call, user)
        tokens = await start_session(
            conn, call, user, remember_me=call.body.get("remember_me", False)
        )
    return reply(tokens)


async def refresh(call: Call) -> web.StreamResponse:
    digest = refresh_digest(call.body["refresh_token"])
    token, new_digest = new_refresh_token()
    async with call.connect() as conn:
        async with conn.transaction():
            outcome, session = await sessions.rotate(conn, digest, new_digest)
            if outcome is sessions.Rotation.REUSED and session is not None:
                actor = call.actor(session.user_id)
                await audit.record(
                    conn,
                    actor,
                    "session.revoke",
                    org_id=None,
                    target_type="session",
                    target_id=session.id,
                    after={"reason": "refresh token reused"},
                )
        # Outside the transaction: the revocation above must commit before we refuse.
        if outcome is sessions.Rotation.REUSED:
            raise Unauthenticated(
                "this refresh token was already used, so it may have been stolen: the session "
                "is revoked; log in again",
                code="refresh_token_reused",
            )
        if outcome is not sessions.Rotation.ROTATED or session is None:
            raise Unauthenticated(
                "the refresh token is not valid or its session has ended; log in again",
                code="invalid_refresh_token",
            )
        user = await users.get_user(conn, session.user_id)
    assert user is not None
    return reply(_tokens(call, user, session.id, token))


async def logout(call: Call) -> web.StreamResponse:
    """End the session of a refresh token (idempotent for a session already ended)."""
    async with call.connect() as conn, conn.transaction():
        session = await sessions.find_by_token(conn, refresh_digest(call.body["refresh_token"]))
        if session is None:
            raise Unauthenticated("the refresh token is not valid", code="invalid_refresh_token")
        if await sessions.revoke(conn, session.user_id, session.id, "logout"):
            actor = call.actor(session.user_id)
            await audit.record(
                conn,
                actor,
                "session.revoke",
                org_id=None,
                target_type="session",
                target_id=session.id,
                after={"reason": "logout"},
            )
    return no_content()
