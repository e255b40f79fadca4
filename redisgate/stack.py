"""Gateway and control API in one process (`redisgate serve`, and `redisgate dev` on top).

The gateway starts first, so the control API can show its real port in instance endpoints
and key URLs (a port of 0 picks a free one). Both read the same PostgreSQL: keys created over
HTTP work at the gateway at once. Shutdown runs in reverse: the gateway drains its clients (a
second signal cuts that short), then the control API stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from redisgate.config import Settings
from redisgate.control.app import create_app
from redisgate.errors import ServiceError
from redisgate.metrics.endpoint import MetricsEndpoint
from redisgate.proxy.clients.gateway import Gateway, drain
from redisgate.proxy.keys.sources import open_source
from redisgate.signals import StopSignals

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stack:
    gateway: Gateway
    control_url: str
    settings: Settings  # with the ports actually in use
    metrics_url: str | None = None  # the gateway's /metrics (None: metrics_enabled is off)


@contextlib.asynccontextmanager
async def running_stack(settings: Settings, signals: StopSignals) -> AsyncIterator[Stack]:
    """Start the gateway, then the control API; on exit stop them in reverse."""
    async with open_source(settings) as source:
        gateway = Gateway(settings, source)
        await gateway.start()
        runner: web.AppRunner | None = None
        endpoint: MetricsEndpoint | None = None
        try:
            endpoint = await MetricsEndpoint.start(settings)
            settings = dataclasses.replace(
                settings, proxy_port=gateway.port, http_port=gateway.http_port or 0
            )
            runner = web.AppRunner(
                create_app(settings),
                handle_signals=False,
                access_log=None,
                shutdown_timeout=settings.shutdown_timeout_s,
            )
            await runner.setup()
            site = web.TCPSite(runner, settings.control_host, settings.control_port)
            try:
                await site.start()
            except OSError as exc:
                raise ServiceError(
                    f"the control API cannot listen on {settings.control_host}:"
                    f"{settings.control_port} (control_port, "
                    f"{settings.source_of('control_port')}): {exc.strerror or exc}; choose "
                    "another port (0 picks a free one) or stop what uses it"
                ) from None
            host, port = runner.addresses[0][:2]
            log.info("control API and web console on http://%s:%s", host, port)
            _allow_console(gateway, settings, host, port)
            metrics_url = endpoint.url if endpoint is not None else None
            yield Stack(gateway, f"http://{host}:{port}", settings, metrics_url)
        finally:
            await drain(gateway, signals)
            if runner is not None:
                await runner.cleanup()
            if endpoint is not None:
                await endpoint.close()


def console_origins(settings: Settings, host: str, port: int) -> set[str]:
    """The browser origins of the control API's own pages (the web console): the address it
    listens on, with the loopback names when it listens there or everywhere, and the gateway's
    public host (which names this machine too)."""
    names = {host}
    if host in ("0.0.0.0", "::", "") or host.startswith("127.") or host == "::1":
        names |= {"127.0.0.1", "localhost", "::1"}
    if settings.gateway_public_host:
        names.add(settings.gateway_public_host)
    return {f"http://[{n}]:{port}" if ":" in n else f"http://{n}:{port}" for n in names if n}


def _allow_console(gateway: Gateway, settings: Settings, host: str, port: int) -> None:
    """Let the console, served by the control API, call the HTTP command API cross-origin
    (its data browser): the control API's origins join http_cors_origins. Known only now, as
    the control port may have been 0."""
    if gateway.http is None:
        return
    added = console_origins(settings, host, port) - gateway.http.cors
    if "*" not in gateway.http.cors and added:
        gateway.http.cors = gateway.http.cors | added
        log.info("HTTP command API: allowing the console's origins %s", ", ".join(sorted(added)))


async def serve(settings: Settings) -> int:
    """`redisgate serve`: both planes until SIGINT/SIGTERM."""
    with StopSignals() as signals:
        async with running_stack(settings, signals):
            await signals.first.wait()
    return 0
