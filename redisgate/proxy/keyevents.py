"""The client's side of usage accounting and of live key changes (a mixin of ClientConnection).

Usage: five plain integers bumped per command by the transport (commands, bytes in and out,
and the session's denials and rate-limit refusals), handed over and zeroed by `take_usage`
when the gateway harvests them (`proxy.usage`). Live changes: `apply_principal` is how the
gateway applies a key that changed under this connection (`live.LivePolicy`, keys-file
reloads): gone closes the connection, re-scoped re-binds the session, new limits apply at once.
"""

from __future__ import annotations

import asyncio
import logging

from redisgate.proxy.dedicated import DedicatedConnectionMixin
from redisgate.proxy.principals import Principal

log = logging.getLogger("redisgate.proxy.client")


class KeyEventsMixin(DedicatedConnectionMixin):
    """Slotted classes combine only in a line, hence the base (it is ClientConnection's too)."""

    __slots__ = (
        "_denied_seen",
        "_limited_seen",
        "used_commands",
        "used_in",
        "used_limited",
        "used_out",
    )

    # Provided by ClientConnection.
    closing: bool
    loop: asyncio.AbstractEventLoop

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
                self.gateway.in_background(self.gateway.sync_quotas(unseeded_only=True))
