"""Every route of the control API, declared once: the router and /openapi.json both read this.

Access is declared here, next to the path: PUBLIC, USER, PLATFORM_ADMIN, or ORG with the
`roles.PERMISSIONS` action the caller's role must allow (checked in `dispatch.py`).
"""

from __future__ import annotations

from aiohttp import web

from redisgate.control import (
    console,
    console_keys,
    events,
    health,
    identity,
    instances,
    keys,
    limits,
    me,
    members,
    reference,
    servers,
    usage,
)
from redisgate.control import organizations as orgs
from redisgate.control.dispatch import handler_for
from redisgate.control.spec import PAGE, Access, Param, Route

PUBLIC, USER, ORG, ADMIN = Access.PUBLIC, Access.USER, Access.ORG, Access.PLATFORM_ADMIN
ME_PATCH_REPLY = {
    "type": "object",
    "properties": {"user": identity.USER},
    "required": ["user"],
    "additionalProperties": False,
}

SET_COOKIES = (
    (
        "Set-Cookie",
        "With `cookie: true` (or a refresh made with the cookie): rg_refresh "
        "(HttpOnly, SameSite=Strict, Path=/v1/auth, Secure over TLS; Max-Age only for a "
        "remember_me session) and rg_csrf (readable, SameSite=Strict, Path=/). A logout made "
        "with the cookie clears both.",
    ),
)
COOKIE_FLOW = (
    Param(
        "X-CSRF-Token",
        {"type": "string"},
        "Required with the rg_refresh cookie: the value of the rg_csrf cookie.",
        location="header",
    ),
    Param(
        "rg_refresh",
        {"type": "string"},
        "The refresh token, when the body has none "
        "(set by `cookie: true` at login or registration).",
        location="cookie",
    ),
    Param(
        "rg_csrf",
        {"type": "string"},
        "The CSRF token the X-CSRF-Token header repeats.",
        location="cookie",
    ),
)

