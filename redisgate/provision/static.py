"""The `static` provisioner: an instance is a db on a Redis server an operator registered.

It runs no process, so it is not a `Provisioner` (base.py): giving an instance its Redis is an
allocation in the database, made inside the transaction that creates the instance's row.
`allocate` takes the lowest free db of the first registered server with room
(`store.backend_servers.allocate_db` locks the server rows, so concurrent creates queue; a
unique index on `(server_id, backend_db)` backs it up). The db is emptied (`flush`) when the
instance is created and when it is deleted, so each tenant starts empty. The instance's
`Backend` is `shared`: the gateway refuses there what would reach past its db. Memory limits
are recorded, not enforced per db (Redis cannot).

The control plane keeps the instance's row in step (`control/provisioning.py`).
"""

from __future__ import annotations

import uuid

import asyncpg
import redis.exceptions

from redisgate.backends import Backend
from redisgate.errors import ServiceUnavailable
from redisgate.provision.backend_client import client_for
from redisgate.store import backend_servers


async def allocate(conn: asyncpg.Connection) -> tuple[Backend, uuid.UUID]:
    """A free db for a new instance, and the id of its server; call inside the creating
    transaction. ServiceUnavailable when every registered server is full."""
    found = await backend_servers.allocate_db(conn)
    if found is None:
        raise ServiceUnavailable(
            "no backend server has a free database: a platform admin must register "
            "another server (POST /v1/admin/servers)",
            code="no_backend_capacity",
        )
    server, db = found
    return server.backend(db), server.id


async def flush(backend: Backend) -> None:
    """Empty the instance's db (FLUSHDB); ServiceUnavailable if its server does not answer."""
    try:
        async with client_for(backend) as client:
            await client.flushdb()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise ServiceUnavailable(
            f"the backend server cannot be reached to empty the instance's database: {exc}",
            code="backend_unavailable",
        ) from None
