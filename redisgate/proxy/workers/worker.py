"""One worker process of `redisgate proxy --workers N`, started by `supervisor.py` as
`python -m redisgate.proxy.workers.worker INDEX METRICS_SOCKET`.

A worker is a whole gateway: its own key source, pools, LISTEN connection, limits and usage
meter (a gateway id of its own, so the store's idempotent usage batches of two workers never
collide). It binds the gateway's TCP ports with SO_REUSEPORT next to its siblings (the
supervisor chose the port numbers), serves its registry on a private Unix socket for the
supervisor to merge, and writes `ready` on stdout once it accepts clients.

The settings arrive on stdin, pickled and length-prefixed, from the supervisor that validated
them (the pipe is private to the two processes). stdin then stays open: end of file means the
supervisor is gone, and counts as a first SIGTERM. Signals behave as in a single gateway:
the first drains, the second cuts the drain short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

from redisgate.config import Settings
from redisgate.errors import ConfigError, RedisGateError, exit_status
from redisgate.metrics.endpoint import MetricsEndpoint
from redisgate.proxy.clients.gateway import Gateway, drain
from redisgate.proxy.keys.sources import open_source
from redisgate.signals import StopSignals

log = logging.getLogger("redisgate.proxy.workers.worker")  # not __main__: it runs with -m

READY = b"ready\n"
_HEADER = struct.Struct("!Q")


def encode_settings(settings: Settings) -> bytes:
    """What the supervisor writes on a worker's stdin."""
    payload = pickle.dumps(settings)
    return _HEADER.pack(len(payload)) + payload


def _read_settings(fd: int) -> Settings:
    def read_exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = os.read(fd, n - len(data))
            if not chunk:
                raise ConfigError("the supervisor closed the settings pipe early")
            data += chunk
        return data

    (size,) = _HEADER.unpack(read_exact(_HEADER.size))
    settings = pickle.loads(read_exact(size))
    if not isinstance(settings, Settings):
        raise ConfigError("the supervisor sent something other than settings")
    return settings


class _SupervisorWatch(asyncio.Protocol):
    """stdin's end of file: the supervisor is gone (even SIGKILLed), so drain and exit."""

    def __init__(self, gone: asyncio.Event) -> None:
        self.gone = gone

    def eof_received(self) -> bool | None:
        self.gone.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone.set()


async def run(settings: Settings, index: int, metrics_socket: Path | None) -> int:
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()
    watch, _ = await loop.connect_read_pipe(lambda: _SupervisorWatch(gone), sys.stdin)
    try:
        async with open_source(settings) as source:
            gateway = Gateway(settings, source)
            await gateway.start(reuse_port=True)
            endpoint: MetricsEndpoint | None = None
            try:
                if metrics_socket is not None:
                    endpoint = await MetricsEndpoint.start_private(metrics_socket)
            except BaseException:
                await gateway.shutdown(timeout_s=0)
                raise
            with StopSignals() as signals:
                os.write(sys.stdout.fileno(), READY)
                first = loop.create_task(signals.first.wait())
                orphaned = loop.create_task(gone.wait())
                await asyncio.wait({first, orphaned}, return_when=asyncio.FIRST_COMPLETED)
                first.cancel()
                orphaned.cancel()
                if gone.is_set() and not signals.first.is_set():
                    log.warning("the supervisor is gone: shutting down gracefully")
                await drain(gateway, signals)
            if endpoint is not None:
                await endpoint.close()
    finally:
        watch.close()
    return 0


def main(argv: Sequence[str]) -> int:
    import uvloop

    index = int(argv[0])
    metrics_socket = Path(argv[1]) if len(argv) > 1 and argv[1] else None
    try:
        settings = _read_settings(sys.stdin.fileno())
    except ConfigError as exc:
        print(f"redisgate: worker {index}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker {index} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if metrics_socket is not None:
        with contextlib.suppress(FileNotFoundError):
            metrics_socket.unlink()  # a predecessor's, after a restart
    try:
        return uvloop.run(run(settings, index, metrics_socket))
    except RedisGateError as exc:
        return exit_status(exc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
