"""Registration, login, token refresh and logout (`/v1/auth/*`)."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from aiohttp import web

from redisgate.control import cookies
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
from redisgate.store.sessions import Session
from redisgate.store.users import User

PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024}
REFRESH = {"type": "string", "minLength": 1, "maxLength": 200}

TOKENS: dict[str, Any] = obj(
    {
        "access_token": {"type": "string"},
        "expires_in": {"type": "integer"},
        "token_type": {"const": "Bearer"},
    },
    {
        "refresh_token": {
            "type": "string",
            "description": "Absent when the refresh token went into the rg_refresh cookie "
            "(`cookie: true`, or a refresh or logout made with that cookie).",
        },
    },
)
COOKIE = {
    "type": "boolean",
    "description": "Put the refresh token in an HttpOnly cookie (rg_refresh, with an rg_csrf "
    "cookie for the X-CSRF-Token header) instead of the reply: for browser pages.",
}
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

REGISTER_BODY = obj({"email": EMAIL, "password": PASSWORD}, {"name": NAME, "cookie": COOKIE})
REGISTER_REPLY = obj(
    {"user": USER, "org": ORG_REF, **{k: TOKENS["properties"][k] for k in TOKENS["required"]}},
    {"refresh_token": TOKENS["properties"]["refresh_token"]},
)
LOGIN_BODY = obj(
    {"email": EMAIL, "password": PASSWORD},
    {"remember_me": {"type": "boolean"}, "cookie": COOKIE},
)
REFRESH_BODY = obj(
    {},
    {
        "refresh_token": {
            **REFRESH,
            "description": "Required unless the rg_refresh cookie is sent (then with header "
            "X-CSRF-Token equal to the rg_csrf cookie).",
        }
    },
)


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
) -> tuple[dict[str, Any], Session]:
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
    return _tokens(call, user, session.id, token), session


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
        tokens, session = await start_session(conn, call, user, remember_me=False)
    body = {"user": user.public(), "org": {"id": str(org.id), "name": org.name, "role": "owner"}}
    return _answer(call, {**body, **tokens}, session, status=201)


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
        tokens, session = await start_session(
            conn, call, user, remember_me=call.body.get("remember_me", False)
        )
    return _answer(call, tokens, session)


def _answer(
    call: Call,
    body: dict[str, Any],
    session: Session,
    *,
    status: int = 200,
    cookie: bool | None = None,
) -> web.StreamResponse:
    """The reply with the tokens; with `cookie` (the body's, unless given) the refresh token
    goes into the rg_refresh cookie instead (cookies.py)."""
    if not (call.body.get("cookie", False) if cookie is None else cookie):
        return reply(body, status=status)
    refresh_token = body.pop("refresh_token")
    response = reply(body, status=status)
    expires_at = session.expires_at if session.remember_me else None
    cookies.set_session_cookies(call.request, response, refresh_token, expires_at)
    return response


def _presented_refresh_token(call: Call) -> tuple[str, bool]:
    """(the refresh token, whether it came from the cookie): the body's, else the cookie's
    (CSRF-checked), else 422 as for any missing required field."""
    if "refresh_token" in call.body:
        return call.body["refresh_token"], False
    token = cookies.cookie_refresh_token(call.request)
    if token is None:
        raise ValidationFailed(
            "invalid fields: refresh_token",
            details={"fields": {"refresh_token": "is required"}},
        )
    return token, True


async def refresh(call: Call) -> web.StreamResponse:
    presented, from_cookie = _presented_refresh_token(call)
    digest = refresh_digest(presented)
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
    return _answer(call, _tokens(call, user, session.id, token), session, cookie=from_cookie)


async def logout(call: Call) -> web.StreamResponse:
    """End the session of a refresh token (idempotent for a session already ended); via the
    cookie, the cookies are cleared too."""
    presented, from_cookie = _presented_refresh_token(call)
    async with call.connect() as conn, conn.transaction():
        session = await sessions.find_by_token(conn, refresh_digest(presented))
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
    response = no_content()
    if from_cookie:
        cookies.clear_session_cookies(call.request, response)
    return response
