"""Per-key and per-peer policies, sans-IO (a clock, where needed, is passed in).

- `ScopeCheck`: a key's scope (`redisgate.scopes`) bound to the backend's command table. Binding
  walks the table once and keeps the names of the allowed commands, so the per-command check is
  a set lookup, then one glob match per key (`keyspecs.keys`) or channel; bindings are shared by
  every client with the same scope and table. `fast` lists the command names that need no
  check beyond their name (the session forwards those straight away).
- `AuthThrottle`: slows down peers that keep presenting bad keys.
- `TokenBucket`, `RateGate`, `LimitRegistry`: per-key and per-instance commands per second,
  concurrent connections and request size (docs/limits.md).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum

from redisgate import metrics
from redisgate.limits import NO_LIMITS, Limits
from redisgate.proxy.commands import CommandSpec, CommandTable, KeyAccess, SearchKind
from redisgate.proxy.keyspecs import (
    CHANNEL_SPECS,
    ChannelAccess,
    channels,
    keys,
    keys_complete,
    sort_patterns,
)
from redisgate.proxy.principals import Principal
from redisgate.proxy.quotas import DailyQuota, QuotaBook, has_quota
from redisgate.proxy.resp_encode import encode_error
from redisgate.proxy.routes import PUBSUB, SCRIPTING, SERVER_WIDE, Route
from redisgate.scopes import KEYSPACE_WIDE, READ, SCRIPT_RUNNERS, WHOLE_INSTANCE, WRITE, Scope

NOPERM_KEY = encode_error("NOPERM", "No permissions to access a key")
NOPERM_CHANNEL = encode_error("NOPERM", "No permissions to access a channel")


class Denial:
    """Why a command was refused (the `reason` label of the denial counter)."""

    COMMAND = "command"
    KEY = "key"
    CHANNEL = "channel"
    KEYSPACE = "keyspace"


# Keys at fixed places: (first index, last index (negative: from the end), step, permissions).
KeyPlan = tuple[tuple[int, int, int, int], ...]


class ScopeCheck:
    """A scope bound to one command table; see the module docstring.

    `keyed` maps the names of plain forwarded commands whose keys sit at fixed places (GET,
    SET, MGET, COPY …) to a `KeyPlan`, so the session can check their keys without the
    general path (`keys_fit`); a key that does not fit goes through `check`, which finds the
    exact reason (the plan may ask for more permissions than the arguments need: SET asks
    read+write, as SET … GET would).
    """

    __slots__ = ("_patterns", "_plans", "allowed", "fast", "keyed", "scope")

    def __init__(self, scope: Scope, table: CommandTable, forwarded: frozenset[bytes]) -> None:
        self.scope = scope
        self._patterns = tuple((p.perms, p.match) for p in scope.keys)
        self._plans: dict[str, KeyPlan] = {}  # spec name -> fixed key places, filled lazily
        self.allowed = frozenset(
            spec.name
            for spec in table.walk()
            if "no_auth" in spec.flags
            or scope.command_allowed(spec.name, spec.container, spec.acl_categories)
        )
        fast: set[bytes] = set()
        keyed: dict[bytes, KeyPlan] = {}
        for raw in forwarded:
            spec = table.get(raw)
            if spec is None or spec.name not in self.allowed:
                continue
            if spec.name in WHOLE_INSTANCE or spec.name in SCRIPT_RUNNERS:
                continue
            if scope.allkeys or (not spec.key_specs and spec.name not in KEYSPACE_WIDE):
                fast.add(raw)
            elif spec.name not in KEYSPACE_WIDE:
                plan = _key_plan(spec)
                if plan:
                    keyed[raw] = plan
        self.fast = frozenset(fast)
        self.keyed = keyed

    def keys_fit(self, plan: KeyPlan, args: Sequence[bytes]) -> bool:
        """Whether every key at the plan's places has a pattern granting the plan's perms."""
        argc = len(args)
        patterns = self._patterns
        for first, last, step, perms in plan:
            stop = last + 1 if last >= 0 else argc + last + 1
            if stop > argc:
                return False  # an arity error: let the full check (and Redis) answer
            for i in range(first, stop, step):
                key = args[i]
                for granted, match in patterns:
                    if granted & perms == perms and match(key):
                        break
                else:
                    return False
        return True

    def check(
        self, spec: CommandSpec, args: Sequence[bytes], *, key_user: bool = False
    ) -> tuple[str, bytes] | None:
        """None when the scope allows the command with these arguments, else (reason, reply).

        A script (EVAL, FCALL …) of a key without `allkeys allchannels` is refused unless it
        will run as the key's backend ACL user (`key_user`, see `backend_acl`), where Redis
        checks what it calls; its declared keys are checked here either way."""
        if spec.name not in self.allowed:
            return (Denial.COMMAND, _command_denied(spec.name, "scripting" in spec.acl_categories))
        scope = self.scope
        if not (scope.allkeys and scope.allchannels):
            why = WHOLE_INSTANCE.get(spec.name)
            if why is None and spec.name in SCRIPT_RUNNERS and not key_user:
                why = _SCRIPT_WHY
            if why is not None:
                return (Denial.KEYSPACE, _instance_denied(spec.display_name, why, scope.allkeys))
        if not scope.allkeys:
            if spec.name in KEYSPACE_WIDE:
                return (Denial.KEYSPACE, _keyspace_denied(spec.display_name))
            if not keys_complete(spec):
                return (Denial.KEY, NOPERM_KEY)
            plan = self._plans.get(spec.name)
            if plan is None:
                plan = self._plans[spec.name] = _key_plan(spec)
            # Keys at fixed places that fit with all they could need: no need to look closer.
            if not (plan and self.keys_fit(plan, args)):
                for position, access in keys(spec, args):
                    if not scope.key_allowed(args[position], _perms(access)):
                        return (Denial.KEY, NOPERM_KEY)
            if spec.name in ("sort", "sort_ro"):
                patterns = sort_patterns(spec, args)
                if patterns:
                    option = args[patterns[0] - 1].decode(errors="replace").upper()
                    return (Denial.KEY, _sort_denied(option))
        if not scope.allchannels and spec.name in CHANNEL_SPECS:
            for position, channel_access in channels(spec, args):
                if channel_access & (ChannelAccess.UNSUBSCRIBE | ChannelAccess.INSPECT):
                    continue
                if channel_access & ChannelAccess.PATTERN:
                    allowed = scope.channel_pattern_allowed(args[position])
                else:
                    allowed = scope.channel_allowed(args[position])
                if not allowed:
                    return (Denial.CHANNEL, NOPERM_CHANNEL)
        return None


class Need(Enum):
    """What a command needs of a key's scope, besides the scope allowing the command by name
    (its categories, `+command` rules), on one kind of server: `need` says which."""

    DENIED = "denied"  # refused whatever the scope allows
    PATTERNS = "patterns"  # its keys and channels must match the scope's patterns
    ALL_KEYS = "allkeys"  # every key (keyspace-wide)
    WHOLE_INSTANCE = "allkeys+allchannels"  # every key and every channel


def need(spec: CommandSpec, *, shared: bool) -> Need:
    """The requirement `Session._route` and `ScopeCheck.check` apply to `spec` whatever its
    arguments (argument rules such as COPY … DB, SORT BY and CLIENT TRACKING BCAST aside), on
    a shared server or on one the instance owns. `docs/commands.md` states it per command and
    `tests/integration/proxy/test_server_wide.py` checks every claim against a gateway."""
    decision = spec.decision
    if not decision.classified:
        return Need.DENIED
    if decision.route is Route.DENIED and (shared or spec.name not in SERVER_WIDE):
        return Need.DENIED
    if shared and (spec.container or spec.name).encode() in SCRIPTING | PUBSUB:
        return Need.DENIED
    if shared and spec.name == "client|tracking":  # invalidations name every db's keys
        return Need.DENIED
    if spec.name in WHOLE_INSTANCE:
        return Need.WHOLE_INSTANCE
    if spec.name in KEYSPACE_WIDE:
        return Need.ALL_KEYS
    return Need.PATTERNS


def _key_plan(spec: CommandSpec) -> KeyPlan:
    """The spec's keys as fixed places, or () when they depend on the arguments' values."""
    # SET and BITFIELD only vary their flags (VARIABLE_FLAGS), not their key's place.
    variable_flags_only = spec.name in ("set", "bitfield")
    if spec.name in ("sort", "sort_ro", "migrate") or not (
        spec.keys_interpretable or variable_flags_only
    ):
        return ()
    plan = []
    for ks in spec.key_specs:
        if not ks.is_key:
            continue
        begin, find = ks.begin, ks.find
        if begin.kind is not SearchKind.INDEX or find.kind is not SearchKind.RANGE:
            return ()
        if find.limit or find.keystep < 1 or begin.index < 1:
            return ()
        last = begin.index + find.lastkey if find.lastkey >= 0 else find.lastkey
        # SET and BITFIELD change their flags with their arguments: ask for everything.
        perms = READ | WRITE if spec.name in ("set", "bitfield") else _perms(ks.access)
        plan.append((begin.index, last, find.keystep, perms))
    return tuple(plan)


@functools.lru_cache(maxsize=1024)
def bind_scope(scope: Scope, table: CommandTable, forwarded: frozenset[bytes]) -> ScopeCheck:
    """The shared ScopeCheck of `scope` on `table` (`forwarded`: the session's fast names)."""
    return ScopeCheck(scope, table, forwarded)


def _perms(access: KeyAccess) -> int:
    """The ACL permissions a key with these key-spec flags needs (Redis's rule)."""
    return (READ if access.reads else 0) | (WRITE if access.writes else 0)


@functools.lru_cache(maxsize=512)
def _command_denied(name: str, scripting: bool = False) -> bytes:
    """Redis's wording; for a scripting command, how to opt in (no preset allows scripts)."""
    message = f"this user has no permissions to run the '{name}' command"
    if scripting:
        message += (
            ": this API key's scope does not allow scripting; add +@scripting to its scope "
            "(docs/scopes.md)"
        )
    return encode_error("NOPERM", message)


# Why a script is refused to a key limited to patterns where it cannot run as the key's own
# backend ACL user (the session routes it there on an instance owning its server).
_SCRIPT_WHY = "runs a script, which can reach any key and channel"


@functools.lru_cache(maxsize=8)
def _sort_denied(option: str) -> bytes:
    """Redis's wording for SORT BY/GET patterns without full key access."""
    return encode_error(
        "NOPERM", f"{option} option of SORT denied due to insufficient ACL permissions."
    )


@functools.lru_cache(maxsize=64)
def _instance_denied(display_name: str, why: str, allkeys: bool) -> bytes:
    """A WHOLE_INSTANCE command refused to a key without allkeys or allchannels: why it needs
    them, and which of the two the key lacks."""
    lacks = "channels" if allkeys else "keys"
    return encode_error(
        "NOPERM",
        f"'{display_name}' {why}, and this key may only access the {lacks} matching its "
        "patterns (a key with allkeys and allchannels may run it)",
    )


@functools.lru_cache(maxsize=64)
def _keyspace_denied(display_name: str) -> bytes:
    return encode_error(
        "NOPERM",
        f"'{display_name}' touches every key of the database, and this key may only access "
        "the keys matching its patterns (a key with allkeys may run it)",
    )


class AuthThrottle:
    """Failed authentications per peer address; past `free_failures` each reply waits longer.

    The delay doubles with each failure inside `window_s` (from `base_delay_s` up to
    `max_delay_s`), so a flood of bad keys from one address crawls while a user who mistyped a
    key notices nothing (client libraries retry a failed AUTH several times: redis-py 8 makes
    eleven attempts per command, so the free allowance is generous). Memory is bounded by
    `capacity` addresses (oldest forgotten).
    """

    def __init__(
        self,
        *,
        free_failures: int = 20,
        window_s: float = 60.0,
        base_delay_s: float = 0.05,
        max_delay_s: float = 2.0,
        capacity: int = 100_000,
    ) -> None:
        self.free_failures = free_failures
        self.window_s = window_s
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.capacity = capacity
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def failure(self, peer: str, now: float) -> float:
        """Record a failure; return how long to wait before answering it."""
        count, first = self._failures.get(peer, (0, now))
        if now - first > self.window_s:
            count, first = 0, now
        count += 1
        self._failures[peer] = (count, first)
        self._failures.move_to_end(peer)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)
        excess = count - self.free_failures
        if excess <= 0:
            return 0.0
        doublings = min(excess - 1, 64)  # past the cap anyway; keeps 2**n finite
        return float(min(self.max_delay_s, self.base_delay_s * 2.0**doublings))

    def success(self, peer: str) -> None:
        self._failures.pop(peer, None)


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
                kind, reply = quota.refusal()  # type: ignore[misc]
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
        return Admission(RateGate(tuple(buckets), tuple(quotas)), size, unseeded)

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
        self.quotas.roll(day, self._connections)


@functools.lru_cache(maxsize=256)
def _connections_exceeded(cap: int) -> bytes:
    return encode_error("ERR", f"max concurrent connections exceeded (limit {cap})")
