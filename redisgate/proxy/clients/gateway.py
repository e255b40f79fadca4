"""The Gateway: listeners, the client registry, upstream pools, timers and graceful shutdown.

It owns the data plane's parts and wires them together; the work of each is its own:
`UsageRecorder` (`usage`: usage counts, their flush, the daily quotas' sync), `KeyRefresher`
(`refresher`: keys that changed under live sessions), `LivePolicy` (`live`: change notices),
`CommandTables` (`tables`: each backend's command table), `LimitRegistry` (`limits`). The
Gateway itself admits, counts and forgets client connections, caps the memory they hold
together, runs the 1 s sweep (timeouts, usage harvest, key expiry, a keys-file reload, the
usage flush when due) and the fair-share tick, and shuts down.

Shutdown mirrors uvicorn's: close the listeners, ask every client to finish (idle ones close at
once, busy ones after their owed replies), wait up to `shutdown_timeout_s`, abort what is left,
then close the upstream pools and flush the usage counted. A second SIGINT/SIGTERM skips the
wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import itertools
import logging
import operator
import ssl
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from redisgate import metrics
from redisgate.config import Settings
from redisgate.errors import ConfigError, ServiceError
from redisgate.limits import default_limits
from redisgate.metrics.endpoint import MetricsEndpoint
from redisgate.proxy.backend.command_tables import CommandTables
from redisgate.proxy.backend.pool import InstancePool, PoolRegistry
from redisgate.proxy.clients.connection import ClientConnection
from redisgate.proxy.clients.front_door import Caller
from redisgate.proxy.clients.http_front_door import HttpFrontDoor
from redisgate.proxy.clients.usage_recorder import UsageRecorder
from redisgate.proxy.commands.peers import PeerInfo
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.keys.live import LivePolicy
from redisgate.proxy.keys.principals import Authenticator, Instance, KeySource
from redisgate.proxy.keys.refresh import KeyRefresher
from redisgate.proxy.keys.sources import open_source
from redisgate.proxy.policy.rates import LimitRegistry
from redisgate.proxy.policy.throttle import AuthThrottle
from redisgate.signals import StopSignals

log = logging.getLogger(__name__)

_SWEEP_INTERVAL_S = 1.0
_FINAL_FLUSH_TIMEOUT_S = 2.0
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_FAIR_TICK_S = 0.002  # how often the fair-share check runs
_FAIR_LATE_S = 0.001  # a tick this late means the loop is overloaded
_FAIR_MAX_HOLD = 20  # ticks
_FAIR_ACTIVE_S = 1.0  # an instance that moved bytes this recently is in use


class Gateway:
    """The data plane of one process."""

    def __init__(
        self,
        settings: Settings,
        source: KeySource,
        table: CommandTable | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.table = table or CommandTable.from_snapshot()
        self.server_version = self.table.redis_version or "7.0.0"
        self.tables = CommandTables(self.table)
        dsn = settings.database_url if source.fleet_wide else None  # change notices' source
        if dsn:
            # Cached only while change notices arrive (LivePolicy sets the TTL then).
            self.authenticator = Authenticator(
                source,
                ttl_s=0.0,
                negative_ttl_s=source.negative_ttl_s,
                fail_static_s=settings.fail_static_s,
            )
        else:
            self.authenticator = Authenticator(source, negative_ttl_s=source.negative_ttl_s)
        self.throttle = AuthThrottle()
        self.limits = LimitRegistry(default_limits(settings))
        self.usage = UsageRecorder(source, self.authenticator, self.limits.quotas)
        self.pools = PoolRegistry(self._new_pool)
        self.clients: set[ClientConnection] = set()
        self.callers: set[Caller] = set()  # of other front doors, while authenticated
        self.http: HttpFrontDoor | None = None  # the HTTP command API, once started
        connections = _Connections(self.clients, self.callers)
        self.refresher = KeyRefresher(self.authenticator, connections, self.pools, self.tables.get)
        self.live = LivePolicy(self.refresher, dsn, settings.key_cache_ttl_s) if dsn else None
        # Clients not authenticated yet, oldest first, in all and per client address.
        self._anonymous: dict[ClientConnection, None] = {}
        self._anonymous_by_host: dict[str, dict[ClientConnection, None]] = {}
        self._evicting = 0  # evicted clients whose connection has not closed yet
        # Bytes all clients hold in this process: requests still arriving, and unsent replies
        # of slow readers (each client keeps its own share: `request_held`, `reply_held`).
        self.request_bytes = 0
        self.reply_bytes = 0
        self._by_id: dict[int, ClientConnection] = {}
        self.servers: list[asyncio.Server] = []
        self.http_servers: list[asyncio.Server] = []  # the HTTP command API's (`http`)
        self.addresses: list[tuple[str, int] | str] = []
        self._next_id = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._fair_timer: asyncio.TimerHandle | None = None
        self._fair_due = 0.0
        self._fair_seen: dict[InstancePool, int] = {}  # meter readings at the last overload
        self._fair_active: dict[InstancePool, float] = {}  # when each last moved bytes
        self._throttled: InstancePool | None = None
        self._hold_ticks = 0
        self._all_gone = asyncio.Event()
        self._unix_inode: int | None = None
        self._background: set[asyncio.Task[None]] = set()
        metrics.INSTANCE_LABELS["enabled"] = settings.metrics_instance_labels
        metrics.KNOWN_COMMANDS.update(name.encode() for name in self.table.names())

    def __repr__(self) -> str:
        return f"<Gateway [{len(self.clients)} clients] {self.addresses}>"

    def _new_pool(self, instance: Instance) -> InstancePool:
        s = self.settings
        return InstancePool(
            instance,
            shared_connections=s.upstream_connections,
            connect_timeout_s=s.upstream_connect_timeout_s,
            timeout_s=s.upstream_timeout_s,
            max_inflight_commands=s.upstream_max_inflight_commands,
            max_inflight_bytes=s.upstream_max_inflight_bytes,
        )

    # --- Client registry --------------------------------------------------------------------

    def client_by_id(self, client_id: int) -> ClientConnection | None:
        return self._by_id.get(client_id)

    # PeerRegistry interface (the session's view of its instance's other connections)

    def peers(self, instance_id: str) -> list[PeerInfo]:
        """Every authenticated client connection of the instance (one pass over the
        clients: CLIENT LIST and INFO are not on the hot path)."""
        found = []
        for client in self.clients:
            session = client.session
            principal = session.principal if session is not None else None
            if principal is not None and principal.instance.id == instance_id:
                info = client.describe()
                if info is not None:
                    found.append(info)
        return found

    def kill(self, client_id: int) -> None:
        client = self._by_id.get(client_id)
        if client is not None:
            client.kill()

    def next_client_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def admit(self, client: ClientConnection) -> bool:
        """Take a new connection (not authenticated yet), or refuse it when authenticated
        clients hold every one of `max_clients`.

        Connections that have not authenticated are capped per client address and in
        total (a share of `max_clients`); over a cap, the oldest of them (of that address)
        is closed to make room. It has had the longest to send AUTH, which a client with a
        key does at once: so a flood of anonymous sockets, however large, recycles its own
        connections and never locks out a tenant (docs/security.md)."""
        s = self.settings
        host = client.peer_host
        same_host = self._anonymous_by_host.get(host) if host else None
        if same_host is not None and len(same_host) >= s.max_anonymous_per_address:
            self._evict(next(iter(same_host)))
        if len(self._anonymous) >= max(1, s.max_clients * s.max_anonymous_clients_pct // 100):
            self._evict(next(iter(self._anonymous)))
        if len(self.clients) - self._evicting >= s.max_clients:
            if not self._anonymous:
                return False
            self._evict(next(iter(self._anonymous)))
        self.clients.add(client)
        self._anonymous[client] = None
        if host:
            self._anonymous_by_host.setdefault(host, {})[client] = None
        if client.session is not None:
            self._by_id[client.session.client_id] = client
        return True

    def authenticated(self, client: ClientConnection) -> None:
        """`client` authenticated: it no longer counts against the anonymous caps."""
        if self._anonymous.pop(client, 0) is None:
            same_host = self._anonymous_by_host.get(client.peer_host)
            if same_host is not None:
                same_host.pop(client, None)
                if not same_host:
                    del self._anonymous_by_host[client.peer_host]

    def _evict(self, client: ClientConnection) -> None:
        self.authenticated(client)  # out of the anonymous registries
        self._evicting += 1
        metrics.CLIENTS_CUT["anonymous_evicted"] += 1
        client.evict()

    # --- Memory held for clients --------------------------------------------------------------

    def requests_held(self, delta: int) -> None:
        """A client's buffered request bytes changed by `delta`; over the total cap, the
        client holding the most is cut (the flood's own connection, not its victims')."""
        self.request_bytes += delta
        if delta > 0 and self.request_bytes > self.settings.max_total_request_bytes:
            self._largest("request_held", self.request_bytes).cut_for_requests()

    def replies_held(self, delta: int) -> None:
        """As `requests_held`, for unsent reply bytes of slow readers."""
        self.reply_bytes += delta
        if delta > 0 and self.reply_bytes > self.settings.max_total_reply_bytes:
            self._largest("reply_held", self.reply_bytes).cut_for_replies()

    def _largest(self, held: str, total: int) -> ClientConnection:
        largest = max(self.clients, key=operator.attrgetter(held))
        log.warning(
            "%r: all clients hold %d bytes (%s), over their cap; cutting the largest holder "
            "(%d bytes)",
            largest, total, held, getattr(largest, held),
        )  # fmt: skip
        return largest

    def forget(self, client: ClientConnection) -> None:
        self.usage.harvest(client)
        if client.evicted:
            self._evicting -= 1
        self.authenticated(client)
        self.clients.discard(client)
        if client.session is not None:
            self._by_id.pop(client.session.client_id, None)
            self.limits.release(client.session.client_id)
        if not self.clients:
            self._all_gone.set()

    # --- Listening --------------------------------------------------------------------------

    async def start(self, reuse_port: bool = False) -> None:
        """Bind every listener, or none: a failure closes what was already bound. With
        `reuse_port` the TCP ports are shared with the other workers of one supervisor."""
        loop = asyncio.get_running_loop()
        s = self.settings
        _fix_mmap_threshold()
        tls_wanted = s.proxy_tls_port or (s.http_tls_port and s.http_enabled)
        tls_context = self._tls_context() if tls_wanted else None  # fail before binding
        factory = lambda: ClientConnection(self)  # noqa: E731
        where = ""
        try:
            where = f"{s.proxy_host}:{s.proxy_port} (proxy_port, {s.source_of('proxy_port')})"
            tcp = await loop.create_server(
                factory, s.proxy_host, s.proxy_port, backlog=1024, reuse_port=reuse_port
            )
            self._listening(tcp)
            if tls_context is not None:
                where = f"{s.proxy_host}:{s.proxy_tls_port} (proxy_tls_port)"
                tls = await loop.create_server(
                    factory,
                    s.proxy_host,
                    s.proxy_tls_port,
                    ssl=tls_context,
                    backlog=1024,
                    reuse_port=reuse_port,
                )
                self._listening(tls)
            if s.proxy_unix_socket is not None:
                where = f"{s.proxy_unix_socket} (proxy_unix_socket)"
                _remove_socket_file(s.proxy_unix_socket)
                unix = await loop.create_unix_server(
                    factory, str(s.proxy_unix_socket), backlog=1024
                )
                self._unix_inode = s.proxy_unix_socket.stat().st_ino
                self._listening(unix)
            if s.http_enabled:
                self.http = HttpFrontDoor(self)
                where = f"{s.proxy_host}:{s.http_port} (http_port, {s.source_of('http_port')})"
                http = await loop.create_server(
                    self.http.protocol,
                    s.proxy_host,
                    s.http_port,
                    backlog=1024,
                    reuse_port=reuse_port,
                )
                self.http_servers.append(http)
                if s.http_tls_port:
                    where = f"{s.proxy_host}:{s.http_tls_port} (http_tls_port)"
                    https = await loop.create_server(
                        self.http.protocol,
                        s.proxy_host,
                        s.http_tls_port,
                        ssl=tls_context,
                        backlog=1024,
                        reuse_port=reuse_port,
                    )
                    self.http_servers.append(https)
        except OSError as exc:
            self._close_listeners()
            raise ServiceError(
                f"the gateway cannot listen on {where}: {exc.strerror or exc}; "
                f"choose another port (0 picks a free one) or stop what uses it"
            ) from None
        except BaseException:
            self._close_listeners()
            raise
        self._sweeper = loop.call_later(_SWEEP_INTERVAL_S, self._sweep)
        self._fair_due = loop.time() + _FAIR_TICK_S
        self._fair_timer = loop.call_at(self._fair_due, self._share_fairly)
        if self.live is not None:
            self.live.start()
        metrics.GAUGE_SOURCES.add(self.metric_gauges)

    def metric_gauges(self) -> metrics.GatewayGauges:
        """Connections and in-flight commands per instance id, read at scrape time."""
        gauges = metrics.GatewayGauges({}, {}, {})
        for client in list(self.clients):
            instance = client.pool.instance.id if client.pool is not None else ""
            gauges.clients[instance] = gauges.clients.get(instance, 0) + 1
            in_flight = gauges.commands_in_flight
            in_flight[instance] = in_flight.get(instance, 0) + client.inflight
        for pool in self.pools:
            for kind, count in pool.connection_counts().items():
                key = (pool.instance.id, kind)
                gauges.backend_connections[key] = gauges.backend_connections.get(key, 0) + count
        return gauges

    def _close_listeners(self) -> None:
        for server in [*self.servers, *self.http_servers]:
            server.close()
        self.servers.clear()
        self.http_servers.clear()

    def _listening(self, server: asyncio.Server) -> None:
        self.servers.append(server)
        for sock in server.sockets:
            address = sock.getsockname()
            self.addresses.append(address if isinstance(address, str) else address[:2])
        log.info("gateway listening on %s", self.addresses[-1])

    def _tls_context(self) -> ssl.SSLContext:
        s = self.settings
        if s.proxy_tls_cert_file is None or s.proxy_tls_key_file is None:
            raise ConfigError(
                "a TLS port is set (proxy_tls_port or http_tls_port): proxy_tls_cert_file and "
                "proxy_tls_key_file must name the certificate and its key"
            )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(s.proxy_tls_cert_file, s.proxy_tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the TLS certificate or key: {exc}") from None
        return context

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with proxy_port = 0)."""
        first = self.addresses[0]
        assert isinstance(first, tuple)
        return first[1]

    @property
    def http_port(self) -> int | None:
        """The HTTP command API's TCP port actually bound (None: it is off)."""
        if not self.http_servers:
            return None
        return int(self.http_servers[0].sockets[0].getsockname()[1])

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(_SWEEP_INTERVAL_S, self._sweep)  # whatever happens below
        now, wall, today = loop.time(), self.authenticator.wall_clock(), self.usage.today()
        for client in list(self.clients):
            client.check_timeouts(now)
            self.usage.harvest(client, today)
            principal = client.session.principal if client.session else None
            if principal is not None and principal.expired(wall):  # expiry needs no notice
                client.apply_principal(None)
        for caller in list(self.callers):  # long ones: server-sent event streams
            self.usage.harvest(caller, today)
            expires_at = caller.principal.expires_at if caller.principal is not None else None
            if expires_at is not None and expires_at <= wall:
                caller.apply_principal(None)
        self.limits.sweep(now, today)
        for pool in self.pools:
            pool.key_users.sweep(now)
        if self.source.maybe_reload(time.monotonic()):
            self.authenticator.invalidate()
            # Removed keys close their sessions, as with NOTIFY.
            self.in_background(self.refresher.refresh(self.refresher.live_keys()))
        self.usage.flush_if_due(now)

    def _share_fairly(self) -> None:
        """Every 5 ms: is the event loop late (it ran work for longer than that)? Then the
        instance that moved the most bytes since the last such check, if another instance
        is in use too, has its upstream connections held (not read) until the next tick,
        so its tenant's flood waits in its own Redis (bounded by the window) and the other
        tenants' commands get the loop. One tenant alone is never held: a benchmark or a
        big job on a quiet gateway runs at full speed (docs/security.md)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = now - self._fair_due
        self._fair_due = now + _FAIR_TICK_S
        self._fair_timer = loop.call_at(self._fair_due, self._share_fairly)
        if self._throttled is not None:
            self._hold_ticks -= 1
            if self._hold_ticks > 0:
                return
            self._throttled.set_throttled(False)
            self._throttled = None
        if late < _FAIR_LATE_S:
            return
        seen, active = self._fair_seen, self._fair_active
        heaviest, most = None, 0
        for pool in self.pools:
            moved = pool.meter.bytes - seen.get(pool, 0)
            if moved:
                seen[pool] = pool.meter.bytes
                active[pool] = now
                if moved > most:
                    heaviest, most = pool, moved
        if heaviest is None:
            return
        others = any(
            pool is not heaviest and now - at < _FAIR_ACTIVE_S for pool, at in active.items()
        )
        if others:
            heaviest.set_throttled(True)
            self._throttled = heaviest
            # Held longer the later the loop was: as long as its work held the others.
            self._hold_ticks = min(_FAIR_MAX_HOLD, 1 + int(late / _FAIR_TICK_S))
            metrics.FAIR_SHARE_HOLDS["holds"] += 1
        if len(active) > 4 * len(self.clients) + 64:  # forget pools long gone
            for pool in [p for p, at in active.items() if now - at > _FAIR_ACTIVE_S]:
                del active[pool]
                seen.pop(pool, None)

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task the gateway keeps a reference to until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- Shutdown ---------------------------------------------------------------------------

    async def shutdown(self, timeout_s: float | None = None) -> None:
        """Stop within `timeout_s` whatever clients do: they get all of it but the last
        quarter (at most `_FINAL_FLUSH_TIMEOUT_S`), which is kept for the usage flush."""
        timeout_s = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        flush_s = min(_FINAL_FLUSH_TIMEOUT_S, timeout_s / 4)
        metrics.GAUGE_SOURCES.discard(self.metric_gauges)
        for server in [*self.servers, *self.http_servers]:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._fair_timer is not None:
            self._fair_timer.cancel()
        if (
            self.live is not None
        ):  # its LISTEN connection and key refreshes, within the drain's time
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline - flush_s):
                    await self.live.close()
        self._all_gone.clear()
        for client in list(self.clients):
            client.stop()
        http = (
            loop.create_task(self.http.shutdown(max(0.0, deadline - flush_s - loop.time())))
            if self.http is not None
            else None
        )
        if self.clients:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), deadline - flush_s - loop.time())
        if http is not None:  # HTTP requests in progress get the same time
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(http, max(0.0, deadline - flush_s - loop.time()) + 0.1)
        for client in list(self.clients):
            self.usage.harvest(client)  # nothing counted is lost on SIGTERM
            client.abort()
        for caller in list(self.callers):
            caller.close()  # its usage is harvested as it closes
        await asyncio.sleep(0)
        self.pools.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(max(deadline, loop.time() + 0.1)):
                await self.usage.close()
        for server in [*self.servers, *self.http_servers]:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        path = self.settings.proxy_unix_socket
        if path is not None and self._unix_inode is not None:
            _remove_socket_file(path, self._unix_inode)


class _Connections:
    """Every connection using a key, RESP clients and other callers alike (a live view)."""

    def __init__(self, clients: set[ClientConnection], callers: set[Caller]) -> None:
        self.clients, self.callers = clients, callers

    def __iter__(self) -> Iterator[ClientConnection | Caller]:
        return itertools.chain(self.clients, self.callers)


def _fix_mmap_threshold() -> None:
    """Have glibc serve every allocation of 1 MiB or more with its own mapping, returned to
    the OS when freed. By default the threshold rises to the largest block freed (up to
    32 MiB), after which a client's multi-megabyte request buffers come from the heap and
    their pages stay: measured, eight 12 MB buffers freed left RSS at 120 MB instead of
    28 MB, round after round (docs/security.md). Not lower: at 256 KiB, uvloop's full
    256 KiB reads became an mmap/munmap pair each, and GET of 100 KB values ran at half
    speed. A no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)
    except (OSError, AttributeError):
        pass


