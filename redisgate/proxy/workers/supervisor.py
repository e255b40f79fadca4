"""`redisgate proxy --workers N`: N gateway processes on the same ports, under one supervisor.

Theory of operation. The supervisor holds no client: it reserves the gateway's TCP ports
(a port of 0 is chosen here, once), starts its metrics endpoint, then starts N workers
(`worker.py`), each a whole gateway listening with SO_REUSEPORT, so the kernel spreads new
connections over them. The ports stay bound (not listening) in the supervisor for its whole
life: what another program cannot take while a worker restarts, and what makes a port in use
fail here, before any worker starts, with the single gateway's message.

- Start-up: the supervisor reports ready once every worker wrote `ready`; a worker that exits
  before that fails the start (the others are stopped; its exit code is ours).
- A worker that exits later is logged and restarted after 0.1 s, doubling to 5 s while it
  keeps failing (reset once it stayed up 30 s).
- SIGTERM/SIGINT: every worker gets SIGTERM and drains as a single gateway does; a second
  signal is passed on too (cutting the drains short), and workers still running 10 s after it
  are killed. The exit code is 0 when every worker stopped cleanly.
- Workers run in their own sessions (a terminal's Ctrl-C reaches only the supervisor, which
  decides), and read their stdin until it closes: if the supervisor dies, they drain and exit.
- Metrics: a scrape of the supervisor's `metrics_port` asks each worker over its private Unix
  socket and merges the answers (`metrics/merge.py`); a worker that does not answer is
  skipped, shown by `redisgate_workers_up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from redisgate.config import Settings
from redisgate.errors import ConfigError, ServiceError
from redisgate.metrics.endpoint import MetricsEndpoint
from redisgate.metrics.merge import Families, FleetMetrics, commands_total, parse
from redisgate.proxy.workers.worker import READY, encode_settings
from redisgate.signals import StopSignals

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
_STABLE_S = 30.0  # up this long: the next failure starts the backoff over
_SCRAPE_TIMEOUT_S = 2.0  # per worker; well under Prometheus's default 10 s scrape timeout
_KILL_AFTER_S = 10.0  # after the second signal
_CLEAN_EXITS = (0, -signal.SIGTERM)  # drained; or stopped before it had signal handlers


@dataclass(eq=False)
class WorkerSlot:
    """One of the N places a worker process fills; restarts keep the slot."""

    index: int
    metrics_socket: Path | None
    proc: asyncio.subprocess.Process | None = None
    ready: bool = False
    generation: int = 0  # one per process started in this slot
    restarts: int = 0
    final_code: int | None = None  # exit code of a process stopped by us

    @property
    def name(self) -> str:
        return str(self.index)


class Supervisor:
    def __init__(self, settings: Settings, run_dir: Path) -> None:
        self.settings = settings
        self.slots = [
            WorkerSlot(i, run_dir / f"worker-{i}.sock" if settings.metrics_enabled else None)
            for i in range(settings.proxy_workers)
        ]
        self.fleet = FleetMetrics()
        self._blob = encode_settings(settings)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._settled = asyncio.Event()  # every worker ready, or one failed to start
        self._started = False
        self._failure: int | None = None

    # --- Lifecycle --------------------------------------------------------------------------

    async def start(self) -> int | None:
        """Start every worker and wait until all are ready; if one exits first, stop the
        others and return its exit code."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keep(slot)) for slot in self.slots]
        await self._settled.wait()
        if self._failure is None:
            return None
        await self.stop()
        return self._failure

    async def stop(self, signals: StopSignals | None = None) -> int:
        """SIGTERM every worker and wait for all to exit; a second signal is passed on."""
        self._stopping.set()
        self._signal_all(signal.SIGTERM)
        everyone: asyncio.Future[Any] = asyncio.gather(*self._tasks, return_exceptions=True)
        if signals is not None:
            second: asyncio.Future[Any] = asyncio.ensure_future(signals.second.wait())
            await asyncio.wait({everyone, second}, return_when=asyncio.FIRST_COMPLETED)
            second.cancel()
            if not everyone.done():
                self._signal_all(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(everyone), _KILL_AFTER_S)
                if not everyone.done():
                    log.error(
                        "workers still running %.0f s after the second signal: killing them",
                        _KILL_AFTER_S,
                    )
                    self._signal_all(signal.SIGKILL)
        await everyone
        failed = [s for s in self.slots if s.final_code not in (None, *_CLEAN_EXITS)]
        for slot in failed:
            log.error("worker %d did not stop cleanly (%s)", slot.index, _exit(slot.final_code))
        return 1 if failed else 0

    def _signal_all(self, sig: int) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.proc.send_signal(sig)

    async def _keep(self, slot: WorkerSlot) -> None:
        """Run the slot's worker, and a new one whenever it exits, until stopping."""
        loop = asyncio.get_running_loop()
        backoff = _BACKOFF_FIRST_S
        while not self._stopping.is_set():
            started_at = loop.time()
            try:
                proc = await self._spawn(slot)
            except OSError as exc:
                code, what = 1, f"could not be started ({exc})"
            else:
                if self._stopping.is_set():  # stop() ran while it was being started
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGTERM)
                await self._wait_ready(slot, proc)
                code = await proc.wait()
                what = f"(pid {proc.pid}) {_exit(code)}"
                slot.ready = False
                self.fleet.exited(slot.name)
                if self._stopping.is_set():
                    slot.final_code = code
                    return
            if not self._started:
                log.error("worker %d %s before it was ready", slot.index, what)
                self._failure = code if code > 0 else 1
                self._settled.set()
                return
            if loop.time() - started_at >= _STABLE_S:
                backoff = _BACKOFF_FIRST_S
            slot.restarts += 1
            log.warning("worker %d %s: restarting it in %.1f s", slot.index, what, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _spawn(self, slot: WorkerSlot) -> asyncio.subprocess.Process:
        argv = [sys.executable, "-m", "redisgate.proxy.workers.worker", slot.name]
        argv.append(str(slot.metrics_socket) if slot.metrics_socket is not None else "")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        slot.proc, slot.generation = proc, slot.generation + 1
        assert proc.stdin is not None
        proc.stdin.write(self._blob)
        with contextlib.suppress(ConnectionError):  # it died at once: proc.wait() says how
            await proc.stdin.drain()
        return proc

    async def _wait_ready(self, slot: WorkerSlot, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        if await proc.stdout.readline() != READY:
            return  # it exited first
        slot.ready = True
        log.info("worker %d (pid %d) ready", slot.index, proc.pid)
        if not self._started and all(s.ready for s in self.slots):
            self._started = True
            self._settled.set()

    # --- Metrics ----------------------------------------------------------------------------

    async def metrics(self, request: web.Request) -> web.Response:
        """The fleet's merged exposition, plus how each worker is doing."""
        slots = list(self.slots)
        answers = await asyncio.gather(*(self._ask(slot) for slot in slots))
        families = self.fleet.merged([(s.name, a) for s, a in zip(slots, answers, strict=True)])
        families.extend(_worker_families(slots, answers))
        return web.Response(
            body=generate_latest(Families(families)), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _ask(self, slot: WorkerSlot) -> list[Metric] | None:
        """One worker's families, or None (not ready, or no answer in time)."""
        if not slot.ready or slot.metrics_socket is None:
            return None
        generation = slot.generation
        try:
            async with (
                aiohttp.ClientSession(
                    connector=aiohttp.UnixConnector(path=str(slot.metrics_socket)),
                    timeout=aiohttp.ClientTimeout(total=_SCRAPE_TIMEOUT_S),
                ) as http,
                http.get("http://worker/metrics") as response,
            ):
                response.raise_for_status()
                families = parse(await response.text())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("worker %d skipped in this scrape: %s", slot.index, exc or type(exc))
            return None
        if not slot.ready or slot.generation != generation:
            return None  # it exited meanwhile: its last answer was retired already
        self.fleet.answered(slot.name, families)
        return families


def _worker_families(
    slots: Sequence[WorkerSlot], answers: Sequence[list[Metric] | None]
) -> list[Metric]:
    up = GaugeMetricFamily(
        "redisgate_workers_up",
        "1 when the worker answered this scrape; 0: starting, restarting or not answering "
        "(its counters still count, as of its last answer).",
        labels=["worker"],
    )
    restarts = CounterMetricFamily(
        "redisgate_worker_restarts",
        "Workers that exited unexpectedly and were started again.",
        labels=["worker"],
    )
    commands = CounterMetricFamily(
        "redisgate_worker_commands",
        "Commands counted by each worker's current process (how the kernel spread the load).",
        labels=["worker"],
    )
    for slot, answer in zip(slots, answers, strict=True):
        up.add_metric([slot.name], 0 if answer is None else 1)
        restarts.add_metric([slot.name], slot.restarts)
        if answer is not None:
            commands.add_metric([slot.name], commands_total(answer))
    return [up, restarts, commands]


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


# --- Ports --------------------------------------------------------------------------------


def reserve_ports(settings: Settings) -> tuple[Settings, list[socket.socket]]:
    """Bind the gateway's TCP ports for the workers to share (SO_REUSEPORT, not listening):
    the settings with the ports chosen, and the sockets to keep open meanwhile."""
    held: list[socket.socket] = []
    names = ["proxy_port", "proxy_tls_port"]
    if settings.http_enabled:
        names += ["http_port", "http_tls_port"]
    for name in names:
        port = getattr(settings, name)
        if name.endswith("_tls_port") and not port:
            continue  # 0 turns a TLS port off (it does not pick one)
        try:
            chosen = _hold(settings.proxy_host, port, held)
        except OSError as exc:
            for sock in held:
                sock.close()
            raise ServiceError(
                f"the gateway cannot listen on {settings.proxy_host}:{port} ({name}, "
                f"{settings.source_of(name)}): {exc.strerror or exc}; choose another port "
                "(0 picks a free one) or stop what uses it"
            ) from None
        chosen_port: dict[str, Any] = {name: chosen}
        settings = dataclasses.replace(settings, **chosen_port)
    return settings, held


def _hold(host: str, port: int, held: list[socket.socket]) -> int:
    """Bind every address of `host` on `port` (0: one the kernel picks, then the same for the
    other addresses). A plain bind comes first, so a port that another program (even another
    gateway's workers) listens on is refused rather than shared."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    for family, kind, proto, _, address in dict.fromkeys(infos):
        with _socket(family, kind, proto) as probe:
            probe.bind((address[0], port, *address[2:]))
            port = probe.getsockname()[1]
        holder = _socket(family, kind, proto)
        held.append(holder)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((address[0], port, *address[2:]))
    return port


def _socket(family: int, kind: int, proto: int) -> socket.socket:
    """A listening socket's options as asyncio sets them."""
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


async def supervise(settings: Settings) -> int:
    """Run `proxy_workers` gateway processes until SIGINT/SIGTERM (`redisgate proxy`)."""
    if settings.proxy_unix_socket is not None:
        raise ConfigError(
            f"proxy_unix_socket cannot be shared by {settings.proxy_workers} workers: unset it "
            "or run one worker (proxy_workers = 1)"
        )
    settings, held = reserve_ports(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="redisgate-workers-") as run_dir:
            supervisor = Supervisor(settings, Path(run_dir))
            endpoint = await MetricsEndpoint.start(settings, supervisor.metrics)
            try:
                return await _run(supervisor)
            finally:
                if endpoint is not None:
                    await endpoint.close()
    finally:
        for sock in held:
            sock.close()


async def _run(supervisor: Supervisor) -> int:
    loop = asyncio.get_running_loop()
    settings = supervisor.settings
    with StopSignals() as signals:
        starting = loop.create_task(supervisor.start())
        asked = loop.create_task(signals.first.wait())
        await asyncio.wait({starting, asked}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done() and (failure := starting.result()) is not None:
            asked.cancel()
            return failure
        if starting.done():
            pids = ", ".join(str(s.proc.pid) for s in supervisor.slots if s.proc is not None)
            log.info(
                "gateway ready in %d workers (pids %s) on %s:%d",
                len(supervisor.slots),
                pids,
                settings.proxy_host,
                settings.proxy_port,
            )
            await asked
        else:
            starting.cancel()
        return await supervisor.stop(signals)
