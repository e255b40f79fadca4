"""Serving the metrics registry over HTTP: the gateway's own `/metrics` port, and the response
the control API's `/metrics` route returns.

The gateway's port also answers `GET /healthz` (`{"status": "ok"}`), for container health checks
and Kubernetes probes: the endpoint starts after the RESP listeners do, so an answer means the
gateway accepts clients (docs/deploy.md).

The registry is per process, so in `redisgate serve` (both planes in one process) both
endpoints show the same samples. Under `redisgate proxy --workers N` each worker serves its
registry on a private Unix socket and the supervisor's port serves the fleet's merged numbers
(its own handler, `proxy/workers/supervisor.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

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


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


Handler = Callable[[web.Request], Awaitable[web.Response]]


async def _runner(handler: Handler) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/metrics", handler)
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    return runner


class MetricsEndpoint:
    """A small HTTP server (`GET /metrics`, `GET /healthz`) on metrics_host:metrics_port."""

    def __init__(self, runner: web.AppRunner) -> None:
        self.runner = runner
        address = runner.addresses[0]
        if isinstance(address, str):
            self.url = f"unix:{address}"
        else:
            self.url = f"http://{address[0]}:{address[1]}/metrics"

    @classmethod
    async def start(cls, settings: Settings, handler: Handler = _metrics) -> MetricsEndpoint | None:
        """Listen, or return None when `metrics_enabled` is off."""
        if not settings.metrics_enabled:
            return None
        runner = await _runner(handler)
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

    @classmethod
    async def start_private(cls, path: Path) -> MetricsEndpoint:
        """Serve this process's registry on a Unix socket only its supervisor reads."""
        runner = await _runner(_metrics)
        try:
            await web.UnixSite(runner, str(path)).start()
        except OSError as exc:
            await runner.cleanup()
            raise ServiceError(f"cannot serve metrics on {path}: {exc.strerror or exc}") from None
        return cls(runner)

    async def close(self) -> None:
        await self.runner.cleanup()
