"""Every route of the control API, in one list."""

from __future__ import annotations

from aiohttp import web

from redisgate.control import health


def setup_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/healthz", health.healthz),
            web.get("/readyz", health.readyz),
        ]
    )
