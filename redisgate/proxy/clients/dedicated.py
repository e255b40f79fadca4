"""A client connection's dedicated upstream connection, while it holds one (`DedicatedLink`).

A client that starts a transaction, subscribes, blocks or tracks keys borrows an upstream
connection of its own from its instance's pool. The link takes it, sends on it, sorts what
comes back (replies to the client's slots, pub/sub and pushes straight through: see
`pinning.DedicatedTracker`), gives it back when it is clean, ends the session if it dies, and
after the client's EOF ends a command still blocked on the server (`leave_if_blocked`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

from redisgate import metrics
from redisgate.errors import UpstreamUnavailable
from redisgate.proxy.backend.pinning import DedicatedTracker, Frame
from redisgate.proxy.backend.upstream import PendingRequest, ReplyOwner, UpstreamConnection
from redisgate.proxy.wire.encode import encode_command, encode_error

if TYPE_CHECKING:
    from redisgate.proxy.backend.pool import InstancePool
    from redisgate.proxy.clients.decisions import Transform
    from redisgate.proxy.clients.session import Session
    from redisgate.proxy.wire.requests import Command

log = logging.getLogger(__name__)

_UNBLOCK_TRIES = 8  # CLIENT UNBLOCKs for one command before its connection is closed
_UNBLOCK_RETRY_S = 0.01  # times the try number: 0.01 s, 0.02 s … 0.36 s in all


class DedicatedPeer(Protocol):
    """Another client connection, as CLIENT TRACKING REDIRECT needs to see it."""

    @property
    def session(self) -> Session | None: ...
    @property
    def dedicated(self) -> UpstreamConnection | None: ...


class DedicatedHost(Protocol):
    """What the link needs of the gateway: the other clients, for REDIRECT."""

    def client_by_id(self, client_id: int) -> DedicatedPeer | None: ...


class DedicatedClient(ReplyOwner, Protocol):
    """What the link needs of its client connection: the session, the reply slots it shares
    with the shared connections (in command order) and how to answer, resume or end."""

    session: Session | None
    slots: deque[PendingRequest]
    inflight: int

    @property
    def closed(self) -> bool: ...
    @property
    def eof(self) -> bool: ...
    @property
    def gateway(self) -> DedicatedHost: ...
    def write(self, data: bytes) -> None: ...
    def local_reply(self, reply: bytes) -> None: ...
    def resume(self) -> None: ...
    def finish_with(self, reply: bytes) -> None: ...
    def shutdown(self) -> None: ...
    def abort(self) -> None: ...


class _Unblocking:
    """Receives the reply to a CLIENT UNBLOCK sent for a departed client."""

    __slots__ = ("link",)

    def __init__(self, link: DedicatedLink) -> None:
        self.link = link

    def reply_progress(self, request: PendingRequest) -> None:
        pass

    def reply_ready(self, request: PendingRequest) -> None:
        assert request.reply is not None
        self.link.unblock_answered(request.reply)


_NO_SLOTS: deque[PendingRequest] = deque(maxlen=0)  # empty for good: what it is given is dropped


class DedicatedLink:
    """Borrowing, using and returning one client's dedicated upstream connection."""

    __slots__ = ("_unblock_tries", "client", "conn", "pool", "reset_pending", "slots")

    def __init__(self, client: DedicatedClient) -> None:
        self.client = client
        self.conn: UpstreamConnection | None = None
        self.pool: InstancePool | None = None  # where `conn` goes back to
        # The client's slots answered on `conn`; a deque of its own once it borrows one (most
        # clients never do, and ten thousand idle ones would hold 7 MB of empty deques).
        self.slots: deque[PendingRequest] = _NO_SLOTS
        self.reset_pending = False  # RESET: give `conn` back once `slots` are answered
        self._unblock_tries = 0

    async def acquire(
        self, pool: InstancePool, command: Command, raw: bytes, transform: Transform | None
    ) -> None:
        """Borrow a connection from `pool` and send the command that needs it; the client
        takes no command meanwhile and resumes after."""
        client = self.client
        session = client.session
        assert session is not None
        try:
            conn = await pool.acquire_dedicated(session.protocol, self)
        except UpstreamUnavailable as exc:
            metrics.count_failed([command.args[0]], [])
            client.local_reply(encode_error("BACKEND", str(exc)))
            client.resume()
            return
        if client.closed:
            pool.release_dedicated(conn, clean=True)
            return
        self.conn, self.pool = conn, pool
        if self.slots is _NO_SLOTS:
            self.slots = deque()
        self._unblock_tries = 0
        session.tracker = DedicatedTracker(session.protocol)
        self.send(command, raw, transform)
        client.resume()

    def send(self, command: Command, raw: bytes, transform: Transform | None) -> None:
        client, conn = self.client, self.conn
        session = client.session
        assert session is not None and session.tracker is not None and conn is not None
        args = command.args
        if session.tracker.on_send(args[0].lower(), args):
            request = PendingRequest(client, None, transform, 1, [args[0]])
            client.slots.append(request)
            self.slots.append(request)
            client.inflight += 1
        conn.write(raw)
        if client.eof and not self._unblock_tries:
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
        session = self.client.session
        tracker = session.tracker if session is not None else None
        conn, pool = self.conn, self.pool
        if self.client.closed or tracker is None or conn is None or pool is None:
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
        if self.client.closed or self.conn is None:
            return
        if reply == b":1\r\n":
            self._unblock_tries = 1
        elif reply != b":0\r\n":
            self._drop_blocked()  # refused (e.g. an ACL without CLIENT UNBLOCK)
            return
        self._retry_unblock()

    def _drop_blocked(self) -> None:
        """Close the dedicated connection under a blocked command; its reply is dropped."""
        client = self.client
        abandoned = set(self.slots)
        for request in abandoned:
            request.cancelled = True
        client.inflight -= len(abandoned)
        self.slots.clear()
        kept = [slot for slot in client.slots if slot not in abandoned]
        client.slots.clear()
        client.slots.extend(kept)
        self.release(clean=False)
        client.shutdown()  # what is still owed is written, then the connection closes

    def fail_blocked(self, reply: bytes) -> bool:
        """The gateway is stopping: a command waiting on the server gets `reply` now and the
        connection goes (`ClientConnection.stop`); False when nothing was blocked."""
        session = self.client.session
        tracker = session.tracker if session is not None else None
        if tracker is None or not tracker.blocked or self.conn is None:
            return False
        metrics.CLIENTS_CUT["shutdown"] += 1
        owed = list(self.slots)
        self.slots.clear()
        self.release(clean=False)
        for request in owed:
            request.fail(reply)
        return True

    def backend_id_of(self, client_id: int) -> int | None:
        """The backend id of another client's dedicated connection, for CLIENT TRACKING
        REDIRECT: only a client of the same instance, holding a dedicated connection."""
        target = self.client.gateway.client_by_id(client_id)
        session = self.client.session
        if target is None or target.dedicated is None or session is None:
            return None
        mine = session.principal
        theirs = target.session.principal if target.session is not None else None
        if mine is None or theirs is None or mine.instance != theirs.instance:
            return None
        return target.dedicated.server_client_id

    # DedicatedOwner interface

    def upstream_frame(self, frame: bytes) -> None:
        client = self.client
        tracker = client.session.tracker if client.session else None
        if tracker is None:
            return
        if tracker.on_frame(frame) is Frame.PASS:
            client.write(frame)
        elif self.slots:
            self.slots.popleft().complete(frame)
        else:
            log.error("%r: a reply with no request on its dedicated connection", client)
            client.abort()
            return
        if self.slots:
            return
        if self.reset_pending:
            self.reset_pending = False
            self.release(clean=False)
            client.resume()
        elif tracker.clean:
            self.release(clean=True)

    def upstream_lost(self, reason: str) -> None:
        """The dedicated connection died: its state is gone, so this client's session ends."""
        self.conn = self.pool = None
        client = self.client
        if client.session is not None:
            client.session.tracker = None
        error = encode_error("BACKEND", reason)
        while self.slots:
            self.slots.popleft().fail(error)
        client.finish_with(
            encode_error(
                "BACKEND",
                "the connection holding this client's "
                "transaction or subscription was lost; reconnect",
            )
        )

    def release(self, clean: bool) -> None:
        """Give the connection back (`clean`: reusable as it is; else it is reset or closed)."""
        conn, pool = self.conn, self.pool
        self.conn = self.pool = None
        if self.client.session is not None:
            self.client.session.tracker = None
        if conn is not None and pool is not None:
            pool.release_dedicated(conn, clean=clean and not self.client.closed)
