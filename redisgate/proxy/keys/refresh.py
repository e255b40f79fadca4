"""Live key refresh: a key that changed is read again and applied wherever it is in use.

Keys are in use in two places: the live client connections authenticated with them, and the
backend ACL users the pools set up for scripts of pattern-limited keys (`backend/key_users.py`).
`KeyRefresher.refresh` reads each changed key again (through the `Authenticator`, which asks
the key source) and applies the answer to both: a key that is gone (revoked, expired,
deleted) closes its connections, as Redis closes a deleted ACL user's, and deletes its
backend users; a changed key re-scopes its connections and re-sets its users' rules.

Who asks: `live.LivePolicy` on a change notice (and for every key in use after the LISTEN
connection comes back), and the gateway's sweep when the keys file was reloaded. The work
flows one way, asker → refresher → each connection (`apply_principal`, after which the
connection closes itself or takes the new principal) and each pool's key users; nothing here
calls back into whoever asked, and nothing here knows a gateway: the connections, the pools
and the command tables are small Protocols of exactly what is used of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from redisgate.backends import Backend
from redisgate.errors import StoreError
from redisgate.proxy.backend import key_user_rules
from redisgate.proxy.keys.principals import Authenticator, Instance, Principal

if TYPE_CHECKING:
    from redisgate.proxy.commands.table import CommandTable

log = logging.getLogger(__name__)


class HasPrincipal(Protocol):
    """A client connection's session, as far as keys go: the principal it runs as (None
    before AUTH)."""

    @property
    def principal(self) -> Principal | None: ...


class KeyedConnection(Protocol):
    """A live client connection: the key its session uses, and how a change of that key is
    applied to it (None: the key is gone, and the connection closes itself)."""

    @property
    def session(self) -> HasPrincipal | None: ...
    def apply_principal(self, principal: Principal | None) -> None: ...


class KeyUserSet(Protocol):
    """The backend ACL users one pool set up for keys (`backend.key_users.KeyUsers`)."""

    def key_ids(self) -> list[str]: ...
    async def update(self, key_id: str, rules: str | None) -> None: ...


class KeyUserPool(Protocol):
    """An instance's pool, as far as its key users go."""

    @property
    def instance(self) -> Instance: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def key_users(self) -> KeyUserSet: ...


_Pool = TypeVar("_Pool", bound=KeyUserPool)
_Pool_co = TypeVar("_Pool_co", bound=KeyUserPool, covariant=True)


class KeyUserPools(Protocol[_Pool_co]):
    """Every pool (`backend.pool.PoolRegistry`), and closing an instance's pools."""

    def __iter__(self) -> Iterator[_Pool_co]: ...
    def discard(self, instance_id: str) -> None: ...


class KeyRefresher(Generic[_Pool]):
    """Reads changed keys again and applies them to the connections and pools using them.

    `clients` is a live view (the gateway's set of connections, read at each call), `tables`
    gives a pool's command table (the key users' rules are built from it)."""

    def __init__(
        self,
        authenticator: Authenticator,
        clients: Iterable[KeyedConnection],
        pools: KeyUserPools[_Pool],
        tables: Callable[[_Pool], Awaitable[CommandTable]],
    ) -> None:
        self.authenticator = authenticator
        self.clients = clients
        self.pools = pools
        self.tables = tables
        self._background: set[asyncio.Task[None]] = set()  # key user updates under way

    def __repr__(self) -> str:
        return f"<KeyRefresher [{len(self._background)} key user updates]>"

    def live_keys(self, instance_id: str | None = None, org_id: str | None = None) -> set[str]:
        """Ids of the keys with live sessions (of one instance or org, if given), and of the
        keys with a backend ACL user this gateway set up (of that instance; `key_users`)."""
        found = set()
        if org_id is None:
            for pool in self.pools:
                if instance_id in (None, pool.instance.id):
                    found.update(pool.key_users.key_ids())
        for client in self.clients:
            principal = client.session.principal if client.session else None
            if (
                principal is not None
                and instance_id in (None, principal.instance.id)
                and org_id in (None, principal.org_id)
            ):
                found.add(principal.key_id)
        return found

    async def refresh(self, keys: set[str], instance_id: str | None = None) -> None:
        """Read each key again from the source and apply it to its live sessions: a key that
        is gone (revoked, expired, deleted) closes them, a changed one re-scopes them; and to
        its backend ACL users (deleted, or given the new rules: `_update_key_user`). With
        `instance_id` (that instance changed), its pools go when none of its keys remain."""
        auth, loop = self.authenticator, asyncio.get_running_loop()
        # One pass over the clients, not one per key: a LISTEN reconnect re-reads every live key.
        by_key: dict[str, list[KeyedConnection]] = {}
        for client in self.clients:
            current = client.session.principal if client.session is not None else None
            if current is not None and current.key_id in keys:
                by_key.setdefault(current.key_id, []).append(client)
        users: dict[str, list[_Pool]] = {}
        for pool in self.pools:
            for key_id in pool.key_users.key_ids():
                if key_id in keys:
                    users.setdefault(key_id, []).append(pool)
        kept = False
        for key_id in by_key.keys() | users.keys():
            sessions = by_key.get(key_id, [])
            try:
                record = await auth.lookup(key_id, loop.time())
            except StoreError as exc:
                # It changed and cannot be read: fail closed (the clients reconnect and
                # authenticate again once PostgreSQL answers).
                log.warning("cannot re-read changed key %s, closing its sessions: %s", key_id, exc)
                record = None
            principal: Principal | None = None
            if record is not None and not record.principal.expired(auth.wall_clock()):
                principal = record.principal
            if principal is None:
                auth.forget(key_id)
                log.info("key %s is gone: closing its %d session(s)", key_id, len(sessions))
            elif sessions:
                kept = True
            for client in sessions:
                client.apply_principal(principal)
            for pool in users.get(key_id, ()):
                self._in_background(self._update_key_user(pool, key_id, principal))
        if instance_id is not None and not kept:  # deleted, or changed with nobody on it
            self.pools.discard(instance_id)

    async def _update_key_user(self, pool: _Pool, key_id: str, principal: Principal | None) -> None:
        """Give the key's backend ACL user on `pool`'s server the rules `principal` implies,
        or delete it when the key may no longer run scripts as that user there."""
        rules = None
        if (
            principal is not None
            and principal.instance.id == pool.instance.id
            and principal.instance.backend == pool.backend
            and key_user_rules.runs_as_key_user(principal.scope, shared=pool.backend.shared)
        ):
            table = await self.tables(pool)
            if key_user_rules.may_run_scripts(principal.scope, table):
                rules = key_user_rules.user_rules(principal.scope, table, pool.backend.db)
        await pool.key_users.update(key_id, rules)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
