"""One client connection: glues the session, the upstream pool and flow control together.

Theory of operation
-------------------
Bytes from the client go to the `RequestFramer`; each complete command goes to the `Session`,
whose decision this class carries out. Every reply the client is owed, forwarded or local,
takes a slot in `self.slots`, in command order; replies are written from the head while the
head is complete (Envoy's `onResponse`), in one write per batch (`writelines`: the replies are
not joined, so big ones are never copied on their way out).

The usual read has a shortcut (`_forward_read`): with nothing buffered before it and nothing
to wait for, a read of plain forwarded commands (one, or a pipeline) is taken by the framer as
one `Run` and sent, its tokens taken at once, without `_process`'s loop; the run's names pass
the same scope check as in `_process`. The one reply such a client is owed is written as soon
as it is in (`reply_ready`), not at the end of the turn.

Order across connections: a client's commands may run on a shared connection or on its
dedicated one. Before the first command goes to a dedicated connection, every command already
sent on a shared one must have been answered (and the dedicated connection is only given back
once it has nothing outstanding), so Redis executes the client's commands in the order sent.
While that is pending, or while AUTH is being checked, `_blocked` holds further commands in
the framer, unread by the session. A script of a key limited to patterns (`RunScript`) runs
on a connection of the key's backend ACL user (`key_users`): it waits for every command sent
before it to be answered, and the commands after it wait for its reply, in the same way.

Flow control: reading from the client stops while it has `max_pending_per_client` commands in
flight or its transport's write buffer is over the high-water mark (`pause_writing`); a client
whose unsent replies pass `max_client_output_bytes` is disconnected. A shared upstream
connection is never paused for one slow client.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Protocol, cast

from redisgate import metrics
from redisgate.errors import RemoteProtocolError
from redisgate.proxy.backend.pool import InstancePool
from redisgate.proxy.backend.upstream import PendingRequest, UpstreamConnection
from redisgate.proxy.clients.decisions import (
    FORWARD,
    Answer,
    Authenticate,
    Close,
    Decision,
    Forward,
    Pin,
    Reset,
    RunScript,
)
from redisgate.proxy.clients.dedicated import DedicatedLink
from redisgate.proxy.clients.key_binding import KeyBinding, KeyHost
from redisgate.proxy.clients.session import Session, State
from redisgate.proxy.commands.peers import PeerInfo, PeerRegistry
from redisgate.proxy.keys.principals import Principal
from redisgate.proxy.policy.usage_meter import UsageCounters
from redisgate.proxy.wire.encode import encode_error
from redisgate.proxy.wire.framing_limits import PRE_AUTH_LIMITS, REQUEST_TOO_BIG_PREFIX
from redisgate.proxy.wire.requests import Command, RequestFramer, split_commands
from redisgate.proxy.wire.runs import Run

if TYPE_CHECKING:
    from redisgate.config import Settings
    from redisgate.proxy.commands.table import CommandTable


class ClientHost(KeyHost, PeerRegistry, Protocol):
    """What a client connection needs of the gateway: the registry that admits, counts and
    forgets it, the memory caps it reports to, the session's view of the instance's other
    connections (`PeerRegistry`), and what its parts need (`KeyHost`)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def table(self) -> CommandTable: ...
    @property
    def server_version(self) -> str: ...
    def next_client_id(self) -> int: ...
    def admit(self, client: ClientConnection) -> bool: ...
    def authenticated(self, client: ClientConnection) -> None: ...
    def forget(self, client: ClientConnection) -> None: ...
    def requests_held(self, delta: int) -> None: ...
    def replies_held(self, delta: int) -> None: ...


log = logging.getLogger(__name__)


