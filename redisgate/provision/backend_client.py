"""A short-lived client of an instance's own Redis, for the control plane: never via the gateway.

The control API reads an instance's figures with it (`GET …/stats`) and the static provisioner
empties a db with it. The gateway never uses it: its connections are its own
(`proxy/backend/upstream.py`).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from redisgate.backends import Backend


def client_for(backend: Backend) -> aioredis.Redis:
    """A client of `backend` with short timeouts; use it as `async with client_for(b) as c`."""
    return aioredis.Redis(
        host=backend.host,
        port=backend.port,
        db=backend.db,
        username=backend.username,
        password=backend.password,
        ssl=backend.tls,
        socket_timeout=5.0,
        socket_connect_timeout=5.0,
    )
