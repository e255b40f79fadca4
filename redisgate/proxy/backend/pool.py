"""Per-instance upstream connections: a few shared ones, and dedicated ones lent to clients.

Shared connections are opened lazily, when the first command needs one. When a connection
fails, the pool marks the instance down for a backoff period (doubling from
`_BACKOFF_MIN_S` up to `_BACKOFF_MAX_S`): commands in that window fail at once with a
`-BACKEND` error instead of piling up, and the first command after it tries again. So a
backend that comes back is used again without anyone restarting the gateway.

A watchdog (once a second) fails a shared connection whose oldest request has seen no reply
for `timeout_s`: its FIFO can no longer be trusted to pair replies with requests.

Dedicated connections (transactions, subscriptions, blocking commands, RESP3 push) are lent
to one client at a time and come back only when the client's session says the connection is
clean; a few idle ones are kept for reuse.

Key user connections carry the scripts of keys limited to patterns, authenticated as each
key's own backend ACL user (`key_users.KeyUsers`, which this pool owns); the watchdog, the
fair-share hold and closing cover them as they cover the shared ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import hiredis

from redisgate.backends import Backend
from redisgate.errors import UpstreamUnavailable
from redisgate.proxy.backend import key_user_rules
from redisgate.proxy.backend.key_users import KeyUsers
from redisgate.proxy.backend.upstream import (
    DedicatedOwner,
    PendingRequest,
    State,
    TrafficMeter,
    UpstreamConnection,
)
from redisgate.proxy.commands.table import CommandTable, normalize
from redisgate.proxy.keys.principals import Instance, Principal
from redisgate.proxy.wire.encode import encode_command, encode_error
from redisgate.proxy.wire.replies import is_error

_BACKOFF_MIN_S = 0.1
_BACKOFF_MAX_S = 5.0
_WATCHDOG_INTERVAL_S = 1.0


class InstancePool:
    """The upstream connections of one instance."""

    def __init__(
        self,
        instance: Instance,
        *,
        shared_connections: int = 1,
        connect_timeout_s: float = 5.0,
        timeout_s: float = 30.0,
        max_idle_dedicated: int = 8,
        max_inflight_commands: int = 0,
        max_inflight_bytes: int = 0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.instance = instance
        self.backend: Backend = instance.backend
        self.shared_connections = shared_connections
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.max_idle_dedicated = max_idle_dedicated
        self.max_inflight_commands = max_inflight_commands
        self.max_inflight_bytes = max_inflight_bytes
        self.meter = TrafficMeter()  # bytes moved by this instance's clients and connections
        self.throttled = False
        self._loop = asyncio.get_running_loop()
        self._clock = clock or self._loop.time
        # Shared connections by protocol, then by slot (`_slot`): a client always uses the
        # connection of its slot, so Redis runs its commands in the order it sent them.
        self._shared: dict[int, dict[int, UpstreamConnection]] = {2: {}, 3: {}}
        self._idle_dedicated: dict[int, list[UpstreamConnection]] = {2: [], 3: []}
        self._lent: set[UpstreamConnection] = set()
        self._down_until = 0.0
        self._backoff = _BACKOFF_MIN_S
        self.last_error = ""
        self._progress: dict[UpstreamConnection, tuple[int, float]] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[None]] = set()
        self.closed = False
        self.key_users = KeyUsers(self, self._clock)

    @property
    def dedicated_in_use(self) -> int:
        """Dedicated connections lent to clients right now."""
        return len(self._lent)

    def connection_counts(self) -> dict[str, int]:
        """Open connections by kind, for the metrics gauges (read at scrape time)."""
        return {
            "shared": sum(len(c) for c in self._shared.values()),
            "dedicated": len(self._lent),
            "idle": sum(len(c) for c in self._idle_dedicated.values()),
            "key_user": sum(1 for _ in self.key_users.connections()),
        }

    def __repr__(self) -> str:
        shared = sum(len(c) for c in self._shared.values())
        idle = sum(len(c) for c in self._idle_dedicated.values())
        return (
            f"<InstancePool {self.instance.name} [{shared} shared, {self.dedicated_in_use} "
            f"dedicated, {idle} idle]>"
        )

    # --- Shared connections -----------------------------------------------------------------

    def send_script(
        self,
        request: PendingRequest,
        raw: bytes,
        principal: Principal,
        table: CommandTable,
        protocol: int,
    ) -> Coroutine[Any, Any, None] | None:
        """Send a script as its key's backend ACL user (`key_users`): at once when that user's
        connection is ready (None), else the coroutine that sets it up and sends it, for the
        caller to run."""
        rules = key_user_rules.user_rules(principal.scope, table, self.backend.db)
        conn = self.key_users.ready(principal.key_id, rules, protocol)
        if conn is not None:
            conn.send(request, raw)
            return None
        return self.key_users.send_when_ready(request, raw, principal.key_id, rules, protocol)

    def send(self, request: PendingRequest, raw: bytes, protocol: int) -> None:
        """Send one command on a shared connection (or fail it at once if the backend is down).

        Every request of one owner (a client) goes to the same connection: Redis keeps the
        order of one connection's commands, not across connections, so a client's SET and
        the GET after it must not be spread over two."""
        slot = 0 if self.shared_connections == 1 else _slot(request.owner, self.shared_connections)
        conn = self._shared[protocol].get(slot)
        if conn is None:
            conn = self._open_shared(protocol, slot)
            if conn is None:
                request.fail(self.down_reply())
                return
        conn.send(request, raw)

    def _open_shared(self, protocol: int, slot: int) -> UpstreamConnection | None:
        if self.closed or self._clock() < self._down_until:
            return None
        conn = self._new_connection(protocol, self._shared_closed)
        conn.set_window(self.max_inflight_commands, self.max_inflight_bytes)
        self._shared[protocol][slot] = conn
        self._start_watchdog()
        return conn

    def _shared_closed(self, conn: UpstreamConnection) -> None:
        slots = self._shared[conn.protocol]
        for slot, held in list(slots.items()):
            if held is conn:
                del slots[slot]
        self._progress.pop(conn, None)
        self._note_failure(conn)

    # --- Dedicated connections --------------------------------------------------------------

    async def acquire_dedicated(self, protocol: int, owner: DedicatedOwner) -> UpstreamConnection:
        """A connection for `owner` alone; raises UpstreamUnavailable when it cannot be had."""
        if self.closed or self._clock() < self._down_until:
            raise UpstreamUnavailable(self.down_message())
        idle = self._idle_dedicated[protocol]
        while idle:
            conn = idle.pop()
            if conn.state is State.READY:
                conn.owner = owner
                self._lent.add(conn)
                return conn
        conn = self._new_connection(protocol, self._dedicated_closed, connect=False)
        self._lent.add(conn)
        await conn.connect(self.connect_timeout_s, self._ssl_context())
        if conn.state is State.CLOSED:  # never connected: the owner has lost nothing
            raise UpstreamUnavailable(
                f"instance {self.instance.name!r} is unavailable: {conn.close_reason}"
            )
        conn.owner = owner  # from here on, its failure is the owner's
        return conn

    def release_dedicated(self, conn: UpstreamConnection, clean: bool) -> None:
        """Take a dedicated connection back: kept for reuse if clean, else closed."""
        if conn not in self._lent:
            return  # already failed and forgotten
        self._lent.discard(conn)
        conn.owner = None
        idle = self._idle_dedicated[conn.protocol]
        if (
            clean
            and conn.state is State.READY
            and conn.idle
            and not self.closed
            and (len(idle) < self.max_idle_dedicated)
        ):
            idle.append(conn)
        else:
            conn.on_closed = None
            conn.close("returned to the pool in an unknown state")

    def _dedicated_closed(self, conn: UpstreamConnection) -> None:
        self._lent.discard(conn)
        idle = self._idle_dedicated[conn.protocol]
        if conn in idle:
            idle.remove(conn)
        self._note_failure(conn)

    # --- Key user connections (KeyUsers' InstanceLink) ------------------------------------

    def user_connection(
        self, backend: Backend, protocol: int, on_closed: Callable[[UpstreamConnection], None]
    ) -> UpstreamConnection:
        """A new connection (not connected yet) authenticating as `backend`'s user: a key
        user's, windowed and watched like a shared one."""
        conn = UpstreamConnection(backend, protocol, on_closed=on_closed)
        conn.label = self.instance.name
        conn.meter = self.meter
        conn.set_window(self.max_inflight_commands, self.max_inflight_bytes)
        if self.throttled:
            conn.set_throttled(True)
        self._start_watchdog()
        return conn

    async def open(self, conn: UpstreamConnection) -> None:
        await conn.connect(self.connect_timeout_s, self._ssl_context())

    # --- Fair share -------------------------------------------------------------------------

    def set_throttled(self, throttled: bool) -> None:
        """Hold this instance's upstream connections (not reading their replies) while it
        takes more than its share of an overloaded gateway (`Gateway._share_fairly`)."""
        self.throttled = throttled
        for conns in (
            *(list(slots.values()) for slots in self._shared.values()),
            *self._idle_dedicated.values(),
            self._lent,
            list(self.key_users.connections()),
        ):
            for conn in conns:
                conn.set_throttled(throttled)

    # --- Command metadata -------------------------------------------------------------------

    async def fetch_command_table(
        self, known: dict[bytes, CommandTable] | None = None
    ) -> CommandTable:
        """This backend's own COMMAND INFO and COMMAND DOCS, as a command table.

        `known` maps digests of earlier replies to their tables: a backend that describes its
        commands exactly like another (same version, same modules) gets that table, so
        a gateway in front of many instances builds, and binds scopes to, one table per
        version rather than one per instance. Raises UpstreamUnavailable if the backend cannot
        be asked (the caller falls back to the table shipped with RedisGate).
        """
        if self.closed or self._clock() < self._down_until:
            raise UpstreamUnavailable(self.down_message())
        conn = UpstreamConnection(self.backend, 2)
        info, docs = _Reply(self._loop), _Reply(self._loop)
        conn.send(PendingRequest(info), encode_command(["COMMAND", "INFO"]))
        conn.send(PendingRequest(docs), encode_command(["COMMAND", "DOCS"]))
        try:
            await conn.connect(self.connect_timeout_s, self._ssl_context())
            async with asyncio.timeout(self.timeout_s):
                info_reply, docs_reply = await info.future, await docs.future
        except TimeoutError:
            raise UpstreamUnavailable("COMMAND INFO timed out") from None
        finally:
            conn.close()
        if is_error(info_reply) or is_error(docs_reply):
            raise UpstreamUnavailable(conn.close_reason or "COMMAND INFO failed")
        version = _hello_version(conn.hello_reply)
        commands = normalize(_parse(info_reply), _parse(docs_reply))
        # Redis lists commands in hash-table order, which differs between processes: compare
        # the normalised (sorted) form.
        digest = hashlib.sha256(json.dumps([version, commands]).encode()).digest()
        if known is not None and digest in known:
            return known[digest]
        table = CommandTable(commands, version)
        if known is not None:
            known[digest] = table
        return table

    # --- Connections, failures and backoff --------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context() if self.backend.tls else None

    def _new_connection(
        self, protocol: int, on_closed: Callable[[UpstreamConnection], None], connect: bool = True
    ) -> UpstreamConnection:
        conn = UpstreamConnection(self.backend, protocol, on_closed=on_closed)
        conn.label = self.instance.name
        conn.meter = self.meter
        if self.throttled:
            conn.set_throttled(True)
        conn.on_ready = self._connection_ready
        if connect:
            task = self._loop.create_task(conn.connect(self.connect_timeout_s, self._ssl_context()))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)
        return conn

    def _connection_ready(self, conn: UpstreamConnection) -> None:
        self._backoff = _BACKOFF_MIN_S
        self._down_until = 0.0

    def _note_failure(self, conn: UpstreamConnection) -> None:
        if self.closed or conn.closed_on_purpose:
            return
        if conn.handshake_done and conn.dropped:
            return  # a working connection dropped: reconnect at once on the next command
        self.last_error = conn.close_reason
        self._down_until = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)

    def down_message(self) -> str:
        return (
            f"instance {self.instance.name!r} is unavailable: "
            f"{self.last_error or 'no connection'} (retrying)"
        )

    def down_reply(self) -> bytes:
        return encode_error("BACKEND", self.down_message())

    # --- Watchdog ---------------------------------------------------------------------------

    def _start_watchdog(self) -> None:
        if self._watchdog is None and not self.closed:
            self._watchdog = self._loop.call_later(_WATCHDOG_INTERVAL_S, self._check_progress)

    def _check_progress(self) -> None:
        self._watchdog = None
        now = self._clock()
        shared = [conn for slots in self._shared.values() for conn in slots.values()]
        for conns in (shared, list(self.key_users.connections())):
            for conn in list(conns):
                if not conn.fifo:
                    self._progress.pop(conn, None)
                    continue
                replies, since = self._progress.get(conn, (-1, now))
                if replies != conn.replies:
                    self._progress[conn] = (conn.replies, now)
                elif now - since >= self.timeout_s:
                    conn.fail(f"no reply from the instance's Redis within {self.timeout_s:g}s")
        live = set(self.key_users.connections())
        for conn in [c for c in self._progress if c not in live and c.state is State.CLOSED]:
            del self._progress[conn]
        if any(self._shared.values()) or live:
            self._start_watchdog()

    # --- Closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection the pool holds (lent dedicated ones close with their clients)."""
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for slots in self._shared.values():
            for conn in list(slots.values()):
                conn.close()
            slots.clear()
        for conns in self._idle_dedicated.values():
            for conn in list(conns):
                conn.close()
            conns.clear()
        for task in self._connecting:
            task.cancel()
        self.key_users.close()


