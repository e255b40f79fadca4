"""Live policy: the control plane's changes reach live sessions within a second.

`ChangeListener` LISTENs for the control plane's change notices and stays listening;
`LivePolicy` turns each notice into the keys to read again and hands them to the
`refresh.KeyRefresher`, which re-reads them and applies them where they are in use: a key that
is revoked, expired or deleted closes its sessions (as Redis closes the connections of a
deleted ACL user), a re-scoped key's sessions get their new principal (the next command is
checked against it), and a deleted instance's pools are drained. The flow is one way: notice →
`LivePolicy` → `KeyRefresher` → each connection; nothing calls back into the gateway.

The listener:

One dedicated asyncpg connection per gateway process LISTENs on `store.changes.CHANNEL`. Each
notice is handed to `on_change` (`LivePolicy` has what changed re-read and applied to live
sessions). The connection can die (PostgreSQL restarts, `pg_terminate_backend`, a network cut
that only a query notices); the listener then reconnects with a doubling backoff, and calls
`on_state(True)` after every (re)connection, when the gateway must re-validate everything it
cached: notices sent while nobody listened are lost for good.

A silent network cut is found by a short query every `health_interval_s`; `connected` is False
from the moment a failure is seen until the next LISTEN is in place, and the gateway trusts
its cache only while it is True.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from redisgate import metrics
from redisgate.proxy.keys.refresh import KeyRefresher
from redisgate.store import changes
from redisgate.store.db import CONNECT_TIMEOUT_S

log = logging.getLogger(__name__)


class ChangeListener:
    def __init__(
        self,
        dsn: str,
        on_change: Callable[[changes.Change], None],
        on_state: Callable[[bool], None],
        *,
        backoff_s: tuple[float, float] = (0.1, 5.0),
        health_interval_s: float = 2.0,
    ) -> None:
        self.dsn = dsn
        self.on_change = on_change
        self.on_state = on_state
        self.backoff_s = backoff_s
        self.health_interval_s = health_interval_s
        self.connected = False
        self.notices = 0  # received, for tests and metrics
        self.last_lag_s = 0.0  # notice sent -> received, by the two wall clocks (metrics)
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    def __repr__(self) -> str:
        return f"<ChangeListener {'connected' if self.connected else 'disconnected'}>"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.connected = False

    async def _run(self) -> None:
        delay = self.backoff_s[0]
        failing = False
        while True:
            try:
                await self._listen_once()
                delay = self.backoff_s[0]
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if not failing:
                    log.warning("change notices: connection lost (%s); reconnecting", exc)
                failing = True
            else:
                failing = False
            self.connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_s[1])

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": "redisgate-listener"},  # for operators
        )
        self._lost.clear()
        try:
            conn.add_termination_listener(lambda _conn: self._lost.set())
            await conn.add_listener(changes.CHANNEL, self._notice)
            self.connected = True
            log.info("change notices: listening")
            self.on_state(True)  # changes missed while disconnected must still apply
            while not self._lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), self.health_interval_s)
                if not self._lost.is_set():
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.health_interval_s)
            raise ConnectionResetError("the LISTEN connection was closed")
        finally:
            if self.connected:
                self.connected = False
                self.on_state(False)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)
            if not conn.is_closed():
                conn.terminate()

    def _notice(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        change = changes.parse(payload)
        if change is None:
            log.warning("change notices: ignoring a notice this version does not know")
            return
        self.notices += 1
        if change.sent_at:
            self.last_lag_s = max(0.0, time.time() - change.sent_at)
            metrics.NOTIFY_LAG.observe(self.last_lag_s)
        self.on_change(change)


class LivePolicy:
    """Applies change notices to the key cache, and through the `refresher` to the
    live sessions and backend key users. (Key expiry needs no notice: the gateway's sweep.)

    The Authenticator's cache is trusted (`cache_ttl_s`) only while notices arrive; while the
    listener is down every AUTH asks PostgreSQL (falling back to fail-static if that fails too),
    and on every (re)connection each key with live sessions is read again.
    """

    def __init__(self, refresher: KeyRefresher[Any], dsn: str, cache_ttl_s: float) -> None:
        self.refresher = refresher
        self.cache_ttl_s = cache_ttl_s
        self.listener = ChangeListener(dsn, self._on_change, self._on_state)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.listener.start()

    async def close(self) -> None:
        await self.listener.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_state(self, connected: bool) -> None:
        refresher = self.refresher
        auth = refresher.authenticator
        auth.ttl_s = self.cache_ttl_s if connected else 0.0
        if connected:
            auth.invalidate()  # whatever was cached may have changed meanwhile
            self._spawn(refresher.refresh(refresher.live_keys()))

    def _on_change(self, change: changes.Change) -> None:
        refresher = self.refresher
        auth = refresher.authenticator
        # Dropped, not just stale: a key we were told changed must not serve fail-static.
        if change.kind == "key":
            auth.forget(change.id)
            self._spawn(refresher.refresh({change.id}))
        elif change.kind == "instance":
            auth.forget_instance(change.id)
            self._spawn(refresher.refresh(refresher.live_keys(change.id), instance_id=change.id))
        else:  # an org's default limits
            auth.forget_org(change.id)
            self._spawn(refresher.refresh(refresher.live_keys(org_id=change.id)))