# fmt: off
ROUTES: list[Route] = [
    # The web console (docs/console.md): a page, its stylesheet and scripts; data from /v1
    Route("GET", "/", console.index, "The web console (HTML; its pages are hash routes).",
          PUBLIC, response={"type": "string"}, content_type="text/html", tag="console"),
    Route("GET", "/console/console.css", console.stylesheet, "The console's stylesheet.",
          PUBLIC, response={"type": "string"}, content_type="text/css", tag="console"),
    Route("GET", "/console/favicon.svg", console.favicon, "The console's icon.", PUBLIC,
          response={"type": "string"}, content_type="image/svg+xml", tag="console"),
    Route("GET", "/console/js/{name}", console.script, "One of the console's ES modules.",
          PUBLIC, response={"type": "string"}, content_type="text/javascript", errors=(404,),
          tag="console"),
    # Health and reference
    Route("GET", "/healthz", health.healthz, "The process answers.", PUBLIC,
          response=health.HEALTHZ_REPLY, tag="health"),
    Route("GET", "/readyz", health.readyz, "PostgreSQL answers and migrations are current.",
          PUBLIC, response=health.READYZ_REPLY, errors=(503,), tag="health"),
    Route("GET", "/openapi.json", reference.openapi_json, "This API as OpenAPI 3.1.", PUBLIC,
          response={"type": "object"}, tag="reference"),
    Route("GET", "/metrics", reference.prometheus_metrics,
          "Prometheus metrics of this process (docs/metrics.md lists them).", PUBLIC,
          response={"type": "string"}, content_type="text/plain", tag="health"),
    Route("GET", "/docs", reference.docs, "The human API reference (HTML).", PUBLIC,
          response={"type": "string"}, content_type="text/html", tag="reference"),
    Route("GET", "/docs/docs.css", reference.docs_css, "The reference's stylesheet.", PUBLIC,
          response={"type": "string"}, content_type="text/css", tag="reference"),
    # Identity
    Route("POST", "/v1/auth/register", identity.register,
          "Create an account, its personal organization and a first session.", PUBLIC,
          body=identity.REGISTER_BODY, response=identity.REGISTER_REPLY, status=201,
          errors=(409, 429), tag="auth", response_headers=SET_COOKIES),
    Route("POST", "/v1/auth/login", identity.login, "Log in: a new session and its tokens.",
          PUBLIC, body=identity.LOGIN_BODY, response=identity.TOKENS, errors=(401, 429),
          tag="auth", response_headers=SET_COOKIES),
    Route("POST", "/v1/auth/refresh", identity.refresh,
          "Trade a refresh token (body, or the rg_refresh cookie with X-CSRF-Token) for new "
          "tokens (the old one stops working; presenting it again revokes the session).",
          PUBLIC, body=identity.REFRESH_BODY, headers=COOKIE_FLOW, response=identity.TOKENS,
          errors=(401, 403), tag="auth", response_headers=SET_COOKIES),
    Route("POST", "/v1/auth/logout", identity.logout,
          "End the session of a refresh token (body, or the rg_refresh cookie with "
          "X-CSRF-Token, which also clears the cookies).",
          PUBLIC, body=identity.REFRESH_BODY, headers=COOKIE_FLOW, status=204,
          errors=(401, 403), tag="auth", response_headers=SET_COOKIES),
    # The caller
    Route("GET", "/v1/me", me.get_me, "The caller and their organizations with their role.",
          USER, response=me.ME_REPLY, tag="me"),
    Route("PATCH", "/v1/me", me.patch_me,
          "Change name and/or password (with current_password; ends other sessions).", USER,
          body=me.ME_PATCH, response=ME_PATCH_REPLY, errors=(429,), tag="me"),
    Route("GET", "/v1/me/sessions", me.list_sessions, "The caller's live sessions.", USER,
          query=PAGE, response=me.SESSIONS_REPLY, tag="me"),
    Route("DELETE", "/v1/me/sessions/{session_id}", me.delete_session,
          "End one of the caller's sessions.", USER, status=204, errors=(404,), tag="me"),
    # Organizations
    Route("GET", "/v1/orgs", orgs.list_orgs, "Organizations the caller belongs to.", USER,
          query=PAGE, response=orgs.ORGS_REPLY, tag="orgs"),
    Route("POST", "/v1/orgs", orgs.create_org, "Create an organization (the caller owns it).",
          USER, body=orgs.ORG_BODY, response=orgs.ORG, status=201, errors=(409,), tag="orgs"),
    Route("GET", "/v1/orgs/{org_id}", orgs.get_org, "One organization.", ORG, "org.read",
          response=orgs.ORG, tag="orgs"),
    Route("GET", "/v1/orgs/{org_id}/events", events.org_events,
          "Live updates: a server-sent event stream (`event: <kind>`, `data: {kind, id, "
          "org_id}`; kinds instance, key, member, org, quota) whenever something of the org "
          "changes; a `: ping` comment every 15 s; it ends when the access token expires "
          "(reconnect with a fresh one) or the caller loses access.", ORG, "org.read",
          response={"type": "string"}, content_type="text/event-stream", errors=(429,),
          tag="orgs"),
    Route("PATCH", "/v1/orgs/{org_id}", orgs.patch_org, "Rename an organization.", ORG,
          "org.update", body=orgs.ORG_BODY, response=orgs.ORG, tag="orgs"),
    Route("DELETE", "/v1/orgs/{org_id}", orgs.delete_org, "Delete an organization.", ORG,
          "org.delete", status=204, tag="orgs"),
    # Members
    Route("GET", "/v1/orgs/{org_id}/members", members.list_members, "Members and their roles.",
          ORG, "members.read", query=PAGE, response=members.MEMBERS_REPLY, tag="members"),
    Route("POST", "/v1/orgs/{org_id}/members", members.add_member,
          "Add an existing user with a role.", ORG, "members.manage",
          body=members.ADD_BODY, response=members.MEMBER, status=201, errors=(409,),
          tag="members"),
    Route("PATCH", "/v1/orgs/{org_id}/members/{user_id}", members.patch_member,
          "Change a member's role (an org keeps at least one owner).", ORG, "members.manage",
          body=members.PATCH_BODY, response=members.MEMBER, errors=(409,), tag="members"),
    Route("DELETE", "/v1/orgs/{org_id}/members/{user_id}", members.remove_member,
          "Remove a member (an org keeps at least one owner).", ORG, "members.manage",
          status=204, errors=(409,), tag="members"),
    Route("DELETE", "/v1/orgs/{org_id}/membership", members.leave,
          "Leave the organization (the last owner cannot).", ORG, "org.leave", status=204,
          errors=(409,), tag="members"),
    # Quotas and audit
    Route("GET", "/v1/orgs/{org_id}/quota", orgs.get_quota, "Quota limits and current use.",
          ORG, "quota.read", response=orgs.QUOTA_REPLY, tag="quotas"),
    Route("PUT", "/v1/orgs/{org_id}/quota", orgs.put_quota, "Set the quota limits.", ADMIN,
          body=orgs.LIMITS, response=orgs.QUOTA_REPLY, errors=(404,), tag="quotas"),
    Route("GET", "/v1/orgs/{org_id}/limits", limits.get_org_limits,
          "The org's default data-plane limits for its instances (null: the gateway's).", ORG,
          "quota.read", response=limits.ORG_LIMITS_REPLY, tag="quotas"),
    Route("PUT", "/v1/orgs/{org_id}/limits", limits.put_org_limits,
          "Set the org's default data-plane limits (absent fields: null).", ADMIN,
          body=limits.LIMITS_CHANGE, response=limits.ORG_LIMITS_REPLY, errors=(404,),
          tag="quotas"),
    Route("GET", "/v1/orgs/{org_id}/audit", orgs.list_audit,
          "The audit log, newest first, filtered by action, actor and time.", ORG,
          "audit.read", query=(*orgs.AUDIT_QUERY, *PAGE), response=orgs.AUDIT_REPLY,
          tag="audit"),
    # Instances
    Route("GET", "/v1/orgs/{org_id}/instances", instances.list_instances,
          "The organization's instances.", ORG, "instances.read", query=PAGE,
          response=instances.INSTANCES_REPLY, tag="instances"),
    Route("POST", "/v1/orgs/{org_id}/instances", instances.create_instance,
          "Create an instance: a Redis of its own behind the gateway (quota-checked).", ORG,
          "instances.manage", body=instances.CREATE_BODY, response=instances.INSTANCE,
          status=201, errors=(409, 503), tag="instances"),
    Route("GET", "/v1/orgs/{org_id}/instances/{instance_id}", instances.get_instance,
          "One instance.", ORG, "instances.read", response=instances.INSTANCE, errors=(404,),
          tag="instances"),
    Route("PATCH", "/v1/orgs/{org_id}/instances/{instance_id}", instances.patch_instance,
          "Rename, resize, change the eviction policy or persistence (applied live, within "
          "quota).", ORG,
          "instances.manage", body=instances.PATCH_BODY, response=instances.INSTANCE,
          errors=(404, 409), tag="instances"),
    Route("DELETE", "/v1/orgs/{org_id}/instances/{instance_id}", instances.delete_instance,
          "Delete an instance: its Redis and data go, its keys stop working.", ORG,
          "instances.manage", status=204, errors=(404, 503), tag="instances"),
    Route("GET", "/v1/orgs/{org_id}/instances/{instance_id}/stats", instances.instance_stats,
          "Memory, keys, ops/s, clients, hit ratio and evictions from the instance's Redis.",
          ORG, "instances.read", response=instances.STATS_REPLY, errors=(404, 409, 503),
          tag="instances"),
    Route("GET", "/v1/orgs/{org_id}/instances/{instance_id}/usage", usage.instance_usage,
          "The instance's usage per UTC day: commands, bytes in and out, denied, limited.",
          ORG, "usage.read", query=usage.QUERY, response=usage.USAGE_REPLY, errors=(404,),
          tag="usage"),
    Route("GET", "/v1/orgs/{org_id}/usage", usage.org_usage,
          "The organization's usage per UTC day, all instances together.", ORG, "usage.read",
          query=usage.QUERY, response=usage.USAGE_REPLY, tag="usage"),
    # API keys
    Route("GET", "/v1/orgs/{org_id}/instances/{instance_id}/keys", keys.list_keys,
          "The instance's API keys (public ids, never secrets).", ORG, "keys.read",
          query=PAGE, response=keys.KEYS_REPLY, errors=(404,), tag="keys"),
    Route("POST", "/v1/orgs/{org_id}/instances/{instance_id}/keys", keys.create_key,
          "Create an API key; its token is in this reply only.", ORG, "keys.manage",
          body=keys.CREATE_BODY, response=keys.NEW_KEY, status=201, errors=(404, 409),
          tag="keys"),
    Route("GET", "/v1/orgs/{org_id}/instances/{instance_id}/keys/{key_id}", keys.get_key,
          "One API key.", ORG, "keys.read", response=keys.KEY, errors=(404,), tag="keys"),
    Route("PATCH", "/v1/orgs/{org_id}/instances/{instance_id}/keys/{key_id}", keys.patch_key,
          "Rename, re-scope or change the expiry of a key.", ORG, "keys.manage",
          body=keys.PATCH_BODY, response=keys.KEY, errors=(404, 409), tag="keys"),
    Route("DELETE", "/v1/orgs/{org_id}/instances/{instance_id}/keys/{key_id}",
          keys.revoke_key, "Revoke a key (new connections with it are refused).", ORG,
          "keys.manage", status=204, errors=(404,), tag="keys"),
    Route("POST", "/v1/orgs/{org_id}/instances/{instance_id}/console-key",
          console_keys.create_console_key,
          "A short-lived API key for the web console's data browser (expires within "
          "console_key_ttl_s; read-only for viewers; not listed, not counted in the quota).",
          ORG, "instances.browse", response=console_keys.CONSOLE_KEY, status=201,
          errors=(404, 409), tag="keys"),
    # Platform administration
    Route("GET", "/v1/admin/servers", servers.list_servers,
          "Backend servers of the static provisioner.", ADMIN,
          response=servers.SERVERS_REPLY, tag="admin"),
    Route("POST", "/v1/admin/servers", servers.create_server,
          "Register a Redis server whose dbs become instances.", ADMIN,
          body=servers.CREATE_BODY, response=servers.SERVER, status=201, errors=(409,),
          tag="admin"),
    Route("DELETE", "/v1/admin/servers/{server_id}", servers.delete_server,
          "Remove a server no instance uses.", ADMIN, status=204, errors=(404, 409),
          tag="admin"),
]
# fmt: on


def setup_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, handler_for(route))
