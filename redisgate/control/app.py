"""The control-plane aiohttp application factory.

The asyncpg pool lives in a `cleanup_ctx` so it opens before the first request and closes after
the last; handlers reach it through the typed `POOL` key. Routes are declared in `routes.py`;
the OpenAPI document and `/docs` page are built from the same declarations at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from redisgate.config import Settings
from redisgate.control import console_keys, docs_page, openapi
from redisgate.control.audit_budget import AuditBudget
from redisgate.control.events import EVENTS, EventHub
from redisgate.control.middlewares import make_middlewares, response_headers
from redisgate.control.passwords import Passwords
from redisgate.control.provisioning import Provisioning
from redisgate.control.reference import DOCS_HTML
from redisgate.control.routes import ROUTES, setup_routes
from redisgate.control.state import (
    AUDIT_BUDGET,
    KEYRING,
    OPENAPI,
    PASSWORDS,
    POOL,
    PROVISIONING,
    REGISTER_THROTTLE,
    SETTINGS,
    THROTTLE,
    TRUSTED_PROXIES,
)
from redisgate.control.throttle import LoginThrottle
from redisgate.control.tokens import Keyring
from redisgate.errors import ConfigError, StoreError
from redisgate.store import db, sealing, sessions

log = logging.getLogger(__name__)

SESSION_KEEP_S = 7 * 86_400
PRUNE_INTERVAL_S = 3600.0


def create_app(settings: Settings) -> web.Application:
    if not settings.database_url:
        raise ConfigError(
            "database_url is not set: the control plane needs PostgreSQL "
            "(set REDISGATE_DATABASE_URL, or run `redisgate dev` for a local stack)"
        )
    origins = frozenset(
        o.strip() for o in (settings.control_cors_origins or "").split(",") if o.strip()
    )
    app = web.Application(
        client_max_size=settings.control_max_body_bytes, middlewares=make_middlewares(origins)
    )
    app.on_response_prepare.append(response_headers(origins))
    app[SETTINGS] = settings
    app[TRUSTED_PROXIES] = frozenset(
        p.strip() for p in (settings.control_trusted_proxies or "").split(",") if p.strip()
    )
    app[KEYRING] = Keyring.from_settings(settings)
    sealing.load(settings)
    app[PASSWORDS] = Passwords(settings)
    app[THROTTLE] = LoginThrottle(
        pair_free=settings.login_free_failures_per_email,
        addr_free=settings.login_free_failures_per_addr,
        max_delay_s=settings.login_max_delay_s,
        forget_after_s=settings.login_failure_memory_s,
    )
    app[REGISTER_THROTTLE] = LoginThrottle(
        pair_free=None,
        addr_free=settings.register_max_per_addr,
        max_delay_s=settings.login_max_delay_s,
        forget_after_s=settings.login_failure_memory_s,
    )
    app[AUDIT_BUDGET] = AuditBudget(settings.audit_refusals_per_minute)
    app[OPENAPI] = openapi.build(ROUTES)
    app[DOCS_HTML] = docs_page.render(app[OPENAPI])
    app[EVENTS] = EventHub(
        settings.database_url,
        max_streams=settings.events_max_streams,
        max_per_user=settings.events_max_streams_per_user,
    )
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_provisioning)
    app.cleanup_ctx.append(_events)
    app.on_shutdown.append(_end_streams)
    setup_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.database_url is not None
    # min_size=0: the API starts (and answers 503 on /readyz) while PostgreSQL is down.
    app[POOL] = await db.create_pool(
        settings.database_url, min_size=0, max_size=settings.database_pool_max_size
    )
    await _reseal(app[POOL])
    pruner = asyncio.create_task(_prune_sessions(app[POOL]))
    yield
    pruner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pruner
    await app[POOL].close()


async def _reseal(pool: asyncpg.Pool) -> None:
    """Seal backend passwords still plain or under an older key (docs/security.md); a
    database that is down now is resealed at the next start or by `redisgate secrets reseal`."""
    try:
        with db.map_exceptions("cannot reseal backend passwords"):
            async with pool.acquire() as conn, conn.transaction():
                changed = await sealing.reseal(conn)
        if changed:
            log.info("sealed %d backend passwords with the current key", changed)
    except StoreError as exc:
        log.warning("%s", exc)


async def _provisioning(app: web.Application) -> AsyncIterator[None]:
    """The provisioner: started after the pool (it re-adopts stored instances), stopped before."""
    async with Provisioning(app[SETTINGS], app[POOL]).run() as provisioning:
        app[PROVISIONING] = provisioning
        yield


async def _events(app: web.Application) -> AsyncIterator[None]:
    """The live-update streams' LISTEN connection (events.py)."""
    app[EVENTS].start()
    yield
    await app[EVENTS].close()


async def _end_streams(app: web.Application) -> None:
    """At shutdown, before the server waits for requests to finish: streams end at once."""
    app[EVENTS].end_all()


async def _prune_sessions(pool: asyncpg.Pool) -> None:
    """Forget sessions that ended over a week ago and console keys expired over an hour ago,
    hourly (the audit log keeps the history)."""
    while True:
        try:
            with db.map_exceptions("cannot prune sessions"):
                async with pool.acquire() as conn:
                    pruned = await sessions.prune(conn, SESSION_KEEP_S)
                    keys = await console_keys.prune_expired(conn)
            if pruned:
                log.info("pruned %d ended sessions", pruned)
            if keys:
                log.info("deleted %d expired console keys", keys)
        except StoreError as exc:
            log.warning("%s", exc)
        await asyncio.sleep(PRUNE_INTERVAL_S)