def _slot(owner: object, slots: int) -> int:
    """The shared connection slot of a request's owner: fixed for the owner's lifetime, and
    spread evenly however its address is aligned (Fibonacci hashing of its identity)."""
    return ((hash(owner) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) * slots >> 64


class _Reply:
    """Collects one reply (a ReplyOwner for requests the pool makes itself)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[bytes] = loop.create_future()

    def reply_progress(self, request: PendingRequest) -> None:
        pass

    def reply_ready(self, request: PendingRequest) -> None:
        if not self.future.done() and request.reply is not None:
            self.future.set_result(request.reply)


def _parse(frame: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(frame)
    return reader.gets()


def _hello_version(hello_reply: bytes | None) -> str:
    """The `version` field of a RESP2 HELLO reply (a flat key/value array)."""
    if hello_reply is None:
        return ""
    fields = _parse(hello_reply)
    if not isinstance(fields, list):
        return ""
    pairs = dict(zip(fields[::2], fields[1::2], strict=False))
    version = pairs.get(b"version", b"")
    return version.decode() if isinstance(version, bytes) else ""


class PoolRegistry:
    """One InstancePool per instance (and backend), created on first use."""

    def __init__(self, factory: Callable[[Instance], InstancePool]) -> None:
        self._factory = factory
        self._pools: dict[tuple[str, Backend], InstancePool] = {}

    def get(self, instance: Instance) -> InstancePool:
        key = (instance.id, instance.backend)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._factory(instance)
        return pool

    def __iter__(self) -> Iterator[InstancePool]:
        return iter(list(self._pools.values()))

    def discard(self, instance_id: str) -> None:
        """Close and forget the pools of an instance that is gone (its clients closed first)."""
        for key in [k for k in self._pools if k[0] == instance_id]:
            self._pools.pop(key).close()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
