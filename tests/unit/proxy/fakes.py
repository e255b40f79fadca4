"""Fakes for driving the data plane's I/O classes with no sockets and no Redis.

- `FakeTransport` stands in for an asyncio transport: it records what the protocol writes and
  what it asks of the transport (close, abort, half-close, pause/resume reading), and tells the
  protocol `connection_lost` on the next loop turn after a close or abort, as asyncio does.
- `FakeNetwork` replaces a running loop's `create_connection`: each connection the code opens
  gets a `FakeTransport`, and the test plays the backing Redis through a `FakeRedisSide`
  (what was written to it, parsed; replies fed back with `data_received`).
- `FakeGateway` is the smallest gateway a `ClientConnection` can live in (the `ClientHost`
  Protocol): a real `Authenticator` over a dict of keys, real limits and throttle, and a
  real `PoolRegistry` whose connections go through a `FakeNetwork`, a real `UsageRecorder`
  (the dict of keys records nothing, like a keys file), and the shipped command table for
  every backend (`ShippedTables`).

Everything runs on a real event loop (pytest-asyncio) because the I/O classes schedule their
flushes with `call_soon`; `turns()` lets those callbacks run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine
from datetime import date
from typing import Any

import hiredis
import pytest

from redisgate import api_key_format
from redisgate.backends import Backend
from redisgate.config import Settings
from redisgate.limits import default_limits
from redisgate.proxy.backend.command_tables import CommandTables
from redisgate.proxy.backend.pool import InstancePool, PoolRegistry
from redisgate.proxy.backend.upstream import (
    PendingRequest,
    UpstreamConnection,
    handshake_commands,
)
from redisgate.proxy.clients.connection import ClientConnection, ClientHost
from redisgate.proxy.clients.dedicated import DedicatedPeer
from redisgate.proxy.clients.usage_recorder import UsageRecorder
from redisgate.proxy.commands.peers import PeerInfo
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.keys.principals import Authenticator, Instance, KeyRecord, Principal
from redisgate.proxy.policy.rates import LimitRegistry
from redisgate.proxy.policy.throttle import AuthThrottle
from redisgate.store.usage import UsageRow

TABLE = CommandTable.from_snapshot()  # read once per test process (about 10 ms)


async def turns(n: int = 4) -> None:
    """Let callbacks scheduled with `call_soon` (flushes, connection_lost, tasks) run."""
    for _ in range(n):
        await asyncio.sleep(0)


def wire(*args: bytes | str | int) -> bytes:
    """A command as a client library sends it (an array of bulk strings)."""
    items = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in items)


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def parse_commands(data: bytes) -> list[list[bytes]]:
    """Commands (arrays of bulk strings) in `data`, in order; all of it must be complete."""
    reader = hiredis.Reader()
    reader.feed(data)
    commands: list[list[bytes]] = []
    while (item := reader.gets()) is not False:
        assert isinstance(item, list), item
        commands.append(item)
    assert not reader.has_data(), "a command written in part"
    return commands


def hello_reply(*, protocol: int = 2, client_id: int = 7) -> bytes:
    """Redis 7's HELLO reply: a flat array under RESP2, a map under RESP3."""
    head = b"%7\r\n" if protocol == 3 else b"*14\r\n"
    return head + (
        b"$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
        b"$5\r\nproto\r\n:%d\r\n$2\r\nid\r\n:%d\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
        b"$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n" % (protocol, client_id)
    )


