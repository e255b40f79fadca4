"""`redisgate dev`: the whole system on one machine, from one data folder, with one command.

Order matters and so does its reverse: PostgreSQL (created on first run, migrated), then the
gateway and the control API (`stack.running_stack`; the control API runs the local
provisioner, which re-adopts the instances of earlier runs), then the demo account, made over
HTTP like any user's (`demo.ensure_demo`). On Ctrl-C or SIGTERM everything stops in the
opposite order, instances included, also when a later step failed to start. A second signal
cuts the wait short. PostgreSQL and the instance servers (`instances_stop_on_exit`, always on
here) get a parent-death signal, so a SIGKILLed `redisgate dev` leaves neither a database nor
a redis-server behind; the next run starts the instances again on their stored ports, from
their data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

import uvloop

from redisgate.config import Settings
from redisgate.dev.demo import ensure_demo
from redisgate.launcher.postgres import PostgresServer
from redisgate.signals import StopSignals
from redisgate.stack import running_stack
from redisgate.store import db
from redisgate.store.migrations import default_migrations_dir, migrate

log = logging.getLogger(__name__)

DATABASE = "redisgate"


@dataclass(frozen=True, slots=True)
class DevEndpoints:
    """What `redisgate dev` prints once everything is up."""

    redis_url: str
    control_url: str
    demo_email: str
    demo_password: str
    metrics_url: str | None = None
    rest_url: str | None = None  # the HTTP command API (None: http_enabled is off)
    rest_token: str = ""
    # With the local cluster's password: what `redisgate admin create-user` and `migrate`
    # need against this stack (a local dev database, so printing it is fine).
    database_url: str = ""

    def lines(self) -> list[str]:
        return [
            f"REDISGATE_URL={self.redis_url}",
            f"REDISGATE_CONTROL_URL={self.control_url}",
            f"REDISGATE_DEMO_LOGIN={self.demo_email}:{self.demo_password}",
            f"redis-cli -u {self.redis_url}",
            f"REDISGATE_REST_URL={self.rest_url or '(http_enabled is off)'}",
            f"REDISGATE_REST_TOKEN={self.rest_token}",
            f"REDISGATE_METRICS_URL={self.metrics_url or '(metrics_enabled is off)'}",
            f"REDISGATE_DATABASE_URL={self.database_url}",
        ]


class _Stop(Exception):
    """Raised by our SIGTERM handler while the services start (before the event loop runs)."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


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
    settings = dataclasses.replace(
        settings,
        data_dir=data_dir,
        instances_dir=settings.instances_dir or data_dir / "instances",
        instances_stop_on_exit=True,
    )
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
        except (_Stop, KeyboardInterrupt):
            log.info("stopped while starting")
            return 0
        return uvloop.run(_serve(settings, postgres, started))


async def _serve(settings: Settings, postgres: PostgresServer, started: float) -> int:
    with StopSignals() as signals:
        async with db.connection(postgres.dsn()) as admin:
            if await db.ensure_database(admin, DATABASE):
                log.info("created database %s", DATABASE)
        database_url = postgres.dsn(DATABASE)
        async with db.connection(database_url) as conn:
            applied = await migrate(conn, settings.migrations_dir or default_migrations_dir())
        log.info("migrations: %d applied now", len(applied))
        settings = dataclasses.replace(settings, database_url=database_url, keys_file=None)
        async with running_stack(settings, signals) as stack:
            demo = await ensure_demo(stack.control_url, settings.data_dir)
            endpoints = DevEndpoints(
                redis_url=demo.url,
                control_url=stack.control_url,
                demo_email=demo.email,
                demo_password=demo.password,
                metrics_url=stack.metrics_url,
                database_url=database_url,
                rest_url=demo.rest_url,
                rest_token=demo.token,
            )
            log.info("ready in %.1fs", time.monotonic() - started)
            sys.stdout.write("\n".join(endpoints.lines()) + "\n")
            sys.stdout.flush()
            await signals.first.wait()
    return 0
