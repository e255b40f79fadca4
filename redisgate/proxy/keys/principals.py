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
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

from redisgate import api_key_format, metrics
from redisgate.backends import Backend
from redisgate.errors import StoreError
from redisgate.limits import NO_LIMITS, Limits
from redisgate.scopes import DEFAULT_PRESET, PRESETS, Scope, compile_scope

if TYPE_CHECKING:
    from redisgate.store.usage import UsageRow

FULL_SCOPE = compile_scope(PRESETS[DEFAULT_PRESET])


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    name: str
    backend: Backend


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API key and what it may reach (`scope`: which commands, keys and
    channels; the `full` preset unless the key says otherwise), with the limits of the key,
    its instance and its org as stored (`policy.LimitRegistry` resolves them). Instance limits
    live here, not on `Instance`, so a change of limits does not make a new upstream pool."""

    key_id: str
    key_name: str
    instance: Instance
    scope: Scope = FULL_SCOPE
    expires_at: float | None = None  # wall-clock (Unix) time; live sessions end then
    org_id: str = ""  # the owner, where the source knows it (usage is recorded per org)
    limits: Limits = NO_LIMITS
    instance_limits: Limits = NO_LIMITS
    org_limits: Limits = NO_LIMITS

    def expired(self, wall: float) -> bool:
        """Whether the key has expired at wall-clock (Unix) time `wall`."""
        return self.expires_at is not None and self.expires_at <= wall


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as its source knows it (its expiry is its principal's `expires_at`)."""

    key_id: str
    digest: str
    principal: Principal


class PrincipalSource(Protocol):
    """Where key records come from."""

    async def get_key(self, key_id: str) -> KeyRecord | None: ...


class KeySource(PrincipalSource, Protocol):
    """A key source as the gateway uses it: the keys, and where what the gateway counts goes.

    `fleet_wide` is true for a source every gateway of the fleet shares (PostgreSQL): usage is
    metered and flushed there, daily quotas are read back from it, and keys are cached only
    while change notices arrive (`live`). A source of one gateway's own (a keys file) keeps
    nothing: its writes succeed at once and its totals are zero, so each gateway counts only
    its own use. `maybe_reload` re-reads keys that change without notices (the file)."""

    fleet_wide: bool
    negative_ttl_s: float

    def maybe_reload(self, now: float) -> bool: ...
    async def record_use(self, key_ids: Collection[str]) -> bool: ...
    async def record_usage(self, gateway_id: str, seq: int, rows: list[UsageRow]) -> bool: ...
    async def day_totals(
        self, day: date, key_ids: list[str], instance_ids: list[str]
    ) -> dict[tuple[str, str], tuple[int, int]]: ...


class Authenticator:
    """Turns a presented token into a Principal (or None), with positive and negative caches.

    `now` is passed in by the caller (the event loop's clock, monotonic), so this stays
    testable. Expiry is a wall-clock instant, so it is checked against `wall_clock` (injected
    too), on every AUTH: a cached record never outlives its key's `expires_at`.

    A positive entry is fresh for `ttl_s` (0: every AUTH asks the source; the gateway sets the
    TTL only while change notices arrive, since they are what keeps the cache true). A stale
    entry is still kept: when the source fails (PostgreSQL down), a key seen within
    `fail_static_s` keeps authenticating (fail-static) while an unknown key gets the source's
    error. Entries are bounded by `capacity` (least recently fetched dropped first).
    """

    def __init__(
        self,
        source: PrincipalSource,
        *,
        ttl_s: float = 5.0,
        negative_ttl_s: float = 5.0,
        negative_capacity: int = 10_000,
        fail_static_s: float = 0.0,
        capacity: int = 100_000,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.negative_capacity = negative_capacity
        self.fail_static_s = fail_static_s
        self.capacity = capacity
        self.wall_clock = wall_clock
        # key id -> (fresh until, fetched at, record)
        self._positive: OrderedDict[str, tuple[float, float, KeyRecord]] = OrderedDict()
        self._negative: OrderedDict[str, float] = OrderedDict()
        self.lookups = 0  # how often the source was asked (tests and metrics read it)
        self.used: set[str] = set()  # ids that authenticated since the last `take_used`

    async def authenticate(self, token: bytes, now: float) -> Principal | None:
        key_id = api_key_format.key_id_of(token)
        if key_id is None:
            metrics.AUTH_FAILURES["malformed"] += 1
            return None
        try:
            record = await self._record(key_id, now)
        except StoreError:
            metrics.AUTH_FAILURES["unavailable"] += 1
            raise
        if record is None or not api_key_format.verify(token, record.digest):
            metrics.AUTH_FAILURES["unknown_key" if record is None else "wrong_secret"] += 1
            return None
        if record.principal.expired(self.wall_clock()):
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
            return cached[2]
        denied_until = self._negative.get(key_id)
        if denied_until is not None and denied_until > now:
            metrics.KEY_CACHE["negative_hit"] += 1
            return None
        metrics.KEY_CACHE["miss"] += 1
        try:
            return await self.lookup(key_id, now)
        except StoreError:
            if cached is not None and now - cached[1] < self.fail_static_s:
                metrics.KEY_CACHE["hit"] += 1
                return cached[2]  # fail-static: the source is down, this key was fine
            raise

    async def lookup(self, key_id: str, now: float) -> KeyRecord | None:
        """Ask the source (never the cache) and remember the answer; StoreError passes up."""
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
        self._positive[key_id] = (now + self.ttl_s, now, record)
        self._positive.move_to_end(key_id)
        while len(self._positive) > self.capacity:
            self._positive.popitem(last=False)
        return record

    def invalidate(self, key_id: str | None = None) -> None:
        """Make one key's entry (or every entry) stale, and forget negative answers: the next
        AUTH asks the source. Stale entries still serve fail-static."""
        if key_id is None:
            for kid, (_, fetched, record) in list(self._positive.items()):
                self._positive[kid] = (0.0, fetched, record)
            self._negative.clear()
        else:
            entry = self._positive.get(key_id)
            if entry is not None:
                self._positive[key_id] = (0.0, entry[1], entry[2])
            self._negative.pop(key_id, None)

    def forget_instance(self, instance_id: str) -> None:
        """Drop every cached key of an instance that changed or was deleted."""
        for kid, (_, _, record) in list(self._positive.items()):
            if record.principal.instance.id == instance_id:
                del self._positive[kid]

    def forget_org(self, org_id: str) -> None:
        """Drop every cached key of an org whose defaults changed."""
        for kid, (_, _, record) in list(self._positive.items()):
            if record.principal.org_id == org_id:
                del self._positive[kid]

    def forget(self, key_id: str) -> None:
        """Drop a key entirely (changed, revoked or deleted: not even fail-static may use it
        until it is read again)."""
        self._positive.pop(key_id, None)
        self._negative.pop(key_id, None)
