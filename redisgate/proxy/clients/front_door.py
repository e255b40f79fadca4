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
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from redisgate import metrics
from redisgate.errors import RemoteProtocolError
from redisgate.proxy.backend.pool import InstancePool
from redisgate.proxy.backend.upstream import PendingRequest
from redisgate.proxy.clients.decisions import (
    Answer,
    Authenticate,
    Decision,
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

log = logging.getLogger(__name__)

REPLY_NOT_HERE = encode_error(
    "ERR", "this command is not available here: authenticate with the request's key"
)
REPLY_CLOSED = encode_error("ERR", "this caller is closed")
REPLY_ENDED = encode_error(
    "ERR", "the request ended before its reply: its key changed or the gateway is stopping"
)


class CallerHost(KeyHost, Protocol):
    """What a caller needs of the gateway, besides what its key binding needs."""

    @property
    def settings(self) -> Settings: ...
    @property
    def table(self) -> CommandTable: ...
    @property
    def server_version(self) -> str: ...
    @property
    def callers(self) -> set[Caller]: ...
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
        # Frames that answer no command (pub/sub messages), until `take_pushes`; more than
        # max_client_output_bytes of them (a reader too slow) closes the caller.
        self.pushes: list[bytes] = []
        self.pushed_bytes = 0
        self.pushed = asyncio.Event()
        self.streaming = False  # its pushes are streamed to a client (server-sent events)
        self.usage = UsageCounters()
        self.link = DedicatedLink(self)
        self.binding = KeyBinding(self)
        self._waiting: dict[PendingRequest, asyncio.Future[bytes]] = {}
        self._answered: list[bytes] = []  # what the dedicated link answered itself

    def __repr__(self) -> str:
        session = self.session
        return f"<Caller {session.client_id if session else '-'} {self.peer_host}>"

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
        reply = await self._wait(request, work=self.binding.authenticate(decision.request, request))
        if self.principal is not None and not self.closed:
            self.gateway.callers.add(self)  # key changes and expiry reach it (`apply_principal`)
        return reply

    def take_pushes(self) -> list[bytes]:
        """The frames pushed since the last call, oldest first."""
        pushes, self.pushes, self.pushed_bytes = self.pushes, [], 0
        self.pushed.clear()
        return pushes

    def apply_principal(self, principal: Principal | None) -> None:
        """The key changed while this caller used it (`KeyBinding.apply`; None closes it)."""
        self.binding.apply(principal)

    async def call(self, args: Sequence[bytes]) -> bytes:
        """Run one command; its reply as RESP bytes (b"" for one answered by pushes)."""
        return (await self.call_all([args]))[0]

    async def call_all(self, commands: Sequence[Sequence[bytes]]) -> list[bytes]:
        """Run commands in order, as one pipeline of a RESP client: a run of commands for the
        shared connection is sent whole before their replies are awaited (one round trip),
        and any other command waits for the replies before it, as on a RESP connection."""
        session = self._session()
        replies: list[bytes | asyncio.Future[bytes]] = []
        answered = 0  # replies before this index are all bytes
        for args in commands:
            decided = self._decide(session, args)
            if isinstance(decided, bytes):
                replies.append(decided)
                continue
            command, decision = decided
            if isinstance(decision, Forward):
                assert self.pool is not None
                request = PendingRequest(self, None, decision.transform, 1, [command.args[0]])
                replies.append(self._expect(request))
                raw = command.raw if decision.raw is None else decision.raw
                self._forward(request, raw, decision)
                continue
            for i in range(answered, len(replies)):  # everything before it is answered first
                reply = replies[i]
                if not isinstance(reply, bytes):
                    replies[i] = await reply
            replies.append(await self._carry_out(session, command, decision))
            answered = len(replies)
        session.settle()  # the batch is one read: give back what the rate let run ahead
        return [reply if isinstance(reply, bytes) else await reply for reply in replies]

    def _decide(self, session: Session, args: Sequence[bytes]) -> bytes | tuple[Command, Decision]:
        """Frame and decide one command: the decision, or the reply of one refused before it."""
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
        self.usage.commands += 1
        self.usage.bytes_in += len(command.raw)
        return command, decision

    async def _carry_out(self, session: Session, command: Command, decision: Decision) -> bytes:
        """Any decision but a shared-connection `Forward`: its reply."""
        name = command.args[0]
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
        assert not isinstance(decision, Forward)
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
        self.gateway.callers.discard(self)
        self.pushed.set()  # a stream waiting for pushes ends
        for future in self._waiting.values():
            if not future.done():
                future.set_result(REPLY_ENDED)
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

    def _expect(self, request: PendingRequest) -> asyncio.Future[bytes]:
        """A future `reply_ready` completes with `request`'s reply."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
        return future

    async def _wait(
        self, request: PendingRequest, *, work: Coroutine[Any, Any, None] | None = None
    ) -> bytes:
        """The reply to `request`, once `reply_ready` has it (`work` sends it)."""
        future = self._expect(request)
        if work is not None:
            await work
        return await future

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
        future = self._waiting.pop(request, None)
        if future is not None and not future.done():
            future.set_result(reply)

    def reply_progress(self, request: PendingRequest) -> None:
        pass  # a caller's request is one command: its reply comes whole

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        self.pushes.append(data)
        self.pushed_bytes += len(data)
        self.pushed.set()
        if self.pushed_bytes > self.settings.max_client_output_bytes:
            log.info("%r: its pushes outgrew max_client_output_bytes unread; closing", self)
            self.close()

    def local_reply(self, reply: bytes) -> None:
        self._answered.append(reply)

    def finish_with(self, reply: bytes) -> None:
        self.write(reply)
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
