"""Typed keys of what the control application holds (`app[POOL]`, `app[SETTINGS]`)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from redisgate.config import Settings

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
