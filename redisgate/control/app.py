"""The control-plane aiohttp application factory.

The asyncpg pool lives in a `cleanup_ctx` so it opens before the first request and closes after
the last; handlers reach it through the typed `POOL` key. Routes are listed in `routes.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from redisgate.config import Settings
from redisgate.control.routes import setup_routes
from redisgate.control.state import POOL, SETTINGS
from redisgate.errors import ConfigError
from redisgate.store import db


def create_app(settings: Settings) -> web.Application:
    if not settings.database_url:
        raise ConfigError(
            "database_url is not set: the control plane needs PostgreSQL "
            "(set REDISGATE_DATABASE_URL, or run `redisgate dev` for a local stack)"
        )
    app = web.Application(client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    setup_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.database_url is not None
    # min_size=0: the API starts (and answers 503 on /readyz) while PostgreSQL is down.
    app[POOL] = await db.create_pool(
        settings.database_url, min_size=0, max_size=settings.database_pool_max_size
    )
    yield
    await app[POOL].close()
