"""The backend ACL users of one instance's keys, and the connections their scripts run on.

Theory of operation
-------------------
A key limited to key or channel patterns runs its scripts (EVAL, EVALSHA, FCALL and their
`_RO` forms) on an instance owning its server as a Redis ACL user of its own
(`backend_acl`: name, password, rules), so Redis checks every `redis.call()` inside. Three
rules keep that from being skipped or going stale:

1. A script is only ever sent on a connection that authenticated as the key's user (HELLO
   AUTH in its handshake), and the user's rules are set (`ACL SETUSER … reset on >pw
   <rules>`, on the instance's own shared connection, as the gateway's user) and answered
   before every new such connection is opened. A server that restarted (and forgot its ACL
   users) dropped the old connections with it, so the next script recreates the user first;
   a restart between SETUSER and the new connection's AUTH (WRONGPASS) is retried once.
2. A script runs only under the rules its session's principal implies *now*: `ready` hands
   out a connection only if those are the rules last applied; otherwise `connection` applies
   them first (under the user's lock, so concurrent clients apply and connect once). Redis
   applies a changed user's rules to its open connections at once.
3. A key that is revoked, deleted, moved or re-scoped is applied here by the gateway (`update`,
   from its live change notices or the keys file's reload): gone, its user is deleted
   (`ACL DELUSER`, which also closes every connection authenticated as it, any gateway's);
   re-scoped, its rules are set again.

What a tenant can make the gateway hold: one connection per key user and protocol (the
scripts of all the key's clients share it, FIFO-paired and windowed like the instance's shared
connections), at most `max_open_users` keys with connections open per instance (the least
recently used idle one is closed to make room; when none is idle the script is refused), and
connections idle for `idle_close_s` are closed (the user stays in Redis for the next script).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from redisgate import metrics
from redisgate.backends import Backend
from redisgate.errors import LimitExceeded, UpstreamUnavailable
from redisgate.proxy.backend import key_user_rules
from redisgate.proxy.backend.upstream import PendingRequest, State, UpstreamConnection
from redisgate.proxy.wire.encode import encode_error
from redisgate.proxy.wire.replies import is_error

log = logging.getLogger(__name__)

_ADMIN_TIMEOUT_S = 5.0  # an ACL SETUSER/DELUSER answered within this, or the script fails
_MAX_KNOWN_USERS = 10_000  # users remembered per instance (to delete them on revocation)


class InstanceLink(Protocol):
    """What the key users need of their instance's pool."""

    backend: Backend

    def send(self, request: PendingRequest, raw: bytes, protocol: int) -> None: ...

    def user_connection(
        self, backend: Backend, protocol: int, on_closed: Callable[[UpstreamConnection], None]
    ) -> UpstreamConnection: ...

    async def open(self, conn: UpstreamConnection) -> None: ...


@dataclass(slots=True, eq=False)
class _User:
    name: str
    rules: str = ""  # what this gateway last set in Redis ("": nothing yet)
    conns: dict[int, UpstreamConnection] = field(default_factory=dict)  # by protocol
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    used_at: float = 0.0

    def open_conns(self) -> list[UpstreamConnection]:
        return [c for c in self.conns.values() if c.state is not State.CLOSED]

    def idle(self) -> bool:
        return not self.lock.locked() and all(c.idle for c in self.conns.values())