class FakeTransport:
    """An asyncio transport that records everything asked of it.

    `writes` holds each `write` call's bytes (so a test can count writes, not just bytes; a
    `writelines` call is one, its pieces kept in `vectors`);
    `closed` is set by `close` and `abort` (`aborted` by `abort` only); `eof_written` by
    `write_eof` (a write after it raises, as asyncio's does); `read_paused` follows
    `pause_reading`/`resume_reading`, which are idempotent and counted. `buffer_size` is what
    `get_write_buffer_size` reports (a test sets it to play a slow reader). Once closed, the
    attached protocol's `connection_lost(None)` runs on the next loop turn, once.
    """

    def __init__(
        self,
        peername: object = ("203.0.113.9", 50000),
        sockname: object = ("127.0.0.1", 6380),
        *,
        can_eof: bool = True,
    ) -> None:
        self.writes: list[bytes] = []
        self.vectors: list[list[bytes]] = []  # the pieces of each `writelines` call
        self.closed = False
        self.aborted = False
        self.eof_written = False
        self.read_paused = False
        self.pauses = 0  # pause_reading calls that paused (not the repeated ones)
        self.resumes = 0
        self.buffer_size = 0
        self.lost = False  # connection_lost was delivered
        self.protocol: asyncio.BaseProtocol | None = None
        self._extra = {"peername": peername, "sockname": sockname}
        self._can_eof = can_eof

    def attach(self, protocol: asyncio.BaseProtocol) -> None:
        """As the loop does for a new connection: `connection_made(self)`."""
        self.protocol = protocol
        protocol.connection_made(self)  # type: ignore[arg-type]

    @property
    def written(self) -> bytes:
        return b"".join(self.writes)

    def take(self) -> bytes:
        """Everything written since the last `take`."""
        data = self.written
        self.writes.clear()
        return data

    # --- The network's side --------------------------------------------------------------

    def drop(self, exc: Exception | None = None) -> None:
        """The peer or the network closed the connection: `connection_lost(exc)` now."""
        self.closed = True
        self._lose(exc)

    def _lose(self, exc: Exception | None) -> None:
        if self.lost or self.protocol is None:
            return
        self.lost = True
        self.protocol.connection_lost(exc)

    def _schedule_lost(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_soon(self._lose, None)

    # --- asyncio.Transport interface ------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        self.writes.append(bytes(data))

    def writelines(self, lines: list[bytes]) -> None:
        """One call, one write (a writev), as uvloop does it; `vectors` keeps its pieces."""
        self.vectors.append(list(lines))
        self.write(b"".join(lines))

    def write_eof(self) -> None:
        self.eof_written = True

    def can_write_eof(self) -> bool:
        return self._can_eof

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._schedule_lost()

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.pauses += 1

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.resumes += 1

    def is_reading(self) -> bool:
        return not self.read_paused and not self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return self.buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16 * 1024, 64 * 1024)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_protocol(self) -> asyncio.BaseProtocol | None:
        return self.protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


class FakeRedisSide:
    """The backing Redis's end of one upstream connection, played by the test."""

    def __init__(self, protocol: UpstreamConnection, transport: FakeTransport) -> None:
        self.protocol = protocol
        self.transport = transport
        self._read = 0  # bytes of `transport.written` already parsed by `commands()`

    def commands(self) -> list[list[bytes]]:
        """Commands written to this connection since the last call."""
        data = self.transport.written
        new, self._read = data[self._read :], len(data)
        return parse_commands(new)

    def reply(self, data: bytes) -> None:
        """Redis answers: the bytes arrive as one read."""
        self.protocol.data_received(data)

    def handshake(self, client_id: int = 7) -> None:
        """Answer the handshake the connection sent (HELLO, and SELECT if it asked); unless
        `commands()` returned them already, it will not return the handshake's commands."""
        conn = self.protocol
        steps = handshake_commands(conn.backend, conn.protocol)
        size = sum(len(raw) for _, raw in steps)
        assert self.transport.written[:size] == b"".join(raw for _, raw in steps)
        self._read = max(self._read, size)
        for what, _ in steps:
            if what == "HELLO":
                self.reply(hello_reply(protocol=conn.protocol, client_id=client_id))
            else:
                self.reply(b"+OK\r\n")


class FakeNetwork:
    """Stands in for a running loop's `create_connection`: every connection opened gets a
    `FakeTransport`. `refuse` makes attempts fail with that OSError; `hang` makes them wait
    (until their timeout cancels them)."""

    def __init__(self) -> None:
        self.redis: list[FakeRedisSide] = []  # one per connection made, in order
        self.attempts: list[tuple[str, int]] = []
        self.refuse: OSError | None = None
        self.hang = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
        monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", self.create_connection)
        return self

    async def create_connection(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        **kwargs: Any,
    ) -> tuple[FakeTransport, asyncio.BaseProtocol]:
        assert host is not None and port is not None
        self.attempts.append((host, port))
        if self.refuse is not None:
            raise self.refuse
        if self.hang:
            await asyncio.Event().wait()
        protocol = protocol_factory()
        assert isinstance(protocol, UpstreamConnection)
        transport = FakeTransport(peername=(host, port), sockname=("127.0.0.1", 40000))
        transport.attach(protocol)
        self.redis.append(FakeRedisSide(protocol, transport))
        return transport, protocol


