"""Turn a declared `Route` into an aiohttp handler: the one place access is checked.

In order: the bearer token (401), then for org routes the caller's membership (404 when they
are not a member, so other orgs' resources look absent) and the role the action needs (403),
then the query and body (400/422). Only then does the handler run. Every 403, from here or
a handler, is audited (`refusals.py`: bounded per client address).
"""

from __future__ import annotations

from aiohttp import web

from redisgate.control import roles
from redisgate.control.refusals import record_refusal
from redisgate.control.roles import Role
from redisgate.control.spec import Access, Call, Caller, Route
from redisgate.control.state import KEYRING
from redisgate.control.validation import read_body, read_query
from redisgate.errors import Forbidden, NotFound, Unauthenticated
from redisgate.store import orgs, users


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "send an access token: Authorization: Bearer <access_token> (from POST /v1/auth/login)",
            code="unauthenticated",
        )
    return token.strip()


def handler_for(route: Route) -> web.Handler:  # type: ignore[name-defined]
    async def handle(request: web.Request) -> web.StreamResponse:
        call = Call(request=request, route=route)
        try:
            return await _checked(call)
        except Forbidden as exc:
            await record_refusal(
                call,
                "access.denied",
                org_id=call.org_id,
                target_type="route",
                target_id=f"{route.method} {route.path}",
                after={"code": exc.code, "role": call.role.value if call.role else None},
            )
            raise

    handle.__name__ = route.handler.__name__
    return handle


async def _checked(call: Call) -> web.StreamResponse:
    route, request = call.route, call.request
    if route.access is Access.PUBLIC:
        return await _run(call)
    claims = request.app[KEYRING].verify(bearer_token(request))
    async with call.connect() as conn:
        user = await users.get_user_in_session(conn, claims.user_id, claims.session_id)
        if user is None:
            raise Unauthenticated("this session has ended; log in again", code="session_ended")
        call.caller = Caller(user, claims.session_id, claims.expires_at)
        if route.access is Access.PLATFORM_ADMIN and not user.is_platform_admin:
            raise Forbidden("only platform admins may do this", code="platform_admin_only")
        if route.access is Access.ORG:
            assert route.action is not None
            call.org_id = call.path_id("org_id")
            role = await orgs.get_role(conn, call.org_id, user.id)
            if role is None:
                raise NotFound("organization not found", code="org_not_found")
            call.role = Role(role)
            roles.require(call.role, route.action)
        if not route.streams:
            return await _run(call)
    return await _run(call)  # a stream: the request's connection went back to the pool


async def _run(call: Call) -> web.StreamResponse:
    route = call.route
    if route.query:  # routes without parameters ignore the query string (cache busters)
        call.query = read_query(call.request, route.query)
    if route.body is not None:
        call.body = await read_body(call.request, route.body)
    return await route.handler(call)