_LINGER_S = 2.0  # how long a closing client may take to close its side (`_close`)
# Commands a connection may send before it authenticates (Redis answers each with NOAUTH):
# enough for HELLO, AUTH and a retry or two; past it the client is closed, so an anonymous
# socket cannot make the gateway do more than this for it (docs/security.md).
PRE_AUTH_MAX_COMMANDS = 32
REPLY_TOO_MANY_BEFORE_AUTH = encode_error(
    "ERR", f"more than {PRE_AUTH_MAX_COMMANDS} commands before AUTH; closing the connection"
)
REPLY_REQUEST_MEMORY = encode_error(
    "ERR",
    "closed: the gateway's buffer for requests in transit is full and this connection held "
    "the most (max_total_request_bytes); send large values in smaller commands",
)
# Unsent reply bytes a client may hold before they count against max_total_reply_bytes: the
# transport's high-water mark, so only slow readers (paused, and told when they drain) count.
_REPLY_HELD_FROM = 64 * 1024
# Commands (or runs) one `_process` call takes before it lets other callbacks run: a client
# pipelining thousands of commands must not hold the event loop, and every other tenant,
# for the milliseconds that takes (docs/security.md).
_TURN_COMMANDS = 128
_HELD_TURN_S = 0.002  # a client of a held instance looks again after this (one fair-share tick)
_SLICE_BYTES = 8 * 1024  # a read larger than this is parsed in slices of it
_HELD_BYTES = 64 * 1024  # request bytes buffered while the session waits, before reading stops
REPLY_EVICTED = encode_error(
    "ERR", "closed: too many connections waiting to authenticate (send AUTH first)"
)
REPLY_SHUTTING_DOWN = encode_error("UNBLOCKED", "the gateway is shutting down; reconnect")


