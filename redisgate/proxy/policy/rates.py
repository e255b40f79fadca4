"""Per-key and per-instance commands per second, concurrent connections and request size
(docs/limits.md), sans-IO: the clock is passed in. `TokenBucket`, `RateGate`, `LimitRegistry`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime

from redisgate import metrics
from redisgate.limits import NO_LIMITS, Limits
from redisgate.proxy.keys.principals import Principal
from redisgate.proxy.policy.daily_quotas import DailyQuota, QuotaBook, has_quota
from redisgate.proxy.wire.encode import encode_error

# --- Data-plane limits (docs/limits.md) ------------------------------------------------------


class TokenBucket:
    """`rate` commands a second on average, up to `burst` at once; refilled lazily from `now`.

    A refused command takes nothing and waits nowhere: the client gets an error at once, so
    nothing queues. `configure` changes the rate live without refilling the bucket.
    """

    __slots__ = ("burst", "rate", "reply", "stamp", "tokens")

    def __init__(self, rate: int, burst: int, now: float) -> None:
        self.rate = self.burst = self.tokens = -1.0
        self.reply = b""
        self.configure(rate, burst)
        self.tokens = self.burst
        self.stamp = now

    def __repr__(self) -> str:
        return f"<TokenBucket {self.rate:g}/s burst={self.burst:g} tokens={self.tokens:.2f}>"

    def configure(self, rate: int, burst: int) -> None:
        if rate == self.rate and burst == self.burst:
            return
        self.rate, self.burst = float(rate), float(burst)
        self.tokens = min(self.tokens, self.burst)
        self.reply = encode_error(
            "ERR", f"max requests limit exceeded (limit {rate} commands per second, burst {burst})"
        )

    def refill(self, now: float) -> float:
        """The tokens available at `now`."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.stamp = now
            tokens = self.tokens + elapsed * self.rate
            self.tokens = tokens if tokens < self.burst else self.burst
        return self.tokens

    def take(self, now: float) -> bool:
        if self.refill(now) >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def bucket_shape(limits: Limits) -> tuple[int, int] | None:
    """(rate, burst) of a token bucket for these limits; None: no rate limit.

    Unset, the burst is one second's worth of the rate; a rate of 0 refuses everything.
    """
    rate = limits.ops_per_second
    if rate is None:
        return None
    if rate == 0:
        return (0, 0)
    return (rate, limits.burst if limits.burst is not None else rate)


class RateGate:
    """The limits one client draws from per command: its key's and its instance's token
    buckets and daily quotas (any may be absent).

    A command passes only if every bucket has a token and no quota is spent, and then takes
    one token from each bucket and counts once in each quota, so the stricter limit wins and
    a refused command costs nothing.
    """

    __slots__ = ("buckets", "quotas")

    def __init__(
        self, buckets: tuple[TokenBucket, ...], quotas: tuple[DailyQuota, ...] = ()
    ) -> None:
        self.buckets = buckets
        self.quotas = quotas

    def take(self, now: float, want: int, counted: bool = True) -> int | bytes:
        """Let up to `want` commands run (at least 1): how many may, else the error reply
        refusing the first (counted in metrics unless `counted` is false: the caller will
        ask again per command). A pipelined read takes its commands at once, so the check
        runs once per read, not per command; what the caller does not use it gives back
        (`refund`) before anything else can draw on these limits.

        Runs once per read: `TokenBucket.refill` inlined, no allocations."""
        grant = want
        for bucket in self.buckets:
            tokens = bucket.tokens
            if now > bucket.stamp:
                tokens += (now - bucket.stamp) * bucket.rate
                if tokens > bucket.burst:
                    tokens = bucket.burst
                bucket.tokens, bucket.stamp = tokens, now
            if tokens < 1.0:
                if counted:
                    metrics.LIMITED["ops_per_second"] += 1
                return bucket.reply
            if tokens < grant:
                grant = int(tokens)
        for quota in self.quotas:
            if quota.commands >= quota.max_commands or quota.bytes >= quota.max_bytes:
                refused = quota.refusal()
                assert refused is not None
                kind, reply = refused
                if counted:
                    metrics.LIMITED[kind] += 1
                return reply
            if quota.max_commands - quota.commands < grant:
                grant = quota.max_commands - quota.commands
        for bucket in self.buckets:
            bucket.tokens -= grant
        for quota in self.quotas:
            quota.commands += grant
        return grant

    def refund(self, unused: int) -> None:
        """Give back what `take` granted and no command used."""
        for bucket in self.buckets:
            bucket.tokens = min(bucket.burst, bucket.tokens + unused)
        for quota in self.quotas:
            quota.commands -= unused


