"""Which principal source a gateway reads its keys from, chosen from the settings.

`keys_file` wins when set (small deployments without a control plane, and `redisgate dev`
today); otherwise `database_url` gives the Postgres source. The Postgres pool starts empty
(min_size 0), so a gateway starts, listens and serves nothing but "try again" to new AUTHs
while Postgres is down, rather than refusing to start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from redisgate.config import Settings
from redisgate.errors import ConfigError
from redisgate.proxy.keys.postgres import LOOKUP_TIMEOUT_S, PostgresSource
from redisgate.proxy.keys.principals import KeySource
from redisgate.proxy.keys.static import StaticSource
from redisgate.store import db, sealing

_CLOSE_TIMEOUT_S = 5.0


@contextlib.asynccontextmanager
async def open_source(settings: Settings) -> AsyncIterator[KeySource]:
    """The source for `settings`, open for the duration of the block."""
    if settings.keys_file is not None:
        yield StaticSource(settings.keys_file)
        return
    if settings.database_url is None:
        raise ConfigError(
            "the gateway has no key source: set database_url (--database-url or "
            "REDISGATE_DATABASE_URL) to use the API keys of the control database, or "
            "keys_file (--keys-file) for a static TOML file (`redisgate keys add-instance`)"
        )
    sealing.load(settings)  # backend passwords are stored sealed
    pool = await db.create_pool(
        settings.database_url, min_size=0, max_size=settings.database_pool_max_size
    )
    try:
        # The lookup must answer well inside the client's AUTH window.
        timeout_s = min(LOOKUP_TIMEOUT_S, settings.auth_timeout_s / 2)
        yield PostgresSource(pool, timeout_s=timeout_s)
    finally:
        try:
            await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT_S)
        except TimeoutError:  # a connection stuck on a dead Postgres must not hold us up
            pool.terminate()
