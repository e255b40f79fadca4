"""The command path without a RESP connection: a second front door (`Caller`).

The HTTP command API (and any other front door) must run exactly what a RESP client runs: the
same key lookup and auth-failure throttle, the same scope check, rate limits, quotas and usage
counting, the same routing to a shared, dedicated or key-user connection of the same pools.
A `Caller` is that path for one caller: it is made of the same parts as a `ClientConnection`
(a `Session` deciding, a `KeyBinding` authenticating, a `DedicatedLink` holding a dedicated
connection through MULTI … EXEC, `UsageCounters`), and carries out the session's decisions
one command at a time, returning each reply's RESP bytes. What it does not have is a socket:
nothing is framed from a stream, and replies are handed back instead of written.

Commands are handed in as argument lists and framed by a `RequestFramer` with the key's
limits, so an oversized request gets the RESP port's own error. Commands that answer with
pushes rather than a reply (SUBSCRIBE and friends) return b"" and their frames collect in
`pushes`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from redisgate import metrics
from redisgate.errors import RemoteProtocolError
from redisgate.proxy.backend.pool import InstancePool
from redisgate.proxy.backend.upstream import PendingRequest
from redisgate.proxy.clients.decisions import (
    Answer,
    Authenticate,
    Forward,
    Pin,
    RunScript,
)
from redisgate.proxy.clients.dedicated import DedicatedLink
from redisgate.proxy.clients.key_binding import KeyBinding, KeyHost
from redisgate.proxy.clients.session import Session
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.keys.principals import Principal
from redisgate.proxy.policy.usage_meter import UsageCounters
from redisgate.proxy.wire.encode import encode_command, encode_error
from redisgate.proxy.wire.framing_limits import PRE_AUTH_LIMITS, REQUEST_TOO_BIG_PREFIX
from redisgate.proxy.wire.requests import Command, RequestFramer

if TYPE_CHECKING:
    from redisgate.config import Settings

REPLY_NOT_HERE = encode_error(
    "ERR", "this command is not available here: authenticate with the request's key"
)
REPLY_CLOSED = encode_error("ERR", "this caller is closed")


class CallerHost(KeyHost, Protocol):
    """What a caller needs of the gateway, besides what its key binding needs."""

    @property
    def settings(self) -> Settings: ...
    @property
    def table(self) -> CommandTable: ...
    @property
    def server_version(self) -> str: ...
    def next_client_id(self) -> int: ...


class Caller:
    """One caller of the gateway's command path that is not a RESP connection."""

    def __init__(self, gateway: CallerHost, peer: str, *, protocol: int = 2) -> None:
        self.gateway = gateway
        self.settings = gateway.settings
        self.peer_host = peer.rsplit(":", 1)[0]
        self.session: Session | None = Session(
            gateway.table,
            client_id=gateway.next_client_id(),
            peer=peer,
            clock=asyncio.get_running_loop().time,
            server_version=gateway.server_version,
        )
        self.session.protocol = protocol
        self.pool: InstancePool | None = None
        self.framer = RequestFramer(**PRE_AUTH_LIMITS)
        self.slots: deque[PendingRequest] = deque()
        self.inflight = 0
        self.closed = self.closing = False
        self.pushes: list[bytes] = []  # frames that answer no command (pub/sub messages)
        self.usage = UsageCounters()
        self.link = DedicatedLink(self)
        self.binding = KeyBinding(self)
        self._waiting: dict[PendingRequest, asyncio.Future[bytes]] = {}
        self._answered: list[bytes] = []  # what the dedicated link answered itself

    @property
    def principal(self) -> Principal | None:
        return self.session.principal if self.session is not None else None

    async def authenticate(self, token: bytes) -> bytes:
        """Present a key, as AUTH does: the reply (`+OK`, or AUTH's own errors)."""
        decision = self._session().handle(_command([b"AUTH", token]))
        if not isinstance(decision, Authenticate):  # a malformed AUTH is answered as such
            assert isinstance(decision, Answer)
            return decision.reply
        self.usage.commands += 1  # as on the RESP port (the key's use starts after it)
        request = PendingRequest(self, names=[b"auth"])
        return await self._wait(request, work=self.binding.authenticate(decision.request, request))

    async def call(self, args: Sequence[bytes]) -> bytes:
        """Run one command; its reply as RESP bytes (b"" for one answered by pushes)."""
        session = self._session()
        if self.closed:
            return REPLY_CLOSED
        self.framer.feed(encode_command(list(args)))
        try:
            command = self.framer.next_command()
        except RemoteProtocolError as exc:
            self.framer = _reframed(self.framer)
            if str(exc).startswith(REQUEST_TOO_BIG_PREFIX):
                metrics.LIMITED["max_request_bytes"] += 1
                self.usage.limited += 1
            return encode_error("ERR", str(exc))
        assert command is not None
        decision = session.handle(command)
        session.settle()  # each call is its own read: give back what the rate let run ahead
        self.usage.commands += 1
        self.usage.bytes_in += len(command.raw)
        name = command.args[0]
        if isinstance(decision, Forward):
            assert self.pool is not None
            request = PendingRequest(self, None, decision.transform, 1, [name])
            raw = command.raw if decision.raw is None else decision.raw
            return await self._wait(request, send=lambda: self._forward(request, raw, decision))
        if isinstance(decision, Pin):
            raw = command.raw if decision.raw is None else decision.raw
            before = len(self.slots)
            if self.link.conn is None:
                assert self.pool is not None
                await self.link.acquire(self.pool, command, raw, decision.transform)
            else:
                self.link.send(command, raw, decision.transform)
            if len(self.slots) == before:  # answered by pushes (SUBSCRIBE …), or refused
                return self._answered.pop() if self._answered else b""
            return await self._wait(self.slots[-1])
        if isinstance(decision, RunScript):
            return await self._script(name, decision.raw, session)
        if isinstance(decision, Authenticate):
            return REPLY_NOT_HERE
        metrics.count_local(name, decision.reply)
        self.usage.bytes_out += len(decision.reply)
        if not isinstance(decision, Answer):  # RESET, QUIT: this caller ends
            self.close()
        return decision.reply

    def close(self) -> None:
        """The caller is done: its dedicated connection goes back, its use is harvested and
        it leaves its key's limits."""
        if self.closed:
            return
        self.closed = self.closing = True
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()
        for slot in self.slots:
            slot.cancelled = True
        self.slots.clear()
        self.link.slots.clear()
        if self.link.conn is not None:
            self.link.release(clean=False)
        self.gateway.usage.harvest(self)
        if self.session is not None:
            self.gateway.limits.release(self.session.client_id)

    # --- Carrying out decisions -------------------------------------------------------------

    def _forward(self, request: PendingRequest, raw: bytes, decision: Forward) -> None:
        assert self.pool is not None
        self.slots.append(request)
        self.inflight += 1
        self.pool.send(request, raw, decision.protocol)

    async def _script(self, name: bytes, raw: bytes, session: Session) -> bytes:
        principal, pool = session.principal, self.pool
        assert principal is not None and pool is not None
        request = PendingRequest(self, None, None, 1, [name])
        self.slots.append(request)
        self.inflight += 1
        work = pool.send_script(request, raw, principal, session.table, session.protocol)
        return await self._wait(request, work=work)

    async def _wait(
        self,
        request: PendingRequest,
        *,
        send: Callable[[], None] | None = None,
        work: Coroutine[Any, Any, None] | None = None,
    ) -> bytes:
        """The reply to `request`, once `reply_ready` has it (`send` or `work` sends it)."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
        if send is not None:
            send()
        if work is not None:
            await work
        try:
            return await future
        finally:
            self._waiting.pop(request, None)

    def _session(self) -> Session:
        assert self.session is not None
        return self.session

    # --- What the parts need of their client (KeyClient, DedicatedClient, ReplyOwner) --------

    @property
    def eof(self) -> bool:
        return False

    def take_usage(self) -> tuple[Principal | None, tuple[int, int, int, int, int]]:
        session = self.session
        if session is None:
            return None, self.usage.take(0, 0)
        return session.principal, self.usage.take(session.denied, session.limited)

    def reply_ready(self, request: PendingRequest) -> None:
        if request in self.slots:
            self.slots.remove(request)
            self.inflight -= request.count
        reply = request.reply or b""
        self.usage.bytes_out += len(reply)
        future = self._waiting.get(request)
        if future is not None and not future.done():
            future.set_result(reply)

    def reply_progress(self, request: PendingRequest) -> None:
        pass  # a caller's request is one command: its reply comes whole

    def write(self, data: bytes) -> None:
        self.pushes.append(data)

    def local_reply(self, reply: bytes) -> None:
        self._answered.append(reply)

    def finish_with(self, reply: bytes) -> None:
        self.pushes.append(reply)
        self.close()

    def resume(self) -> None:
        pass  # one command at a time: nothing waits to be taken

    def shutdown(self) -> None:
        self.close()

    def abort(self) -> None:
        self.close()


def _command(args: list[bytes]) -> Command:
    framer = RequestFramer(**PRE_AUTH_LIMITS)
    framer.feed(encode_command(args))
    command = framer.next_command()
    assert command is not None
    return command


def _reframed(old: RequestFramer) -> RequestFramer:
    """A framer with `old`'s limits and nothing buffered (after a refused request)."""
    return RequestFramer(
        max_array_len=old.max_array_len,
        max_bulk_bytes=old.max_bulk_bytes,
        max_inline_bytes=old.max_inline_bytes,
        max_request_bytes=old.max_request_bytes,
        unauthenticated=old.unauthenticated,
    )
