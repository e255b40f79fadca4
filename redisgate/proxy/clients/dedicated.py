"""The dedicated-connection half of a client connection (mixed into `ClientConnection`).

A client that starts a transaction, subscribes, blocks or tracks keys borrows an upstream
connection of its own from its instance's pool. This part of the client takes it, sends on it,
sorts what comes back (replies to slots, pub/sub and pushes straight through: see
`pinning.DedicatedTracker`), gives it back when it is clean, and ends the session if it dies.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

from redisgate import metrics
from redisgate.errors import UpstreamUnavailable
from redisgate.proxy.backend.pinning import DedicatedTracker, Frame
from redisgate.proxy.backend.upstream import PendingRequest, UpstreamConnection
from redisgate.proxy.wire.encode import encode_command, encode_error

if TYPE_CHECKING:
    from redisgate.proxy.backend.pool import InstancePool
    from redisgate.proxy.clients.session import Session, Transform
    from redisgate.proxy.wire.requests import Command


class DedicatedPeer(Protocol):
    """Another client connection, as CLIENT TRACKING REDIRECT needs to see it."""

    @property
    def session(self) -> Session | None: ...
    @property
    def dedicated(self) -> UpstreamConnection | None: ...


class DedicatedHost(Protocol):
    """What this part of a client connection needs of the gateway."""

    def client_by_id(self, client_id: int) -> DedicatedPeer | None: ...


log = logging.getLogger(__name__)

_UNBLOCK_TRIES = 8  # CLIENT UNBLOCKs for one command before its connection is closed
_UNBLOCK_RETRY_S = 0.01  # times the try number: 0.01 s, 0.02 s … 0.36 s in all


class _Unblocking:
    """Receives the reply to a CLIENT UNBLOCK sent for a departed client."""

    __slots__ = ("client",)

    def __init__(self, client: DedicatedConnectionMixin) -> None:
        self.client = client

    def reply_progress(self, request: PendingRequest) -> None:
        pass

    def reply_ready(self, request: PendingRequest) -> None:
        assert request.reply is not None
        self.client.unblock_answered(request.reply)


class DedicatedConnectionMixin:
    """Borrowing, using and returning the client's dedicated upstream connection."""

    # What this half assigns; ClientConnection declares the rest.
    __slots__ = ("_reset_pending", "_unblock_tries", "dedicated", "dedicated_pool", "inflight")

    # Provided by ClientConnection.
    gateway: DedicatedHost
    session: Session | None
    pool: InstancePool | None
    dedicated: UpstreamConnection | None
    dedicated_pool: InstancePool | None
    dedicated_slots: deque[PendingRequest]
    slots: deque[PendingRequest]
    inflight: int
    closed: bool
    _eof: bool
    _reset_pending: bool

    def _write(self, data: bytes) -> None: ...
    def _abort(self) -> None: ...
    def _unblock(self) -> None: ...
    def _local_reply(self, reply: bytes) -> None: ...
    def _finish_with(self, reply: bytes) -> None: ...
    def shutdown(self) -> None: ...
    def reply_ready(self, request: PendingRequest) -> None: ...
    def reply_progress(self, request: PendingRequest) -> None: ...

    async def _acquire_dedicated(
        self, command: Command, raw: bytes, transform: Transform | None
    ) -> None:
        session, pool = self.session, self.pool
        assert session is not None and pool is not None
        try:
            conn = await pool.acquire_dedicated(session.protocol, self)
        except UpstreamUnavailable as exc:
            metrics.count_failed([command.args[0]], [])
            self._local_reply(encode_error("BACKEND", str(exc)))
            self._unblock()
            return
        if self.closed:
            pool.release_dedicated(conn, clean=True)
            return
        self.dedicated, self.dedicated_pool = conn, pool
        self._unblock_tries = 0
        session.tracker = DedicatedTracker(session.protocol)
        self._send_dedicated(command, raw, transform)
        self._unblock()

    def _send_dedicated(self, command: Command, raw: bytes, transform: Transform | None) -> None:
        session, conn = self.session, self.dedicated
        assert session is not None and session.tracker is not None and conn is not None
        args = command.args
        if session.tracker.on_send(args[0].lower(), args):
            request = PendingRequest(self, None, transform, 1, [args[0]])
            self.slots.append(request)
            self.dedicated_slots.append(request)
            self.inflight += 1
        conn.write(raw)
        if self._eof and not self._unblock_tries:
            self.leave_if_blocked()

    def leave_if_blocked(self) -> None:
        """After the client's EOF, a command waiting on the server (BLPOP, XREAD BLOCK, WAIT)
        is ended as if it timed out: Redis frees a client at EOF, blocked or not, and a
        departed client must not hold a connection, nor pop an item nobody will read.

        `CLIENT UNBLOCK <id>` goes to the backend on a shared connection; it may arrive
        before Redis has even read the blocking command (two sockets), so while the command
        still waits it is repeated, a little later each time, `_UNBLOCK_TRIES` times; then,
        or if the backend refuses it, the dedicated connection is closed, which frees the
        command too. A command Redis answered at once (BLPOP on a non-empty list) is
        answered as usual: a client that half-closed still reads every reply Redis gave."""
        if self._unblock_tries == 0:  # else a retry is already scheduled
            self._try_unblock()

    def _try_unblock(self) -> None:
        tracker = self.session.tracker if self.session is not None else None
        conn, pool = self.dedicated, self.dedicated_pool
        if self.closed or tracker is None or conn is None or pool is None:
            return
        if not tracker.blocked:
            self._unblock_tries = 0
            return
        if self._unblock_tries >= _UNBLOCK_TRIES:
            self._drop_blocked()
            return
        if self._unblock_tries == 0:
            metrics.CLIENTS_CUT["left_blocked"] += 1
        self._unblock_tries += 1
        backend_id = conn.server_client_id
        if backend_id is None:  # its HELLO is not answered yet: the id comes with it
            self._retry_unblock()
            return
        command = encode_command(["CLIENT", "UNBLOCK", backend_id])
        pool.send(PendingRequest(_Unblocking(self)), command, 2)

    def _retry_unblock(self) -> None:
        delay = _UNBLOCK_RETRY_S * self._unblock_tries
        asyncio.get_running_loop().call_later(delay, self._try_unblock)

    def unblock_answered(self, reply: bytes) -> None:
        """The backend's answer to our CLIENT UNBLOCK: `:1` unblocked (a later blocking
        command of the same pipeline may block next: look again), `:0` not blocked (yet)."""
        if self.closed or self.dedicated is None:
            return
        if reply == b":1\r\n":
            self._unblock_tries = 1
        elif reply != b":0\r\n":
            self._drop_blocked()  # refused (e.g. an ACL without CLIENT UNBLOCK)
            return
        self._retry_unblock()

    def _drop_blocked(self) -> None:
        """Close the dedicated connection under a blocked command; its reply is dropped."""
        abandoned = set(self.dedicated_slots)
        for request in abandoned:
            request.cancelled = True
        self.inflight -= len(abandoned)
        self.dedicated_slots.clear()
        kept = [slot for slot in self.slots if slot not in abandoned]
        self.slots.clear()
        self.slots.extend(kept)
        self._release_dedicated(clean=False)
        self.shutdown()  # what is still owed is written, then the connection closes

    def _backend_id_of(self, client_id: int) -> int | None:
        """The backend id of another client's dedicated connection, for CLIENT TRACKING
        REDIRECT: only a client of the same instance, holding a dedicated connection."""
        target = self.gateway.client_by_id(client_id)
        if target is None or target.dedicated is None or self.session is None:
            return None
        mine = self.session.principal
        theirs = target.session.principal if target.session is not None else None
        if mine is None or theirs is None or mine.instance != theirs.instance:
            return None
        return target.dedicated.server_client_id

    # DedicatedOwner interface

    def upstream_frame(self, frame: bytes) -> None:
        tracker = self.session.tracker if self.session else None
        if tracker is None:
            return
        if tracker.on_frame(frame) is Frame.PASS:
            self._write(frame)
        elif self.dedicated_slots:
            self.dedicated_slots.popleft().complete(frame)
        else:
            log.error("%r: a reply with no request on its dedicated connection", self)
            self._abort()
            return
        if self.dedicated_slots:
            return
        if self._reset_pending:
            self._reset_pending = False
            self._release_dedicated(clean=False)
            self._unblock()
        elif tracker.clean:
            self._release_dedicated(clean=True)

    def upstream_lost(self, reason: str) -> None:
        """The dedicated connection died: its state is gone, so this client's session ends."""
        self.dedicated = self.dedicated_pool = None
        if self.session is not None:
            self.session.tracker = None
        error = encode_error("BACKEND", reason)
        while self.dedicated_slots:
            self.dedicated_slots.popleft().fail(error)
        self._finish_with(
            encode_error(
                "BACKEND",
                "the connection holding this client's "
                "transaction or subscription was lost; reconnect",
            )
        )

    def _release_dedicated(self, clean: bool) -> None:
        conn, pool = self.dedicated, self.dedicated_pool
        self.dedicated = self.dedicated_pool = None
        if self.session is not None:
            self.session.tracker = None
        if conn is not None and pool is not None:
            pool.release_dedicated(conn, clean=clean and not self.closed)