class _Answer:
    """Collects the reply to one ACL command (a ReplyOwner)."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def reply_progress(self, request: PendingRequest) -> None:
        pass

    def reply_ready(self, request: PendingRequest) -> None:
        if not self.future.done() and request.reply is not None:
            self.future.set_result(request.reply)


class KeyUsers:
    """The key users of one instance (see the module docstring)."""

    def __init__(
        self,
        link: InstanceLink,
        clock: Callable[[], float],
        *,
        max_open_users: int = 16,
        idle_close_s: float = 60.0,
    ) -> None:
        self._link = link
        self._clock = clock
        self.max_open_users = max_open_users
        self.idle_close_s = idle_close_s
        self._users: OrderedDict[str, _User] = OrderedDict()  # key id -> user, oldest first
        self.closed = False

    def __repr__(self) -> str:
        return f"<KeyUsers [{len(self._users)} users, {self.open_users()} with connections]>"

    def key_ids(self) -> list[str]:
        return list(self._users)

    def open_users(self) -> int:
        return sum(1 for user in self._users.values() if user.open_conns())

    def connections(self) -> Iterator[UpstreamConnection]:
        for user in list(self._users.values()):
            yield from user.open_conns()

    # --- Scripts ----------------------------------------------------------------------------

    def ready(self, key_id: str, rules: str, protocol: int) -> UpstreamConnection | None:
        """The key user's open connection if Redis holds `rules` for it, else None (then
        `connection` sets it up)."""
        user = self._users.get(key_id)
        if user is None or user.rules != rules or user.lock.locked():
            return None
        conn = user.conns.get(protocol)
        if conn is None or conn.state is State.CLOSED:
            return None
        user.used_at = self._clock()
        return conn

    async def send_when_ready(
        self, request: PendingRequest, raw: bytes, key_id: str, rules: str, protocol: int
    ) -> None:
        """Set the key user up (and connect as it), then send the script; a failure is the
        request's reply (`-BACKEND …`, or the script-connection limit's `-ERR`)."""
        try:
            conn = await self.connection(key_id, rules, protocol)
        except UpstreamUnavailable as exc:
            request.fail(encode_error("BACKEND", str(exc)))
            return
        except LimitExceeded as exc:
            metrics.LIMITED["script_connections"] += 1
            request.fail(encode_error("ERR", str(exc)))
            return
        if request.cancelled:  # its client left meanwhile: nothing to run it for
            return
        conn.send(request, raw)

    async def connection(self, key_id: str, rules: str, protocol: int) -> UpstreamConnection:
        """A connection authenticated as the key's user, whose rules are `rules`; raises
        UpstreamUnavailable (the server cannot be reached or refused the user) or
        LimitExceeded (too many keys run scripts on this instance at once)."""
        if self.closed:
            raise UpstreamUnavailable("the instance's connections are closed")
        user = self._users.get(key_id)
        if user is None:
            user = self._users[key_id] = _User(key_user_rules.user_name(key_id))
            self._forget_old()
        self._users.move_to_end(key_id)
        user.used_at = self._clock()
        async with user.lock:
            for attempt in (1, 2):
                conn = user.conns.get(protocol)
                if conn is not None and conn.state is State.CLOSED:
                    conn = None
                if conn is None and not user.open_conns():
                    self._make_room(user)
                if conn is None or user.rules != rules:
                    # Set before every new connection: a restarted server forgot its users.
                    await self._set(user, key_id, rules)
                if conn is not None:
                    return conn
                conn = await self._connect(user, key_id, protocol)
                if conn.state is not State.CLOSED:
                    return conn
                if attempt == 1 and "WRONGPASS" in conn.close_reason:
                    user.rules = ""  # the server restarted after SETUSER: set up again
                    continue
                raise UpstreamUnavailable(conn.close_reason)
        raise AssertionError("unreachable")

    # --- Changes of keys --------------------------------------------------------------------

    async def update(self, key_id: str, rules: str | None) -> None:
        """The key changed: `rules` are its user's rules now, None: it may run no script as
        its user here any more (revoked, deleted, moved, or re-scoped to every key and
        channel, or to no scripting), so the user is deleted. Failures are logged: a script
        re-applies its rules before it runs anyway."""
        user = self._users.get(key_id)
        if user is None:
            return
        async with user.lock:
            try:
                if rules is None:
                    if self._users.get(key_id) is user:
                        del self._users[key_id]
                    for conn in user.open_conns():
                        conn.close("the key's backend user was deleted")
                    await self._admin(key_user_rules.deluser_command(user.name), "delete")
                elif rules != user.rules:
                    await self._set(user, key_id, rules)
            except UpstreamUnavailable as exc:
                log.warning("key %s: its backend user could not be updated: %s", key_id, exc)

    # --- Bounds and closing -----------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """Close the connections of key users idle for `idle_close_s`."""
        for user in list(self._users.values()):
            if user.conns and now - user.used_at > self.idle_close_s and user.idle():
                self._close_conns(user, "idle")

    def close(self) -> None:
        self.closed = True
        for user in self._users.values():
            self._close_conns(user, "closed by the gateway")

    def _make_room(self, wanting: _User) -> None:
        """Before a user without connections opens one: close the least recently used idle
        user's connections when `max_open_users` have some, or refuse."""
        holding = [u for u in self._users.values() if u is not wanting and u.open_conns()]
        if len(holding) < self.max_open_users:
            return
        idle = [u for u in holding if u.idle()]
        if not idle:
            raise LimitExceeded(
                f"max script connections exceeded (limit {self.max_open_users} keys limited "
                "to patterns running scripts at once on this instance); retry shortly"
            )
        self._close_conns(min(idle, key=lambda u: u.used_at), "making room for another key")

    def _close_conns(self, user: _User, why: str) -> None:
        conns, user.conns = list(user.conns.values()), {}
        for conn in conns:
            conn.on_closed = None
            conn.close(f"key user connection closed: {why}")

    def _forget_old(self) -> None:
        """Bound the registry: forget the oldest users without connections."""
        while len(self._users) > _MAX_KNOWN_USERS:
            oldest = next((k for k, u in self._users.items() if not u.conns), None)
            if oldest is None:
                return
            del self._users[oldest]

    # --- Redis ------------------------------------------------------------------------------

    async def _set(self, user: _User, key_id: str, rules: str) -> None:
        password = key_user_rules.user_password(self._link.backend.password, key_id)
        await self._admin(key_user_rules.setuser_command(user.name, password, rules), "set up")
        user.rules = rules

    async def _admin(self, raw: bytes, what: str) -> None:
        """Send an ACL command as the gateway's own user and check its reply."""
        answer = _Answer()
        self._link.send(PendingRequest(answer), raw, 2)
        try:
            async with asyncio.timeout(_ADMIN_TIMEOUT_S):
                reply = await answer.future
        except TimeoutError:
            raise UpstreamUnavailable(
                f"the instance's Redis did not answer within {_ADMIN_TIMEOUT_S:g}s"
            ) from None
        if is_error(reply):
            text = reply[1:].strip().decode(errors="replace")
            if text.startswith("BACKEND "):
                raise UpstreamUnavailable(text.removeprefix("BACKEND "))
            raise UpstreamUnavailable(
                f"the instance's Redis refused to {what} this key's ACL user: {text}"
            )

    async def _connect(self, user: _User, key_id: str, protocol: int) -> UpstreamConnection:
        """A new connection as the user, once its handshake (HELLO AUTH) is answered."""
        backend = dataclasses.replace(
            self._link.backend,
            username=user.name,
            password=key_user_rules.user_password(self._link.backend.password, key_id),
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settled(_conn: UpstreamConnection) -> None:
            if not done.done():
                done.set_result(None)

        def closed(conn: UpstreamConnection) -> None:
            if user.conns.get(protocol) is conn:
                del user.conns[protocol]
            settled(conn)

        conn = self._link.user_connection(backend, protocol, closed)
        conn.on_ready = settled
        user.conns[protocol] = conn
        await self._link.open(conn)
        if conn.state is not State.CLOSED:
            try:
                async with asyncio.timeout(_ADMIN_TIMEOUT_S):
                    await done
            except TimeoutError:
                conn.fail(f"no handshake reply within {_ADMIN_TIMEOUT_S:g}s")
        return conn
