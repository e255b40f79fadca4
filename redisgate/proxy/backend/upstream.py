"""One connection to a backing Redis: a FIFO of pending requests and coalesced writes.

Theory of operation
-------------------
A *shared* connection carries commands from many clients. Each command sent appends a
`PendingRequest` to the FIFO; Redis answers in order, so each reply frame completes the head
of the FIFO. Three rules keep a reply from ever reaching the wrong client (Envoy's
`client_impl.cc`, and redis-py's CVE-2023-28858 as the cautionary tale):

1. The head is popped *before* its owner is called, so a callback that fails or re-enters
   cannot leave the FIFO misaligned.
2. A client that goes away only marks its requests `cancelled`; the slots stay, and their
   replies are read and dropped.
3. Anything that could desynchronise the FIFO (a reply with no pending request, a malformed
   frame, a timeout, a lost connection) fails *every* pending request, in order, with an
   error reply, and closes the connection. A desynchronised FIFO is never repaired.

Only commands that produce exactly one reply are sent on shared connections (the command
table's FORWARD route); everything else moves to a *dedicated* connection, which has one
owner that receives every frame in order (`DedicatedOwner`).

Writes are appended to a buffer and flushed once per event-loop turn (`call_soon`), so the
commands of fifty clients reach Redis as one pipeline: this roughly doubles throughput.

A shared connection asks Redis for no more than a window of replies at once: at most
`max_inflight_commands` unanswered, and at most `max_inflight_bytes` by an estimate of its
recent reply sizes. Redis buffers every reply it has produced until the gateway reads it, with
no bound of its own (`client-output-buffer-limit normal` is 0 by default), so without a
window a client that pipelines thousands of `GET big` and leaves makes the server hold
gigabytes. Requests over the window wait here, in order, and one whose client has gone is
dropped unsent: the backend is never asked for what nobody will read.

The connection handshake (HELLO with AUTH, SELECT) is queued before any client command, with
internal pending entries that check the replies; a failing handshake fails the connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from enum import Enum
from itertools import islice
from operator import itemgetter
from typing import Protocol, cast

import hiredis

from redisgate import metrics
from redisgate.backends import Backend
from redisgate.errors import RemoteProtocolError
from redisgate.proxy.wire.encode import encode_command, encode_error
from redisgate.proxy.wire.replies import ReplyFramer, is_error, is_push
from redisgate.proxy.wire.requests import split_commands

log = logging.getLogger(__name__)

_FLUSH_THRESHOLD = 256 * 1024
# A run's replies are handed to its client as they come once this many bytes are in, rather
# than all at once at the end (a run of 1,000 GETs of 100 KB would otherwise be 100 MB here).
_STREAM_BYTES = 256 * 1024
_PUSH_OR_ATTRIBUTE = frozenset(b">|")  # first bytes of frames that may be pushes
_first_byte = itemgetter(0)


class PendingRequest:
    """One reply slot for `count` consecutive commands of one client (a pipelined run sent
    as one write); `reply` is set once, to their replies' bytes, and `owner.reply_ready(self)`
    is told. Counting a run as one slot keeps per-command work off the pipelined hot path."""

    __slots__ = (
        "cancelled", "count", "names", "owner", "parts", "reply", "sent", "started", "transform",
        "waiting",
    )  # fmt: skip

    def __init__(
        self,
        owner: ReplyOwner,
        reply: bytes | None = None,
        transform: Callable[[bytes], bytes] | None = None,
        count: int = 1,
        names: list[bytes] | None = None,
        started: float = 0.0,
    ) -> None:
        self.owner = owner
        self.reply = reply
        self.cancelled = False
        self.transform = transform
        self.count = count
        self.waiting = count  # replies still to come
        self.parts: list[bytes] = []  # replies received so far (runs of more than one)
        self.names = names  # the commands' names, counted in metrics once answered
        self.started = started  # loop time the client's request was read (0: not timed)
        self.sent = 0.0  # loop time it was written to the backend connection

    def complete(self, frame: bytes) -> None:
        """The last reply arrived (`frame`); earlier ones of a run are in `parts`."""
        if self.names is not None:
            metrics.count_replies(self.names, self.parts, frame)
        if self.cancelled:
            return
        if self.parts:
            self.parts.append(frame)
            frame = b"".join(self.parts)
        elif self.transform is not None and not is_error(frame):
            frame = self.transform(frame)
        self.reply = frame
        self.owner.reply_ready(self)

    def fail(self, error: bytes) -> None:
        """Every reply still owed becomes `error`."""
        if self.names is not None:
            metrics.count_failed(self.names, self.parts)
            self.names = None
        self.complete(error * self.waiting)


class TrafficMeter:
    """Bytes an instance's connections (upstream and client) have moved, for the gateway's
    fair share under overload (`Gateway._share_fairly`): a plain counter, never reset."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


