"""The client's side of keys: authentication, usage accounting and live key changes (a mixin
of ClientConnection).

Authentication: AUTH and HELLO … AUTH look the key up (`Authenticator`), slow down peers
that keep failing, admit the connection to its key's and instance's limits (reading the
fleet's use of a daily quota first, when new), bind the instance's pool and command table,
and lift the request framer's pre-AUTH limits to the key's.

Usage: five plain integers bumped per command by the transport (commands, bytes in and out,
and the session's denials and rate-limit refusals), handed over and zeroed by `take_usage`
when the gateway's `UsageRecorder` harvests them (`clients/usage_recorder.py`). Live changes:
`apply_principal` is how `keys.refresh.KeyRefresher` applies a key that changed under this
connection (a change notice, a keys-file reload): gone closes the connection, re-scoped
re-binds the session, new limits apply at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from redisgate.errors import StoreError
from redisgate.proxy.backend.upstream import PendingRequest
from redisgate.proxy.clients.dedicated import DedicatedConnectionMixin, DedicatedHost
from redisgate.proxy.clients.session import AuthRequest
from redisgate.proxy.keys.principals import Principal
from redisgate.proxy.wire.encode import encode_error

if TYPE_CHECKING:
    from redisgate.config import Settings
    from redisgate.proxy.backend.command_tables import CommandTables
    from redisgate.proxy.backend.pool import PoolRegistry
    from redisgate.proxy.clients.usage_recorder import UsageRecorder
    from redisgate.proxy.keys.principals import Authenticator
    from redisgate.proxy.policy.rates import LimitRegistry
    from redisgate.proxy.policy.throttle import AuthThrottle
    from redisgate.proxy.wire.requests import RequestFramer

log = logging.getLogger("redisgate.proxy.clients.connection")

# Before AUTH a client may send little: Redis's own pre-AUTH array and bulk limits (so the
# errors are Redis's), and 8 KiB in all (Redis: 10 x 16 KiB), plenty for
# `HELLO 3 AUTH user key SETNAME name`: an anonymous connection holds next to nothing.
PRE_AUTH_LIMITS: dict[str, Any] = {
    "max_array_len": 10,
    "max_bulk_bytes": 16384,
    "max_inline_bytes": 4096,
    "max_request_bytes": 8192,
    "unauthenticated": True,
}
REPLY_AUTH_UNAVAILABLE = encode_error(
    "ERR",
    "authentication is temporarily unavailable (the key store cannot be reached); retry shortly",
)


class KeyEventsHost(DedicatedHost, Protocol):
    """What this part of a client connection needs of the gateway (and the dedicated part)."""

    @property
    def authenticator(self) -> Authenticator: ...
    @property
    def throttle(self) -> AuthThrottle: ...
    @property
    def limits(self) -> LimitRegistry: ...
    @property
    def pools(self) -> PoolRegistry: ...
    @property
    def tables(self) -> CommandTables: ...
    @property
    def usage(self) -> UsageRecorder: ...
    def in_background(self, work: Coroutine[Any, Any, None]) -> None: ...


class KeyEventsMixin(DedicatedConnectionMixin):
    """Slotted classes combine only in a line, hence the base (it is ClientConnection's too)."""

    __slots__ = (
        "_blocked",
        "_denied_seen",
        "_limited_seen",
        "pool",
        "used_commands",
        "used_in",
        "used_limited",
        "used_out",
    )

    # Provided by ClientConnection.
    gateway: KeyEventsHost
    closing: bool
    loop: asyncio.AbstractEventLoop
    framer: RequestFramer
    settings: Settings
    peer_host: str

    def _on_authenticated(self) -> None: ...

    # --- Authentication ---------------------------------------------------------------------

    async def _authenticate(self, auth: AuthRequest, request: PendingRequest) -> None:
        session = self.session
        assert session is not None
        try:
            principal = await self.gateway.authenticator.authenticate(auth.token, self.loop.time())
        except StoreError as exc:
            # The source logs the outage once; this would repeat it for every client.
            log.debug("authentication unavailable: %s", exc)
            request.complete(REPLY_AUTH_UNAVAILABLE)
        else:
            if principal is None:
                delay = self.gateway.throttle.failure(self.peer_host, self.loop.time())
                if delay:
                    await asyncio.sleep(delay)
            else:
                self.gateway.throttle.success(self.peer_host)
                self.gateway.usage.harvest(self)  # what the previous key used stays its own
                admitted = self.gateway.limits.admit(session.client_id, principal, self.loop.time())
                if isinstance(admitted, bytes):  # max_connections: the AUTH fails, nothing else
                    request.complete(admitted)
                    self._unblock()
                    return
                if admitted.unseeded:  # what the fleet used today, before the first command
                    await self.gateway.usage.sync_quotas(unseeded_only=True)
                session.rate = admitted.gate
                self._on_authenticated()
                if self.pool is None or self.pool.instance != principal.instance:
                    self.pool = self.gateway.pools.get(principal.instance)
                    session.use_table(await self.gateway.tables.get(self.pool))
                self.framer.set_limits(
                    # The request-size limit governs; the bulk limit only bounds the header
                    # (Redis's proto-max-bulk-len), so an oversized value names the limit.
                    max_array_len=1024 * 1024,
                    max_bulk_bytes=max(self.settings.max_request_bytes, 512 * 1024 * 1024),
                    max_inline_bytes=64 * 1024,
                    max_request_bytes=min(
                        self.settings.max_request_bytes,
                        self.settings.max_request_bytes
                        if admitted.max_request_bytes is None
                        else admitted.max_request_bytes,
                    ),
                    unauthenticated=False,
                )
            request.complete(session.auth_result(auth, principal))
        self._unblock()

    def _reset(self) -> None:
        """After RESET: drop the dedicated connection (once its owed replies are in) and the
        instance, and go back to the limits of an unauthenticated client."""
        self.pool = None
        if self.session is not None:
            self.gateway.limits.release(self.session.client_id)
        self.framer.set_limits(**PRE_AUTH_LIMITS)
        if self.dedicated is None:
            return
        if self.dedicated_slots:
            self._blocked = self._reset_pending = True  # resumes in upstream_frame
        else:
            self._release_dedicated(clean=False)

    def _reset_usage(self) -> None:
        self.used_commands = self.used_in = self.used_out = self.used_limited = 0
        self._denied_seen = self._limited_seen = 0

    def take_usage(self) -> tuple[Principal | None, tuple[int, int, int, int, int]]:
        """The key in use and what it used since the last call (commands, bytes in, bytes
        out, denied, limited); the counters start again from zero."""
        session = self.session
        denied = session.denied if session is not None else 0
        limited = session.limited if session is not None else 0
        counts = (
            self.used_commands,
            self.used_in,
            self.used_out,
            denied - self._denied_seen,
            self.used_limited + limited - self._limited_seen,
        )
        self.used_commands = self.used_in = self.used_out = self.used_limited = 0
        self._denied_seen, self._limited_seen = denied, limited
        return (session.principal if session is not None else None), counts

    def apply_principal(self, principal: Principal | None) -> None:
        """The key changed while this client used it: None (revoked, expired, deleted) closes
        the connection, as Redis does for a deleted ACL user; a key moved to another backend
        closes it too (the client reconnects); otherwise the new scope applies from the next
        command."""
        session = self.session
        if session is None or session.principal is None or self.closing:
            return
        old = session.principal
        moved = principal is None or (
            principal.instance.id != old.instance.id
            or principal.instance.backend != old.instance.backend
        )
        # Subscriptions and tracking were allowed by the old scope; Redis closes such clients
        # when their user's permissions change, rather than re-checking each channel.
        stateful = session.tracker is not None and (
            session.tracker.subscribed or session.tracker.tracking
        )
        if moved or (principal.scope != old.scope and stateful):  # type: ignore[union-attr]
            log.info("%r: its key was revoked, expired, moved or re-scoped; closing", self)
            self._abort()
            return
        assert principal is not None
        session.replace_principal(principal)
        # New limits apply at once (the connection is counted already, so never refused).
        admitted = self.gateway.limits.admit(session.client_id, principal, self.loop.time())
        if not isinstance(admitted, bytes):
            session.rate = admitted.gate
            if admitted.unseeded:  # a daily quota set just now: read what was used today
                self.gateway.in_background(self.gateway.usage.sync_quotas(unseeded_only=True))
