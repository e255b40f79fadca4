"""Serving the metrics registry over HTTP: the gateway's own `/metrics` port, and the response
the control API's `/metrics` route returns.

The registry is per process, so in `redisgate serve` (both planes in one process) both
endpoints show the same samples.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from redisgate.config import Settings
from redisgate.errors import ServiceError

log = logging.getLogger(__name__)


def metrics_response() -> web.Response:
    """The whole registry in Prometheus's text format."""
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def _metrics(request: web.Request) -> web.Response:
    return metrics_response()


class MetricsEndpoint:
    """A one-route HTTP server (`GET /metrics`) on metrics_host:metrics_port."""

    def __init__(self, runner: web.AppRunner) -> None:
        self.runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/metrics"

    @classmethod
    async def start(cls, settings: Settings) -> MetricsEndpoint | None:
        """Listen, or return None when `metrics_enabled` is off."""
        if not settings.metrics_enabled:
            return None
        app = web.Application()
        app.router.add_get("/metrics", _metrics)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ServiceError(
                f"the metrics endpoint cannot listen on {settings.metrics_host}:"
                f"{settings.metrics_port} (metrics_port, {settings.source_of('metrics_port')}): "
                f"{exc.strerror or exc}; choose another port (0 picks a free one), stop what "
                "uses it, or set metrics_enabled = false"
            ) from None
        endpoint = cls(runner)
        log.info("gateway metrics on %s", endpoint.url)
        return endpoint

    async def close(self) -> None:
        await self.runner.cleanup()