class ReplyOwner(Protocol):
    def reply_ready(self, request: PendingRequest) -> None: ...

    def reply_progress(self, request: PendingRequest) -> None:
        """Part of a run's replies (`request.parts`) are in, and large: take them now, or
        leave them to come with the rest."""


class DedicatedOwner(Protocol):
    """The one client of a dedicated connection: it sees every frame, in order."""

    def upstream_frame(self, frame: bytes) -> None: ...

    def upstream_lost(self, reason: str) -> None: ...


class State(Enum):
    CONNECTING = "connecting"
    READY = "ready"
    CLOSED = "closed"


class _HandshakeStep:
    """Checks the reply of one handshake command; an error reply fails the connection."""

    def __init__(self, conn: UpstreamConnection, what: str) -> None:
        self.conn = conn
        self.what = what

    def reply_progress(self, request: PendingRequest) -> None:
        pass

    def reply_ready(self, request: PendingRequest) -> None:
        assert request.reply is not None
        if is_error(request.reply):
            message = request.reply[1:].strip().decode(errors="replace")
            self.conn.fail(f"the instance's Redis refused {self.what}: {message}")
            return
        if self.what == "HELLO":
            self.conn.hello_reply = request.reply
        self.conn.handshake_step_done()


def handshake_commands(backend: Backend, protocol: int) -> list[tuple[str, bytes]]:
    """What a new connection sends before any client command."""
    steps: list[tuple[str, bytes]] = []
    hello: list[bytes | str | int] = ["HELLO", protocol]
    if backend.password is not None:
        hello += ["AUTH", backend.username or "default", backend.password]
    hello += ["SETNAME", "redisgate"]
    steps.append(("HELLO", encode_command(hello)))
    if backend.db:
        steps.append(("SELECT", encode_command(["SELECT", backend.db])))
    return steps


