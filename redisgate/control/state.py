"""Typed keys of what the control application holds (`app[POOL]`, `app[SETTINGS]`, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web

from redisgate.config import Settings

if TYPE_CHECKING:
    from redisgate.control.audit_budget import AuditBudget
    from redisgate.control.passwords import Passwords
    from redisgate.control.provisioning import Provisioning
    from redisgate.control.throttle import LoginThrottle
    from redisgate.control.tokens import Keyring

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
KEYRING: web.AppKey[Keyring] = web.AppKey("keyring")
PASSWORDS: web.AppKey[Passwords] = web.AppKey("passwords")
THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("throttle")
REGISTER_THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("register_throttle")
AUDIT_BUDGET: web.AppKey[AuditBudget] = web.AppKey("audit_budget")
TRUSTED_PROXIES: web.AppKey[frozenset[str]] = web.AppKey("trusted_proxies")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
PROVISIONING: web.AppKey[Provisioning] = web.AppKey("provisioning")
REQUEST_ID = web.RequestKey("request_id", str)