class Recorder:
    """A ReplyOwner (and DedicatedOwner) that keeps what it is given, in order."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.replies: list[bytes] = []
        self.progress: list[bytes] = []  # parts taken early, joined (reply streaming)
        self.frames: list[bytes] = []  # a dedicated connection's frames
        self.lost: list[str] = []

    @property
    def received(self) -> bytes:
        """Every reply byte handed over, early (`progress`) or at completion (`replies`)."""
        return b"".join(self.progress) + b"".join(self.replies)

    def request(self, count: int = 1) -> PendingRequest:
        return PendingRequest(self, count=count)

    def reply_ready(self, request: PendingRequest) -> None:
        assert request.reply is not None
        self.replies.append(request.reply)

    def reply_progress(self, request: PendingRequest) -> None:
        self.progress.append(b"".join(request.parts))
        request.parts.clear()

    def upstream_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def upstream_lost(self, reason: str) -> None:
        self.lost.append(reason)


# --- Keys ---------------------------------------------------------------------------------


class DictKeys:
    """A key source over a dict: one key per `add`, looked up by id."""

    fleet_wide = False
    negative_ttl_s = 5.0

    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}

    def add(self, instance: Instance, name: str = "key") -> api_key_format.MintedKey:
        key = api_key_format.mint()
        principal = Principal(key_id=key.key_id, key_name=name, instance=instance)
        self.records[key.key_id] = KeyRecord(key.key_id, key.digest, principal)
        return key

    async def get_key(self, key_id: str) -> KeyRecord | None:
        return self.records.get(key_id)

    # Like a keys file: nothing to reload, nothing recorded, zero used today.
    def maybe_reload(self, now: float) -> bool:
        return False

    async def record_use(self, key_ids: Collection[str]) -> bool:
        return True

    async def record_usage(self, gateway_id: str, seq: int, rows: list[UsageRow]) -> bool:
        return True

    async def day_totals(
        self, day: date, key_ids: list[str], instance_ids: list[str]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        return {}


class ShippedTables(CommandTables):
    """Every backend's command table is the shipped one (fake backends answer no COMMAND)."""

    async def get(self, pool: InstancePool) -> CommandTable:
        return self.shipped


def instance(name: str = "cache", **backend: Any) -> Instance:
    return Instance(id=name, name=name, backend=Backend(host="10.0.0.5", port=6379, **backend))


# --- Gateway ------------------------------------------------------------------------------


class FakeGateway:
    """The `ClientHost` a ClientConnection needs, and nothing more: real authentication,
    limits and pools (over a FakeNetwork), the shipped command table, a plain client set."""

    def __init__(self, network: FakeNetwork, settings: Settings | None = None) -> None:
        self.network = network
        self.settings = settings or Settings()
        self.table = TABLE
        self.server_version = "7.0.0"
        self.keys = DictKeys()
        self.authenticator = Authenticator(self.keys)
        self.throttle = AuthThrottle()
        self.limits = LimitRegistry(default_limits(self.settings))
        self.tables = ShippedTables(self.table)
        self.usage = UsageRecorder(self.keys, self.authenticator, self.limits.quotas)
        self.pools = PoolRegistry(self._new_pool)
        self.clients: dict[int, ClientConnection] = {}
        self.forgotten: list[ClientConnection] = []
        self.request_bytes = 0
        self.reply_bytes = 0
        self._next_id = 0
        self._background: set[asyncio.Task[None]] = set()

    def _new_pool(self, inst: Instance) -> InstancePool:
        s = self.settings
        return InstancePool(
            inst,
            shared_connections=s.upstream_connections,
            max_inflight_commands=s.upstream_max_inflight_commands,
            max_inflight_bytes=s.upstream_max_inflight_bytes,
        )

    def connect(self, peer: tuple[str, int] = ("203.0.113.9", 50000)) -> FakeTransport:
        """A client connects: a new ClientConnection on a new FakeTransport."""
        transport = FakeTransport(peername=peer)
        transport.attach(ClientConnection(self))
        return transport

    def close(self) -> None:
        self.pools.close()

    # ClientHost
    def next_client_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def admit(self, client: ClientConnection) -> bool:
        assert client.session is not None
        self.clients[client.session.client_id] = client
        return True

    def authenticated(self, client: ClientConnection) -> None:
        pass

    def forget(self, client: ClientConnection) -> None:
        self.forgotten.append(client)
        if client.session is not None:
            self.clients.pop(client.session.client_id, None)
            self.limits.release(client.session.client_id)

    def requests_held(self, delta: int) -> None:
        self.request_bytes += delta

    def replies_held(self, delta: int) -> None:
        self.reply_bytes += delta

    # PeerRegistry
    def peers(self, instance_id: str) -> list[PeerInfo]:
        found = []
        for client in self.clients.values():
            info = client.describe()
            if info is not None:
                found.append(info)
        return found

    def kill(self, client_id: int) -> None:
        client = self.clients.get(client_id)
        if client is not None:
            client.kill()

    # KeyHost
    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # DedicatedHost
    def client_by_id(self, client_id: int) -> DedicatedPeer | None:
        return self.clients.get(client_id)


def _is_client_host(gateway: FakeGateway) -> ClientHost:
    return gateway  # mypy checks that FakeGateway satisfies the Protocol