class UpstreamConnection(asyncio.Protocol):
    """A connection to one backend, shared (FIFO pairing) or dedicated (one owner)."""

    def __init__(
        self,
        backend: Backend,
        protocol: int,
        on_closed: Callable[[UpstreamConnection], None] | None = None,
        *,
        max_inflight_commands: int = 0,
        max_inflight_bytes: int = 0,
    ) -> None:
        """`max_inflight_*` bound a shared connection's window (0: none, for dedicated
        connections, whose one client is paused instead)."""
        self.backend = backend
        self.protocol = protocol
        self.on_closed = on_closed
        self.state = State.CONNECTING
        self.transport: asyncio.Transport | None = None
        self.framer = ReplyFramer()
        self.fifo: deque[PendingRequest] = deque()
        self.owner: DedicatedOwner | None = None
        self.hello_reply: bytes | None = None
        self.handshake_done = False
        self.on_ready: Callable[[UpstreamConnection], None] | None = None
        self.close_reason = ""
        self.closed_on_purpose = False  # closed by the gateway, not failed
        self.dropped = False  # the peer or the network closed it
        self.label = ""  # the instance's name, for error messages
        self.replies = 0  # progress counter the pool's watchdog reads
        self.max_inflight_commands = max_inflight_commands
        self.max_inflight_bytes = max_inflight_bytes
        self._held: deque[tuple[PendingRequest, bytes]] = deque()  # over the window
        # Held runs sent in part: the raw bytes of their commands still to send.
        self._partial: dict[PendingRequest, deque[bytes]] = {}
        # Estimated bytes per reply. It starts high (16 replies fill the window), so a
        # new connection learns its replies' size before it asks for many of them.
        self._reply_size = max_inflight_bytes / 16
        self._reading_paused = False  # by its client (too slow a reader)
        self._throttled = False  # by the gateway (its instance takes more than its share)
        self.meter: TrafficMeter | None = None
        self._wbuf: list[bytes] = []
        self._wbuf_bytes = 0
        self._unsent = 0  # requests in the FIFO not yet written (their `sent` is unset)
        self._flush_handle: asyncio.Handle | None = None
        self._loop = asyncio.get_running_loop()
        steps = handshake_commands(backend, protocol)
        self._handshake_left = len(steps)
        self._asked = len(steps)  # replies asked for so far; `replies` counts those read
        for what, raw in steps:
            self.fifo.append(PendingRequest(_HandshakeStep(self, what)))
            self._wbuf.append(raw)

    @property
    def server_client_id(self) -> int | None:
        """This connection's client id on the backend (from its HELLO reply)."""
        if self.hello_reply is None:
            return None
        reader = hiredis.Reader()
        reader.feed(self.hello_reply)
        fields = reader.gets()
        if isinstance(fields, list):
            fields = dict(zip(fields[::2], fields[1::2], strict=False))
        value = fields.get(b"id") if isinstance(fields, dict) else None
        return value if isinstance(value, int) else None

    def handshake_step_done(self) -> None:
        self._handshake_left -= 1
        if self._handshake_left == 0:
            self.handshake_done = True
            if self.on_ready is not None:
                self.on_ready(self)

    def __repr__(self) -> str:
        mode = "dedicated" if self.owner is not None else "shared"
        return (
            f"<UpstreamConnection {self.backend.host}:{self.backend.port} RESP{self.protocol}"
            f" {mode} {self.state.value} [{len(self.fifo)} pending, {self.held} held]>"
        )

    # --- Connecting ------------------------------------------------------------------------

    async def connect(self, timeout_s: float, ssl_context: ssl.SSLContext | None) -> None:
        """Open the TCP (or TLS) connection; on failure the pending requests get errors."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._loop.create_connection(
                    lambda: self, self.backend.host, self.backend.port, ssl=ssl_context
                )
        except TimeoutError:
            self.fail(f"connecting to the instance's Redis timed out after {timeout_s:g}s")
        except OSError as exc:
            self.fail(f"cannot connect to the instance's Redis: {exc.strerror or exc}")

    # --- asyncio.Protocol interface ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.state is State.CLOSED:  # failed (e.g. cancelled) while connecting
            transport.close()
            return
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.state = State.READY
        if self._reading_paused or self._throttled:
            self.transport.pause_reading()
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.meter is not None:
            self.meter.bytes += len(data)
        try:
            frames = self.framer.feed(data)
        except RemoteProtocolError as exc:
            self.fail(f"the instance's Redis sent invalid RESP ({exc})")
            return
        if self.owner is not None:
            owner = self.owner
            while frames and self.fifo:  # handshake replies come first
                self.fifo.popleft().complete(frames.pop(0))
            if self.state is State.CLOSED:
                return
            for frame in frames:
                if self.owner is not owner:  # released mid-batch: nobody expects this frame
                    self.fail("the instance's Redis sent a reply nobody was waiting for")
                    return
                self.replies += 1
                owner.upstream_frame(frame)
            return
        fifo = self.fifo
        now = self._loop.time()  # once per batch of replies, for the latency histograms
        timed = False  # one latency sample per batch: its oldest timed slot (docs/metrics.md)
        i, count = 0, len(frames)
        while i < count:
            if not fifo:
                self.fail("the instance's Redis sent a reply nobody was waiting for")
                return
            head = fifo[0]
            want = head.waiting
            if want > 1:  # a run: its replies in this read are taken at once
                span = frames[i : i + want]
                if _PUSH_OR_ATTRIBUTE.isdisjoint(map(_first_byte, span)):  # (checked in C)
                    taken = len(span)
                    i += taken
                    self.replies += taken
                    if taken < want:  # more to come for this slot
                        head.waiting = want - taken
                        head.parts += span
                        continue
                    head.parts += span[:-1]
                    fifo.popleft()
                    if head.started and not timed:
                        timed = True
                        metrics.observe_latency(head.started, head.sent, now)
                    head.complete(span[-1])
                    continue
            frame = frames[i]
            i += 1
            if frame[0] in _PUSH_OR_ATTRIBUTE and is_push(frame):
                # Nobody on a shared connection subscribes or tracks, so a push here was aimed
                # at it from outside (e.g. another server client's tracking REDIRECT). It never
                # answers a request: drop it, or every later reply would shift by one.
                log.warning("%r: dropped an unexpected push frame", self)
                continue
            self.replies += 1
            if want > 1:  # a run, with a push or an attribute among its replies
                head.waiting = want - 1
                head.parts.append(frame)
                continue
            fifo.popleft()
            if head.started and not timed:
                timed = True
                metrics.observe_latency(head.started, head.sent, now)
            head.complete(frame)
        if fifo and fifo[0].parts and len(fifo[0].parts) * self._reply_size >= _STREAM_BYTES:
            fifo[0].owner.reply_progress(fifo[0])  # a run of big replies: not all in memory
        # Bytes per reply in this read (a read with no complete reply: at least its size);
        # the estimate follows a rise at once and a fall slowly, so it errs on the large side.
        sample = len(data) / len(frames) if frames else float(len(data))
        if sample > self._reply_size:
            self._reply_size = sample
        else:
            self._reply_size -= (self._reply_size - sample) * 0.125
        if self._held and self.state is State.READY:
            self._send_held()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "the connection to the instance's Redis was lost"
        if exc is not None:
            reason += f" ({exc})"
        self.dropped = True
        self.fail(reason + "; the command may or may not have run")

    def pause_writing(self) -> None:
        # Redis reads slower than clients write; requests stay in the transport buffer and
        # clients are held back by their own pending-request caps.
        log.debug("%r: backend not reading fast enough", self)

    def resume_writing(self) -> None:
        pass

    # --- Sending ----------------------------------------------------------------------------

    def send(self, request: PendingRequest, raw: bytes) -> None:
        """Queue `raw` for this connection; its reply will complete `request`."""
        if self.state is State.CLOSED:
            request.fail(self.error_reply())
            return
        if self.max_inflight_commands and (
            self._held
            or (owed := self._asked - self.replies + request.count) > self.max_inflight_commands
            or owed * self._reply_size > self.max_inflight_bytes
        ):
            self._held.append((request, raw))
            if len(self._held) == 1:  # a run larger than the room: its first part goes now
                self._send_held()
            return
        self.fifo.append(request)
        self._unsent += 1
        self._asked += request.count
        self._wbuf.append(raw)  # `write`, inlined: once per client read
        self._wbuf_bytes += len(raw)
        if self._wbuf_bytes >= _FLUSH_THRESHOLD:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def set_window(self, max_commands: int, max_bytes: int) -> None:
        """Bound this (shared) connection's unanswered replies (see the module docstring)."""
        self.max_inflight_commands, self.max_inflight_bytes = max_commands, max_bytes
        self._reply_size = max_bytes / 16

    def _room(self) -> int:
        """How many more replies the window takes now (at least one when it is empty)."""
        owed = self._asked - self.replies
        room = min(
            self.max_inflight_commands - owed,
            int((self.max_inflight_bytes - owed * self._reply_size) / self._reply_size),
        )
        return max(room, 1) if owed == 0 else room

    def _send_held(self) -> None:
        """Send what waited for the window, in order, while it fits; drop what nobody awaits.

        A pipelined run (one request, many commands) larger than the room is split into its
        commands once and sent in parts; its rest stays first in line, so order is kept. A
        run cancelled part-way is owed only the replies of the part that was sent."""
        held, partial = self._held, self._partial
        while held:
            request, raw = held[0]
            pieces = partial.get(request)
            left = request.count if pieces is None else len(pieces)
            if request.cancelled:
                held.popleft()
                metrics.UNSENT_DROPPED["commands"] += left
                if pieces is not None:  # part of it was sent: expect only those replies
                    del partial[request]
                    request.waiting -= left
                    request.names = None
                    if request.waiting == 0:  # and they are all in: it heads the FIFO
                        if self.fifo[0] is not request:
                            self.fail("the gateway lost track of a pipelined run (a bug)")
                            return
                        self.fifo.popleft()
                continue
            room = self._room()
            if room <= 0:
                return
            if left > room:
                if pieces is None:
                    pieces = partial[request] = deque(c.raw for c in split_commands(raw))
                    self.fifo.append(request)
                    self._unsent += 1
                self._asked += room
                self.write(b"".join([pieces.popleft() for _ in range(room)]))
                return
            held.popleft()
            if pieces is None:
                self.fifo.append(request)
                self._unsent += 1
            else:
                del partial[request]
                raw = b"".join(pieces)
            self._asked += left
            self.write(raw)

    @property
    def held(self) -> int:
        """Requests waiting for the window."""
        return len(self._held)

    def pause_reading(self) -> None:
        """Stop reading replies (a dedicated connection whose client reads too slowly: Redis
        holds them, up to its `client-output-buffer-limit`)."""
        self._set_reading(paused=True, throttled=self._throttled)

    def resume_reading(self) -> None:
        self._set_reading(paused=False, throttled=self._throttled)

    def set_throttled(self, throttled: bool) -> None:
        """Stop (or resume) reading while the gateway holds this instance back: Redis keeps
        the replies, no more than the window asked for."""
        self._set_reading(paused=self._reading_paused, throttled=throttled)

    def _set_reading(self, *, paused: bool, throttled: bool) -> None:
        was = self._reading_paused or self._throttled
        self._reading_paused, self._throttled = paused, throttled
        transport = self.transport
        if transport is None or self.state is not State.READY or was == (paused or throttled):
            return
        if paused or throttled:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def write(self, raw: bytes) -> None:
        """Queue bytes with no reply slot (dedicated connections track replies themselves)."""
        self._wbuf.append(raw)
        self._wbuf_bytes += len(raw)
        if self._wbuf_bytes >= _FLUSH_THRESHOLD:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self.state is not State.READY or not self._wbuf:
            return
        assert self.transport is not None
        data = self._wbuf[0] if len(self._wbuf) == 1 else b"".join(self._wbuf)
        self._wbuf.clear()
        self._wbuf_bytes = 0
        if self._unsent:  # one clock read per write, however many requests it carries
            now = self._loop.time()
            if self._unsent == 1:
                self.fifo[-1].sent = now
            else:
                for request in islice(reversed(self.fifo), self._unsent):
                    request.sent = now
            self._unsent = 0
        self.transport.write(data)

    # --- Failing and closing ----------------------------------------------------------------

    def error_reply(self) -> bytes:
        reason = self.close_reason or "the instance's Redis is unavailable"
        if self.label:
            reason = f"instance {self.label!r} is unavailable: {reason}"
        return encode_error("BACKEND", reason)

    def fail(self, reason: str, *, expected: bool = False) -> None:
        """Fail every pending request in order, close, and tell the pool and the owner."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.close_reason = reason
        self.closed_on_purpose = expected
        log.log(logging.DEBUG if expected else logging.WARNING, "%r: %s", self, reason)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._wbuf.clear()
        self._unsent = 0
        if self.transport is not None:
            self.transport.abort()
        error = self.error_reply()
        fifo, self.fifo = self.fifo, deque()
        while fifo:
            fifo.popleft().fail(error)
        held, self._held = self._held, deque()
        partial, self._partial = self._partial, {}
        while held:
            request = held.popleft()[0]
            if request not in partial:  # a run sent in part was in the FIFO: failed above
                request.fail(error)
        if self.owner is not None:
            owner, self.owner = self.owner, None
            owner.upstream_lost(reason)
        if self.on_closed is not None:
            self.on_closed(self)

    def close(self, reason: str = "closed by the gateway") -> None:
        self.fail(reason, expected=True)

    @property
    def idle(self) -> bool:
        return not self.fifo and not self._wbuf and not self._held and not self._reading_paused
