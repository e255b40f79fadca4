"""`redisgate dev`: the whole system on one machine, from one data folder, with one command.

Order matters and so does its reverse: PostgreSQL (created on first run, migrated), then Redis,
then the gateway and the control API; on Ctrl-C or SIGTERM everything stops
in the opposite order, also when a later step failed to start. A second signal cuts the wait
short. Children also get a parent-death signal, so a SIGKILLed `redisgate dev` leaves nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvloop
from aiohttp import web

from redisgate import apikeys
from redisgate.config import Settings
from redisgate.control.app import create_app
from redisgate.errors import ServiceError
from redisgate.launcher.postgres import PostgresServer
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.principals import Backend
from redisgate.proxy.server import Gateway, drain
from redisgate.proxy.static_source import StaticSource, add_key, parse_keys_file, set_instance
from redisgate.signals import StopSignals
from redisgate.store import db
from redisgate.store.migrations import default_migrations_dir, migrate

log = logging.getLogger(__name__)

DATABASE = "redisgate"
DEMO_INSTANCE = "demo"


@dataclass(frozen=True, slots=True)
class DevEndpoints:
    """What `redisgate dev` prints once everything is up."""

    redis_url: str
    control_url: str

    def lines(self) -> list[str]:
        return [
            f"REDISGATE_URL={self.redis_url}",
            f"REDISGATE_CONTROL_URL={self.control_url}",
            f"redis-cli -u {self.redis_url}",
        ]


class _Stop(Exception):
    """Raised by our SIGTERM handler while the services start (before the event loop runs)."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _persistent_secret(path: Path) -> str:
    """A secret generated on first run and kept (0600) in the data folder."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_dev(settings: Settings) -> int:
    """Run the local stack until SIGINT/SIGTERM; the exit code of `redisgate dev`."""
    started = time.monotonic()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log.info("data folder: %s", data_dir)
    with contextlib.ExitStack() as services:
        try:
            with _sigterm_raises():
                postgres = PostgresServer(
                    data_dir / "postgres",
                    port=settings.postgres_port,
                    bin_dir=settings.postgres_bin_dir,
                )
                services.callback(postgres.stop)
                postgres.start(settings.service_start_timeout_s)
                log.info("PostgreSQL ready on 127.0.0.1:%s", postgres.port)
                redis = RedisServer(
                    data_dir / "redis",
                    port=settings.redis_port,
                    password=_persistent_secret(data_dir / "redis" / "password"),
                    binary=settings.redis_server_bin,
                    persistent=True,
                )
                services.callback(redis.stop)
                redis.start(settings.service_start_timeout_s)
                log.info("Redis ready on 127.0.0.1:%s", redis.port)
        except (_Stop, KeyboardInterrupt):
            log.info("stopped while starting")
            return 0
        return uvloop.run(_serve(settings, postgres, redis, started))


async def _serve(
    settings: Settings, postgres: PostgresServer, redis: RedisServer, started: float
) -> int:
    with StopSignals() as signals:
        async with db.connection(postgres.dsn()) as admin:
            if await db.ensure_database(admin, DATABASE):
                log.info("created database %s", DATABASE)
        database_url = postgres.dsn(DATABASE)
        async with db.connection(database_url) as conn:
            applied = await migrate(conn, settings.migrations_dir or default_migrations_dir())
        log.info("migrations: %d applied now", len(applied))

        keys_file = settings.data_dir.resolve() / "keys.toml"
        token = _demo_key(keys_file, redis)
        settings = dataclasses.replace(settings, database_url=database_url, keys_file=keys_file)
        gateway = Gateway(settings, StaticSource(keys_file))
        runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await gateway.start()
            site = web.TCPSite(
                runner,
                settings.control_host,
                settings.control_port,
                shutdown_timeout=settings.shutdown_timeout_s,
            )
            try:
                await site.start()
            except OSError as exc:
                raise ServiceError(
                    f"the control API cannot listen on {settings.control_host}:"
                    f"{settings.control_port} (control_port, "
                    f"{settings.source_of('control_port')}): {exc.strerror or exc}; choose "
                    f"another port (0 picks a free one) or stop what uses it"
                ) from None
            host, port = runner.addresses[0][:2]
            endpoints = DevEndpoints(
                redis_url=f"redis://default:{token}@127.0.0.1:{gateway.port}/0",
                control_url=f"http://{host}:{port}",
            )
            log.info("ready in %.1fs", time.monotonic() - started)
            sys.stdout.write("\n".join(endpoints.lines()) + "\n")
            sys.stdout.flush()
            await signals.first.wait()
        finally:
            await drain(gateway, signals)
            await runner.cleanup()
    return 0


def _demo_key(keys_file: Path, redis: RedisServer) -> str:
    """The demo instance (this run's Redis) and its key, kept across runs in the data folder."""
    backend = Backend(host=redis.host, port=redis.port, password=redis.password)
    set_instance(keys_file, DEMO_INSTANCE, backend, replace=True)
    token_file = keys_file.parent / "demo-key"
    token = token_file.read_text().strip() if token_file.exists() else ""
    key_id = apikeys.key_id_of(token.encode())
    if key_id is None or key_id not in parse_keys_file(keys_file):
        key = add_key(keys_file, DEMO_INSTANCE, "demo")
        token = key.token
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
    return token
