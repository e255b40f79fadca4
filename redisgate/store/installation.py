"""The installation row: the identity shared by every process of one RedisGate deployment."""

from __future__ import annotations

import uuid

import asyncpg

from redisgate.store.db import map_exceptions


async def get_installation_id(conn: asyncpg.Connection) -> uuid.UUID:
    with map_exceptions("cannot read the installation id"):
        value: uuid.UUID = await conn.fetchval("SELECT id FROM installation")
        return value