def _remove_socket_file(path: Path, inode: int | None = None) -> None:
    """Remove a Unix socket file; with `inode`, only if it is still that file (a successor
    that took the path over in a rolling restart keeps its socket)."""
    with contextlib.suppress(FileNotFoundError):
        if inode is None or path.stat().st_ino == inode:
            path.unlink()


async def serve(settings: Settings) -> int:
    """Run a gateway until SIGINT/SIGTERM (`redisgate proxy`), with the key source the
    settings name (`sources.open_source`)."""
    async with open_source(settings) as source:
        gateway = Gateway(settings, source)
        await gateway.start()
        endpoint = await _start_metrics(settings, gateway)
        with StopSignals() as signals:
            await signals.first.wait()
            await drain(gateway, signals)
        if endpoint is not None:
            await endpoint.close()
    return 0


async def _start_metrics(settings: Settings, gateway: Gateway) -> MetricsEndpoint | None:
    try:
        return await MetricsEndpoint.start(settings)
    except BaseException:
        await gateway.shutdown(timeout_s=0)
        raise


async def drain(gateway: Gateway, signals: StopSignals) -> None:
    """Graceful shutdown, cut short by a second signal."""
    loop = asyncio.get_running_loop()
    shutdown = loop.create_task(gateway.shutdown())
    forced = loop.create_task(signals.second.wait())
    await asyncio.wait({shutdown, forced}, return_when=asyncio.FIRST_COMPLETED)
    forced.cancel()
    if not shutdown.done():
        shutdown.cancel()
        await gateway.shutdown(timeout_s=0)