class ClientConnection(asyncio.Protocol):
    """The gateway side of one client's TCP, TLS or Unix connection: the transport, composed
    of its session, its key binding (`KeyBinding`), its dedicated link (`DedicatedLink`) and
    its usage counters."""

    # No per-instance dict: ten thousand idle clients are ten thousand of these.
    __slots__ = (
        "__weakref__",
        "_aborted",
        "_anonymous_left",
        "_at_limit",
        "_backlog",
        "_backlog_pos",
        "_blocked",
        "_eof",
        "_flush_handle",
        "_held",
        "_out",
        "_plain",
        "_read_paused",
        "_run_names",
        "_shared_protocol",
        "_tasks",
        "_turn",
        "_write_paused",
        "binding",
        "closed",
        "closing",
        "evicted",
        "framer",
        "gateway",
        "inflight",
        "last_activity",
        "link",
        "loop",
        "peer_host",
        "pool",
        "reply_held",
        "request_held",
        "session",
        "settings",
        "slots",
        "transport",
        "usage",
    )

    gateway: ClientHost

    def __init__(self, gateway: ClientHost) -> None:
        self.gateway = gateway
        self.settings = gateway.settings
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.framer = RequestFramer(**PRE_AUTH_LIMITS)
        self.session: Session | None = None
        self.slots: deque[PendingRequest] = deque()
        self.inflight = 0
        self.pool: InstancePool | None = None  # its instance's, once authenticated
        self.link = DedicatedLink(self)
        self.binding = KeyBinding(self)
        self.usage = UsageCounters()  # since the gateway last harvested it
        self.last_activity = self.loop.time()
        self.closing = False
        self.closed = False
        self.evicted = False
        self.request_held = 0  # bytes of requests still arriving, counted in the gateway's total
        self.reply_held = 0  # unsent reply bytes over _REPLY_HELD_FROM, counted likewise
        self._blocked = False
        # A command held until this client's in-flight commands are answered (see `_hold`).
        self._held: tuple[Command, Decision] | None = None
        self._shared_protocol = 2  # protocol of the shared connections last used
        self._plain = FORWARD[2]  # a command forwarded as it is, in that protocol
        self._at_limit = False
        self._eof = False
        self._aborted = False
        self._anonymous_left = PRE_AUTH_MAX_COMMANDS
        self._out: list[bytes] = []  # replies queued for the next write
        self._flush_handle: asyncio.Handle | None = None
        self._turn: asyncio.Handle | None = None  # `_process` continues at the next turn
        self._backlog: bytes | None = None  # a large read, parsed a slice at a time
        self._backlog_pos = 0
        self._read_paused = False
        self._write_paused = False
        self._tasks: set[asyncio.Task[None]] | None = None  # (AUTH, dedicated): made on use
        self._run_names: list[bytes] = []  # names of the commands in `_process`'s run

    def __repr__(self) -> str:
        return (
            f"<ClientConnection {self.session!r} [{self.inflight} in flight, "
            f"{len(self.slots)} slots]>"
        )

    @property
    def eof(self) -> bool:
        """The client sent EOF: it sends nothing more (it may still read)."""
        return self._eof

    @property
    def dedicated(self) -> UpstreamConnection | None:
        """The upstream connection this client holds of its own, if any (`link`)."""
        return self.link.conn

    def take_usage(self) -> tuple[Principal | None, tuple[int, int, int, int, int]]:
        """The key in use and what it used since the last call (commands, bytes in, bytes
        out, denied, limited); the counters start again from zero."""
        session = self.session
        if session is None:
            return None, self.usage.take(0, 0)
        return session.principal, self.usage.take(session.denied, session.limited)

    def apply_principal(self, principal: Principal | None) -> None:
        """The key changed while this client used it (`KeyBinding.apply`)."""
        self.binding.apply(principal)

    # --- asyncio.Protocol interface ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = _address(transport.get_extra_info("peername"))
        local = _address(transport.get_extra_info("sockname"))
        self.peer_host = peer.rsplit(":", 1)[0]
        self.session = Session(
            self.gateway.table,
            client_id=self.gateway.next_client_id(),
            peer=peer,
            local=local,
            clock=self.loop.time,
            server_version=self.gateway.server_version,
        )
        self.session.redirect_target = self.link.backend_id_of
        self.session.peers = self.gateway
        self.session.queued = self.framer.queued
        if not self.gateway.admit(self):
            self.transport.write(encode_error("ERR", "max number of clients reached"))
            self.closing = True
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.loop.time()
        metrics.CLIENT_BYTES["in"] += len(data)
        if self.closing:
            return
        pool = self.pool
        if pool is not None:
            pool.meter.bytes += len(data)
        if self._backlog is not None:  # (reading is paused meanwhile; just in case)
            self._backlog = self._backlog[self._backlog_pos :] + data
            self._backlog_pos = 0
        elif len(data) > _SLICE_BYTES:  # parsed a slice at a time (`_feed_backlog`)
            self._backlog, self._backlog_pos = data, 0
        elif pool is None or self._blocked or self._turn is not None or pool.throttled:
            self.framer.feed(data)
        elif self._forward_read(data):
            return
        if not self._blocked:
            self._process()
        elif not self._read_paused and (
            self._backlog is not None or self.framer.buffered_bytes > _HELD_BYTES
        ):
            # Waiting (AUTH, a dedicated connection): nothing is taken meanwhile, so read no
            # more than this; `_process` resumes reading once it runs again.
            self._read_paused = True
            if self.transport is not None:
                self.transport.pause_reading()
        if self.request_held or self._backlog is not None or self.framer.unparsed_bytes:
            self._count_held()

    def _forward_read(self, data: bytes) -> bool:
        """The usual read, with nothing before it to wait for: if it starts with commands
        forwarded as they are (one, or a pipeline), they go as one run without `_process`'s
        loop. Everything is handed to the framer; True if nothing is left for `_process`."""
        session, framer = self.session, self.framer
        assert session is not None
        fast = session.forwardable()
        room = self.settings.max_pending_per_client - self.inflight
        if fast is None or session.forward is not self._plain or room <= 0:
            framer.feed(data)
            return False
        run = framer.feed_run(data, fast, room)
        if run is None or not self._forward_run(run, session):
            return False  # the rate limits refused the run: its commands wait in the framer
        if run.raw is not data or self.request_held:
            return False  # the run is a slice of the read: the rest waits in the framer
        if self.inflight >= self.settings.max_pending_per_client:
            self._at_limit = True
            self._update_reading()
        return True

    def _count_held(self) -> None:
        """Tell the gateway how many request bytes this client holds, when that changed."""
        held = self.framer.unparsed_bytes
        if self._backlog is not None:
            held += len(self._backlog) - self._backlog_pos
        if held != self.request_held:  # rarely: a command still arriving, or held back
            delta, self.request_held = held - self.request_held, held
            self.gateway.requests_held(delta)  # may cut this client

    def _feed_backlog(self) -> None:
        """Hand the framer the next slice of a large read: parsing a read of thousands of
        commands at once would hold the event loop (17 ms for 5,000 GETs) and every other
        tenant with it; a slice is parsed, its commands taken, then the next."""
        backlog, start = self._backlog, self._backlog_pos
        assert backlog is not None
        end = start + _SLICE_BYTES
        if end >= len(backlog):
            self._backlog = None
            self.framer.feed(backlog[start:] if start else backlog)
        else:
            self._backlog_pos = end
            self.framer.feed(backlog[start:end])

    def eof_received(self) -> bool | None:
        # The client sent everything it will: run what is buffered, answer it, then close.
        self._eof = True
        if self.closing and not self.slots:  # we were only waiting for it (`_close`)
            return False  # the transport closes
        if not self._blocked:
            self._process()
        self.link.leave_if_blocked()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.closing = True
        self.framer.discard()
        self._backlog = None
        self._release_held_bytes()
        self._drop_owed()
        for task in self._tasks or ():
            task.cancel()
        self.gateway.forget(self)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()
        if self.link.conn is not None:  # its replies wait in Redis, not in the gateway
            self.link.conn.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.reply_held:  # the buffer drained below the low-water mark
            self.gateway.replies_held(-self.reply_held)
            self.reply_held = 0
        self._update_reading()
        if self.link.conn is not None:
            self.link.conn.resume_reading()

    # --- Commands ---------------------------------------------------------------------------

    def _process(self) -> None:
        """Hand buffered commands to the session until blocked, paused or out of commands.

        Consecutive commands bound for a shared connection are sent as one run: one slot,
        one write (see `PendingRequest`); the run is sent before anything else happens, so
        order is kept.
        """
        framer, session = self.framer, self.session
        assert session is not None
        limit = self.settings.max_pending_per_client
        ready = framer.queued
        run: list[bytes] = []
        command: Command | Run | None
        budget = _TURN_COMMANDS
        usage = self.usage
        if self._turn is not None:  # called before its turn came: this call is the turn
            self._turn.cancel()
            self._turn = None
        if self.pool is not None and self.pool.throttled:
            # Its instance is held for taking more than its share (`Gateway._share_fairly`):
            # its commands wait for the next tick, with reading paused.
            self._turn = self.loop.call_later(_HELD_TURN_S, self._next_turn)
            self._update_reading()
            return
        while not self._blocked and not self.closing:
            if self.inflight >= limit:
                self._at_limit = True
                break
            budget -= 1
            if budget < 0:  # the rest next turn: other clients' reads come first
                self._turn = self.loop.call_soon(self._next_turn)
                break
            try:
                if ready:
                    command = framer.next_command()
                else:  # a new parse: it may start with a run of plain forwarded commands
                    fast = session.forwardable()
                    if session.forward is not self._plain:  # HELLO switched protocols
                        fast = None
                    command = framer.next_command(fast, limit - self.inflight)
            except RemoteProtocolError as exc:
                self._send_run(run, session)
                run = []
                if str(exc).startswith(REQUEST_TOO_BIG_PREFIX):
                    metrics.LIMITED["max_request_bytes"] += 1
                    self.usage.limited += 1
                self.finish_with(encode_error("ERR", str(exc)))
                break
            if command is None:
                if self._backlog is not None:
                    self._feed_backlog()
                    continue
                if self._eof:
                    self._send_run(run, session)
                    run = []
                    self.closing = True
                    self._close_when_flushed()
                break
            if isinstance(command, Run):
                if run:
                    self._send_run(run, session)
                    run = []
                self._forward_run(command, session)
                continue
            if session.principal is None:
                self._anonymous_left -= 1
                if self._anonymous_left < 0:  # nothing but NOAUTH to gain: stop working for it
                    self.finish_with(REPLY_TOO_MANY_BEFORE_AUTH)
                    break
            decision = session.handle(command)
            usage.commands += 1
            usage.bytes_in += len(command.raw)
            if decision is self._plain:
                run.append(command.raw)
                self._run_names.append(command.args[0])
                self.inflight += 1
                continue
            if run:
                self._send_run(run, session)
                run = []
            self._execute(command, decision, session)
        if run:
            self._send_run(run, session)
        if session.credit:  # stopped early (blocked, paused): what the rest did not use
            session.settle()
        if self.request_held:
            self._count_held()
        if (
            self._read_paused
            or self._write_paused
            or self.inflight >= limit
            or self._turn is not None
            or self._backlog is not None  # stopped before the backlog was parsed
        ):
            self._update_reading()

    def _next_turn(self) -> None:
        self._turn = None
        if not self._blocked and not self.closing:
            self._process()

    def _forward_run(self, forwarded: Run, session: Session) -> bool:
        """A read's leading commands that `session` forwards as they are: one slot, one
        write of their bytes as read, if the rate limits let them all run (True); else
        they go back to the framer as commands, for `handle` to take or refuse one by one."""
        raw, names = forwarded
        if session.rate is not None and not session.take_run(len(names)):
            self.framer.requeue(split_commands(raw))
            return False
        usage = self.usage
        usage.commands += len(names)
        usage.bytes_in += len(raw)
        self.inflight += len(names)
        self._send_slot(raw, names, session)
        return True

    def _send_run(self, run: list[bytes], session: Session) -> None:
        """Send consecutive shared commands (already counted in `inflight`) as one slot."""
        if not run:
            return
        names, self._run_names = self._run_names, []
        self._send_slot(run[0] if len(run) == 1 else b"".join(run), names, session)

    def _send_slot(self, raw: bytes, names: list[bytes], session: Session) -> None:
        """One write to a shared connection, and one slot for the replies of its commands."""
        assert self.pool is not None
        request = PendingRequest(self, None, None, len(names), names, self.last_activity)
        self.slots.append(request)
        # Plain forwards only: the session's protocol is the one they were taken in.
        self.pool.send(request, raw, self._shared_protocol)

    def _execute(self, command: Command, decision: Decision, session: Session) -> None:
        if isinstance(decision, Forward):
            if decision.protocol != self._shared_protocol:
                # HELLO switched protocols: RESP2 and RESP3 use different connections, so
                # finish what runs on the old ones first, to keep the order Redis sees.
                if self.inflight:
                    self._hold(command, decision)
                    return
                self._shared_protocol = decision.protocol
                self._plain = FORWARD[decision.protocol]
            assert self.pool is not None
            request = PendingRequest(
                self, None, decision.transform, 1, [command.args[0]], self.last_activity
            )
            self.slots.append(request)
            self.inflight += 1
            raw = command.raw if decision.raw is None else decision.raw
            self.pool.send(request, raw, decision.protocol)
        elif isinstance(decision, Answer):
            metrics.count_local(command.args[0], decision.reply)
            self.local_reply(decision.reply)
        elif isinstance(decision, Pin):
            raw = command.raw if decision.raw is None else decision.raw
            if self.link.conn is not None:
                self.link.send(command, raw, decision.transform)
            elif self.inflight:
                self._hold(command, decision)  # shared requests first, then the switch
            else:
                assert self.pool is not None
                self._blocked = True
                self._start(self.link.acquire(self.pool, command, raw, decision.transform))
        elif isinstance(decision, RunScript):
            if self.inflight:
                self._hold(command, decision)  # what was sent before runs first
            else:
                self._send_script(command, decision.raw, session)
        elif isinstance(decision, Authenticate):
            request = PendingRequest(self, names=[command.args[0]])
            self.slots.append(request)
            self.inflight += 1
            self._blocked = True
            self._start(self.binding.authenticate(decision.request, request))
        elif isinstance(decision, Reset):
            metrics.count_local(command.args[0], decision.reply)
            self.local_reply(decision.reply)
            self._reset()
        else:
            assert isinstance(decision, Close)
            metrics.count_local(command.args[0], decision.reply)
            self.finish_with(decision.reply)

    def _send_script(self, command: Command, raw: bytes, session: Session) -> None:
        """Run a script as its key's backend ACL user; take nothing more until it is answered."""
        principal, pool = session.principal, self.pool
        assert principal is not None and pool is not None
        owner = _ScriptReply(self)
        request = PendingRequest(owner, None, None, 1, [command.args[0]], self.last_activity)
        self.slots.append(request)
        self.inflight += 1
        self._blocked = True
        work = pool.send_script(request, raw, principal, session.table, session.protocol)
        if work is not None:
            self._start(work)

    def script_answered(self) -> None:
        """The reply to the script sent as the key's user is in: take commands again."""
        if not self.closed:
            self.resume()

    def _hold(self, command: Command, decision: Decision) -> None:
        """Stop taking commands until every in-flight one is answered, then run this one."""
        self._held = (command, decision)
        self._blocked = True

    def _release_held(self) -> None:
        held, self._held = self._held, None
        assert held is not None and self.session is not None
        self._blocked = False
        self._execute(held[0], held[1], self.session)
        if not self._blocked:
            self._process()

    def local_reply(self, reply: bytes) -> None:
        if not self.slots:
            self.write(reply)
        else:
            self.slots.append(PendingRequest(self, reply))

    def finish_with(self, reply: bytes) -> None:
        """Answer `reply` after everything owed, then close (QUIT, protocol errors)."""
        self.local_reply(reply)
        self.closing = True
        self._close_when_flushed()

    def _reset(self) -> None:
        """After RESET: the instance and the key's limits go, and the dedicated connection
        too, once the replies it owes are in (commands wait meanwhile: `upstream_frame`)."""
        self.pool = None
        self.binding.release()
        link = self.link
        if link.conn is None:
            return
        if link.slots:
            self._blocked = link.reset_pending = True
        else:
            link.release(clean=False)

    def _start(self, coro: Coroutine[object, object, None]) -> None:
        task = self.loop.create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A bug, not a client error: this connection's state is unknown, so it ends.
            log.error("%r: internal error", self, exc_info=task.exception())
            self.abort()

    def resume(self) -> None:
        self._blocked = False
        if not self.closing:
            self._process()

    # --- Replies ----------------------------------------------------------------------------

    def reply_ready(self, request: PendingRequest) -> None:
        """A slot got its reply: queue every complete reply from the head for writing."""
        self.inflight -= request.count
        slots = self.slots
        if not slots or slots[0] is not request:
            return
        out, reply = self._out, request.reply
        if len(slots) == 1 and not out and reply is not None:  # the usual: one reply owed
            slots.clear()
            self._send(reply)  # nothing else can come now: no callback, no queue
        else:
            while slots:
                reply = slots[0].reply
                if reply is None:
                    break
                slots.popleft()
                out.append(reply)
            if self._flush_handle is None:
                if slots:  # more may come in this batch of the backend's replies: write later
                    self._flush_handle = self.loop.call_soon(self._flush)
                else:  # nothing else can: the write now saves a callback per reply
                    self._flush()
        if self._held is not None and not self.inflight:
            self._release_held()
        elif self.closing:
            self._close_when_flushed()
        elif self._at_limit and self.inflight < self.settings.max_pending_per_client:
            self._at_limit = False
            self._process()

    def reply_progress(self, request: PendingRequest) -> None:
        """Part of a run's replies are in, and large: if the run heads this client's queue,
        they are written now (and counted), so a run of big replies streams through."""
        if request.cancelled or not self.slots or self.slots[0] is not request:
            return
        parts = request.parts
        names = request.names
        if names is not None:
            done = len(parts)
            metrics.count_replies(names[:done], parts[:-1], parts[-1])
            request.names = names[done:]
        self._out += parts  # as they came: written together, never joined
        parts.clear()
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def write(self, data: bytes) -> None:
        """Queue bytes for the client; everything queued in one loop turn is one write."""
        self._out.append(data)
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        if len(out) == 1:
            data = out[0]
            out.clear()
            self._send(data)
        elif out:
            self._out = []
            self._send(b"", out)  # the replies as they are, never joined

    def _send(self, data: bytes, pieces: list[bytes] | None = None) -> None:
        """Write to the client now (unless it is gone); count the bytes, watch the backlog.
        `pieces`, if given, go instead of `data` as one writev (`writelines`: uvloop keeps
        references, it copies nothing); a lone reply takes no type check."""
        transport = self.transport
        if transport is None or self.closed or self._aborted:
            return
        if pieces is None:
            size = len(data)
            transport.write(data)
        else:
            size = sum(map(len, pieces))
            transport.writelines(pieces)
        self.usage.bytes_out += size
        metrics.CLIENT_BYTES["out"] += size
        unsent = transport.get_write_buffer_size()
        if unsent > _REPLY_HELD_FROM or self.reply_held:
            held = unsent if unsent > _REPLY_HELD_FROM else 0
            delta, self.reply_held = held - self.reply_held, held
            self.gateway.replies_held(delta)
        if unsent > self.settings.max_client_output_bytes:
            log.warning(
                "%r: over %d unsent reply bytes; disconnecting a slow reader",
                self,
                self.settings.max_client_output_bytes,
            )
            metrics.CLIENTS_CUT["slow_reader"] += 1
            self.abort()

    # --- Flow control and closing -----------------------------------------------------------

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        want_pause = (
            self._write_paused
            or self.inflight >= self.settings.max_pending_per_client
            or self._turn is not None  # commands are waiting for their turn: read no more
            or self._backlog is not None
        )
        if want_pause and not self._read_paused:
            self._read_paused = True
            transport.pause_reading()
        elif not want_pause and self._read_paused:
            self._read_paused = False
            transport.resume_reading()

    def _close_when_flushed(self) -> None:
        if not self.slots and self.transport is not None and not self.closed:
            self._flush()
            self._close(self.transport)

    def _close(self, transport: asyncio.Transport) -> None:
        """Close once the replies are written, without losing them: closing a socket with
        unread input (commands we will not run) makes the kernel reset the connection, which
        can destroy replies the client has not read yet. So unless the client has sent EOF,
        half-close (it reads our replies, then EOF) and discard its input until it closes,
        for `_LINGER_S` at most (`eof_received`)."""
        if self._eof or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self.loop.call_later(_LINGER_S, self.abort)

    def abort(self) -> None:
        self.closing = self._aborted = True
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def cut_for_requests(self) -> None:
        """Disconnected because all clients' buffered requests passed their cap and this
        one held the most: its bytes are dropped now, and it is told why."""
        metrics.CLIENTS_CUT["request_memory"] += 1
        self._release_held_bytes()
        self.framer.discard()
        self._backlog = None
        self._finish_now(REPLY_REQUEST_MEMORY)

    def cut_for_replies(self) -> None:
        """Disconnected because all slow readers' unsent replies passed their cap and this
        one held the most: a reset, which is what frees the bytes queued for it."""
        metrics.CLIENTS_CUT["reply_memory"] += 1
        self._release_held_bytes()  # the abort drops them; counted out now, not once closed
        self.abort()

    def _release_held_bytes(self) -> None:
        if self.request_held:
            self.gateway.requests_held(-self.request_held)
            self.request_held = 0
        if self.reply_held:
            self.gateway.replies_held(-self.reply_held)
            self.reply_held = 0

    def _finish_now(self, reply: bytes) -> None:
        """Close at once with `reply`, dropping whatever it is still owed."""
        self.closing = True
        self._drop_owed()
        self.write(reply)
        self._close_when_flushed()

    def _drop_owed(self) -> None:
        """Forget every reply this client is owed (their requests' replies are dropped)."""
        for slot in self.slots:
            slot.cancelled = True
        self.slots.clear()
        self.link.slots.clear()
        if self.link.conn is not None:
            self.link.release(clean=False)

    def evict(self) -> None:
        """Closed to make room for a newer connection (`Gateway.admit`): it never
        authenticated, so it is owed nothing but the reason."""
        self.evicted = self.closing = True
        if self.transport is not None and not self.closed:
            self.transport.write(REPLY_EVICTED)
            self.transport.close()

    def shutdown(self) -> None:
        """Graceful stop: take no new commands, close once every owed reply is written."""
        self.closing = True
        self._close_when_flushed()

    def stop(self) -> None:
        """The gateway is stopping: as `shutdown`, but a command waiting on the server
        (BLPOP, XREAD BLOCK, WAIT) gets an error at once instead of being waited for, so a
        drain never waits on clients that could wait forever (subscribers hold no slot and
        close as soon as their replies are written)."""
        self.link.fail_blocked(REPLY_SHUTTING_DOWN)
        self.shutdown()

    def describe(self) -> PeerInfo | None:
        """This connection as CLIENT LIST shows it, once authenticated (else None)."""
        session = self.session
        if session is None or session.principal is None or self.closing:
            return None
        idle = int(self.loop.time() - self.last_activity)
        conn = self.link.conn
        backend_id = conn.server_client_id if conn is not None else None
        return session.peer_info(idle, backend_id)

    def kill(self) -> None:
        """CLIENT KILL from another connection of its instance: closed at once, as Redis
        closes a killed client; what it was owed is dropped, and a command it had blocked on
        its dedicated connection ends with that connection."""
        if self.closed or self.closing:
            return
        metrics.CLIENTS_CUT["client_kill"] += 1
        self.closing = True
        self._drop_owed()
        if self.transport is not None:
            self.transport.close()

    def check_timeouts(self, now: float) -> None:
        """Close a connection that never authenticated in time, or sat idle too long."""
        session = self.session
        if session is None or self.closing:
            return
        idle = now - self.last_activity
        auth_timeout = self.settings.auth_timeout_s
        if session.state is State.AUTH and now - session.connected_at > auth_timeout:
            self.finish_with(encode_error("ERR", "authentication timeout"))
        elif (
            self.settings.client_idle_timeout_s
            and idle > self.settings.client_idle_timeout_s
            and not self.inflight  # blocked clients wait on purpose
            and not (session.tracker is not None and session.tracker.subscribed)
        ):
            self.abort()  # as Redis: only blocked and pub/sub clients are spared


class _ScriptReply:
    """The owner of a script's slot: the client's, and once answered the client goes on."""

    __slots__ = ("client",)

    def __init__(self, client: ClientConnection) -> None:
        self.client = client

    def reply_progress(self, request: PendingRequest) -> None:
        self.client.reply_progress(request)

    def reply_ready(self, request: PendingRequest) -> None:
        self.client.reply_ready(request)
        self.client.script_answered()


def _address(value: object) -> str:
    if isinstance(value, tuple) and len(value) >= 2:
        return f"{value[0]}:{value[1]}"
    return str(value or "")