@dataclass(frozen=True, slots=True)
class Admission:
    """What an admitted connection is held to: its rate gate and its request-size limit.
    `unseeded` are new daily quotas whose fleet totals must be read before the AUTH succeeds."""

    gate: RateGate | None
    max_request_bytes: int | None
    unseeded: tuple[DailyQuota, ...] = ()


class LimitRegistry:
    """The per-key and per-instance limits of one gateway process (sans-IO; `now` passed in).

    Buckets and connection counts are per process: with N gateways behind a load balancer each
    enforces the limits on its own share of the clients (docs/limits.md, "Several gateways").
    A principal's limits are applied whenever one of its connections authenticates, so a
    changed limit reaches buckets already in use. Buckets of keys and instances with no
    connections are dropped once full again (`sweep`), when they equal a fresh one.
    """

    def __init__(self, defaults: Limits = NO_LIMITS, day: date | None = None) -> None:
        self.defaults = defaults  # what an org without its own defaults gets
        self.quotas = QuotaBook(day or datetime.now(UTC).date())
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._connections: dict[tuple[str, str], int] = {}
        self._held: dict[int, tuple[tuple[str, str], tuple[str, str]]] = {}
        # One gate per key and instance, shared by their connections: the per-command check
        # then touches the same few objects for all of them (CPU caches, docs/performance.md).
        self._gates: dict[tuple[tuple[str, str], tuple[str, str]], RateGate] = {}

    def __repr__(self) -> str:
        return f"<LimitRegistry [{len(self._buckets)} buckets, {len(self._held)} connections]>"

    def effective(self, principal: Principal) -> tuple[Limits, Limits]:
        """(the key's limits, the instance's limits) after inheritance."""
        org = principal.org_limits.with_implied_burst()
        org = org.or_defaults(self.defaults.with_implied_burst()).with_implied_burst()
        instance = principal.instance_limits.with_implied_burst().tighter(org)
        return principal.limits.with_implied_burst(), instance

    def connections(self, kind: str, ident: str) -> int:
        return self._connections.get((kind, ident), 0)

    def admit(self, client_id: int, principal: Principal, now: float) -> Admission | bytes:
        """Count a newly authenticated connection, or return the error refusing it."""
        key_limits, instance_limits = self.effective(principal)
        key = ("key", principal.key_id)
        instance = ("instance", principal.instance.id)
        held = self._held.get(client_id, ())  # AUTH again: this connection is counted already
        for ident, limits in ((key, key_limits), (instance, instance_limits)):
            cap = limits.max_connections
            if cap is not None and self._connections.get(ident, 0) - (ident in held) >= cap:
                metrics.LIMITED["max_connections"] += 1
                return _connections_exceeded(cap)
        self.release(client_id)
        for ident in (key, instance):
            self._connections[ident] = self._connections.get(ident, 0) + 1
        self._held[client_id] = (key, instance)
        buckets, quotas = [], []
        for ident, limits in ((key, key_limits), (instance, instance_limits)):
            if has_quota(limits):
                quotas.append(self.quotas.get(ident, limits))
            shape = bucket_shape(limits)
            if shape is None:
                continue
            bucket = self._buckets.get(ident)
            if bucket is None:
                bucket = self._buckets[ident] = TokenBucket(*shape, now)
            else:
                bucket.refill(now)
                bucket.configure(*shape)
            buckets.append(bucket)
        size = key_limits.tighter(instance_limits).max_request_bytes
        if not buckets and not quotas:
            return Admission(None, size)
        unseeded = tuple(quota for quota in quotas if not quota.seeded)
        gate = self._gates.get((key, instance))
        if gate is None or gate.buckets != tuple(buckets) or gate.quotas != tuple(quotas):
            gate = self._gates[key, instance] = RateGate(tuple(buckets), tuple(quotas))
        return Admission(gate, size, unseeded)

    def release(self, client_id: int) -> None:
        """The connection closed, RESET, or authenticated again."""
        held = self._held.pop(client_id, None)
        if held is None:
            return
        for ident in held:
            left = self._connections.get(ident, 0) - 1
            if left > 0:
                self._connections[ident] = left
            else:
                self._connections.pop(ident, None)

    def sweep(self, now: float, day: date) -> None:
        """Drop the full buckets of keys and instances nobody is connected with; at the
        turn of the UTC day, start the daily quotas again."""
        for ident, bucket in list(self._buckets.items()):
            if ident not in self._connections and bucket.refill(now) >= bucket.burst:
                del self._buckets[ident]
        for pair in [p for p in self._gates if p[0] not in self._connections]:
            del self._gates[pair]  # nobody holds the key: its next connection gets a new gate
        self.quotas.roll(day, self._connections)


@functools.lru_cache(maxsize=256)
def _connections_exceeded(cap: int) -> bytes:
    return encode_error("ERR", f"max concurrent connections exceeded (limit {cap})")
