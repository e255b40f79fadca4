"""Who a client is: instances, principals, and the cache in front of where keys come from.

A `PrincipalSource` answers "which key record has this public id?" (a static TOML file, or
Postgres). `Authenticator` sits in front of it on the AUTH path: it rejects malformed tokens
without a lookup, caches records for a short TTL, keeps a bounded negative cache so floods of
unknown ids do not reach the source, and checks the digest in constant time. It never sees or
logs a secret beyond the comparison. It also notes which keys authenticated, so the gateway can
record their use in batches rather than per connection.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from redisgate import apikeys, metrics
from redisgate.errors import StoreError
from redisgate.scopes import DEFAULT_PRESET, PRESETS, Scope, compile_scope

FULL_SCOPE = compile_scope(PRESETS[DEFAULT_PRESET])


@dataclass(frozen=True, slots=True)
class Backend:
    """Where an instance's data lives: a Redis endpoint and a db index on it.

    `shared` marks a server whose other dbs belong to other tenants. Scripts (EVAL, FCALL,
    FUNCTION) are refused there: a Lua script may SELECT another db, and no gateway can see
    inside a script to stop it.
    """

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or reprs
    tls: bool = False
    shared: bool = False


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    name: str
    backend: Backend


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API key and what it may reach (`scope`: which commands, keys and
    channels; the `full` preset unless the key says otherwise)."""

    key_id: str
    key_name: str
    instance: Instance
    scope: Scope = FULL_SCOPE


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as its source knows it; `expires_at` is wall-clock (Unix) time, None: never."""

    key_id: str
    digest: str
    principal: Principal
    expires_at: float | None = None


class PrincipalSource(Protocol):
    """Where key records come from."""

    async def get_key(self, key_id: str) -> KeyRecord | None: ...


class Authenticator:
    """Turns a presented token into a Principal (or None), with positive and negative caches.

    `now` is passed in by the caller (the event loop's clock, monotonic), so this stays
    testable. Expiry is a wall-clock instant, so it is checked against `wall_clock` (injected
    too), on every AUTH: a cached record never outlives its key's `expires_at`. A `ttl_s` of 0
    caches nothing: every AUTH asks the source.
    """

    def __init__(
        self,
        source: PrincipalSource,
        *,
        ttl_s: float = 5.0,
        negative_ttl_s: float = 5.0,
        negative_capacity: int = 10_000,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.negative_capacity = negative_capacity
        self.wall_clock = wall_clock
        self._positive: dict[str, tuple[float, KeyRecord]] = {}
        self._negative: OrderedDict[str, float] = OrderedDict()
        self.lookups = 0  # how often the source was asked (tests and metrics read it)
        self.used: set[str] = set()  # ids that authenticated since the last `take_used`

    async def authenticate(self, token: bytes, now: float) -> Principal | None:
        key_id = apikeys.key_id_of(token)
        if key_id is None:
            metrics.AUTH_FAILURES["malformed"] += 1
            return None
        try:
            record = await self._record(key_id, now)
        except StoreError:
            metrics.AUTH_FAILURES["unavailable"] += 1
            raise
        if record is None or not apikeys.verify(token, record.digest):
            metrics.AUTH_FAILURES["unknown_key" if record is None else "wrong_secret"] += 1
            return None
        if record.expires_at is not None and record.expires_at <= self.wall_clock():
            metrics.AUTH_FAILURES["expired"] += 1
            self._positive.pop(key_id, None)
            return None
        self.used.add(key_id)
        return record.principal

    def take_used(self) -> list[str]:
        """The ids that authenticated since the last call (for batched `last_used` updates)."""
        used, self.used = self.used, set()
        return sorted(used)

    async def _record(self, key_id: str, now: float) -> KeyRecord | None:
        cached = self._positive.get(key_id)
        if cached is not None and cached[0] > now:
            metrics.KEY_CACHE["hit"] += 1
            return cached[1]
        denied_until = self._negative.get(key_id)
        if denied_until is not None and denied_until > now:
            metrics.KEY_CACHE["negative_hit"] += 1
            return None
        metrics.KEY_CACHE["miss"] += 1
        self.lookups += 1
        record = await self.source.get_key(key_id)
        if record is None:
            self._negative[key_id] = now + self.negative_ttl_s
            self._negative.move_to_end(key_id)
            while len(self._negative) > self.negative_capacity:
                self._negative.popitem(last=False)
            self._positive.pop(key_id, None)
            return None
        self._negative.pop(key_id, None)
        if self.ttl_s > 0:
            self._positive[key_id] = (now + self.ttl_s, record)
        return record

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget one key (or everything): the next AUTH asks the source again."""
        if key_id is None:
            self._positive.clear()
            self._negative.clear()
        else:
            self._positive.pop(key_id, None)
            self._negative.pop(key_id, None)
