"""A client connection's key: authenticating it, and applying its changes (`KeyBinding`).

Authentication: AUTH and HELLO … AUTH look the key up (`Authenticator`), slow down peers
that keep failing, admit the connection to its key's and instance's limits (reading the
fleet's use of a daily quota first, when new), bind the instance's pool and command table,
and lift the request framer's pre-AUTH limits (`wire/framing_limits.py`) to the key's.

Before a new key binds, what the previous one used is harvested (`UsageRecorder`,
`clients/usage_recorder.py`). Live changes: `apply` is how `keys.refresh.KeyRefresher`
applies a key that changed under this connection (a change notice, a keys-file reload): gone
closes the connection, re-scoped re-binds the session, new limits apply at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from redisgate.errors import StoreError
from redisgate.proxy.backend.upstream import PendingRequest
from redisgate.proxy.clients.decisions import AuthRequest
from redisgate.proxy.clients.dedicated import DedicatedHost
from redisgate.proxy.clients.usage_recorder import UsageHolder
from redisgate.proxy.keys.principals import Principal
from redisgate.proxy.wire import framing_limits
from redisgate.proxy.wire.encode import encode_error

if TYPE_CHECKING:
    from redisgate.config import Settings
    from redisgate.proxy.backend.command_tables import CommandTables
    from redisgate.proxy.backend.pool import InstancePool, PoolRegistry
    from redisgate.proxy.clients.session import Session
    from redisgate.proxy.clients.usage_recorder import UsageRecorder
    from redisgate.proxy.keys.principals import Authenticator
    from redisgate.proxy.policy.rates import LimitRegistry
    from redisgate.proxy.policy.throttle import AuthThrottle
    from redisgate.proxy.wire.requests import RequestFramer

log = logging.getLogger("redisgate.proxy.clients.connection")

REPLY_AUTH_UNAVAILABLE = encode_error(
    "ERR",
    "authentication is temporarily unavailable (the key store cannot be reached); retry shortly",
)


class KeyHost(DedicatedHost, Protocol):
    """What a client's key binding needs of the gateway."""

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
    def authenticated(self, client: Any) -> None: ...


class KeyClient(UsageHolder, Protocol):
    """What the binding needs of its client connection."""

    session: Session | None
    pool: InstancePool | None
    framer: RequestFramer

    @property
    def gateway(self) -> KeyHost: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def peer_host(self) -> str: ...
    @property
    def closing(self) -> bool: ...
    def resume(self) -> None: ...
    def abort(self) -> None: ...


class KeyBinding:
    """The key a client connection authenticated with: AUTH, RESET and live key changes."""

    __slots__ = ("client",)

    def __init__(self, client: KeyClient) -> None:
        self.client = client

    async def authenticate(self, auth: AuthRequest, request: PendingRequest) -> None:
        """Look the key up and answer `request`; the client takes no command meanwhile and
        resumes after."""
        client = self.client
        session, gateway = client.session, client.gateway
        assert session is not None
        loop = asyncio.get_running_loop()
        try:
            principal = await gateway.authenticator.authenticate(auth.token, loop.time())
        except StoreError as exc:
            # The source logs the outage once; this would repeat it for every client.
            log.debug("authentication unavailable: %s", exc)
            request.complete(REPLY_AUTH_UNAVAILABLE)
        else:
            if principal is None:
                delay = gateway.throttle.failure(client.peer_host, loop.time())
                if delay:
                    await asyncio.sleep(delay)
            else:
                gateway.throttle.success(client.peer_host)
                gateway.usage.harvest(client)  # what the previous key used stays its own
                admitted = gateway.limits.admit(session.client_id, principal, loop.time())
                if isinstance(admitted, bytes):  # max_connections: the AUTH fails, nothing else
                    request.complete(admitted)
                    client.resume()
                    return
                if admitted.unseeded:  # what the fleet used today, before the first command
                    await gateway.usage.sync_quotas(unseeded_only=True)
                session.rate = admitted.gate
                gateway.authenticated(client)
                if client.pool is None or client.pool.instance != principal.instance:
                    client.pool = gateway.pools.get(principal.instance)
                    session.use_table(await gateway.tables.get(client.pool))
                settings = client.settings
                client.framer.set_limits(
                    # The request-size limit governs; the bulk limit only bounds the header
                    # (Redis's proto-max-bulk-len), so an oversized value names the limit.
                    max_array_len=framing_limits.DEFAULT_MAX_ARRAY_LEN,
                    max_bulk_bytes=max(
                        settings.max_request_bytes, framing_limits.DEFAULT_MAX_BULK_BYTES
                    ),
                    max_inline_bytes=framing_limits.DEFAULT_MAX_INLINE_BYTES,
                    max_request_bytes=min(
                        settings.max_request_bytes,
                        settings.max_request_bytes
                        if admitted.max_request_bytes is None
                        else admitted.max_request_bytes,
                    ),
                    unauthenticated=False,
                )
            request.complete(session.auth_result(auth, principal))
        client.resume()

    def release(self) -> None:
        """After RESET: the connection leaves its key's limits and goes back to the limits of
        an unauthenticated client."""
        client = self.client
        if client.session is not None:
            client.gateway.limits.release(client.session.client_id)
        client.framer.set_limits(**framing_limits.PRE_AUTH_LIMITS)

    def apply(self, principal: Principal | None) -> None:
        """The key changed while this client used it: None (revoked, expired, deleted) closes
        the connection, as Redis does for a deleted ACL user; a key moved to another backend
        closes it too (the client reconnects); otherwise the new scope applies from the next
        command."""
        client = self.client
        session = client.session
        if session is None or session.principal is None or client.closing:
            return
        old = session.principal
        # Subscriptions and tracking were allowed by the old scope; Redis closes such clients
        # when their user's permissions change, rather than re-checking each channel.
        stateful = session.tracker is not None and (
            session.tracker.subscribed or session.tracker.tracking
        )
        if (
            principal is None
            or principal.instance.id != old.instance.id
            or principal.instance.backend != old.instance.backend
            or (principal.scope != old.scope and stateful)
        ):
            log.info("%r: its key was revoked, expired, moved or re-scoped; closing", client)
            client.abort()
            return
        session.replace_principal(principal)
        # New limits apply at once (the connection is counted already, so never refused).
        gateway = client.gateway
        loop = asyncio.get_running_loop()
        admitted = gateway.limits.admit(session.client_id, principal, loop.time())
        if not isinstance(admitted, bytes):
            session.rate = admitted.gate
            if admitted.unseeded:  # a daily quota set just now: read what was used today
                gateway.in_background(gateway.usage.sync_quotas(unseeded_only=True))
