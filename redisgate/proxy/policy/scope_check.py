"""A key's scope bound to a backend's command table, sans-IO: the per-command check.

Binding walks the table once and keeps the names of the allowed commands, so the per-command
check is a set lookup, then one glob match per key (`keyspecs.keys`) or channel; bindings are
shared by every client with the same scope and table. `fast` lists the command names that
need no check beyond their name (the session forwards those straight away). `need` says what
a command needs of a scope on each kind of server (docs/commands.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from enum import Enum

from redisgate.proxy.commands.keyspecs import (
    CHANNEL_SPECS,
    ChannelAccess,
    channels,
    keys,
    keys_complete,
    sort_patterns,
)
from redisgate.proxy.commands.routing import PUBSUB, SCRIPTING, SERVER_WIDE, Route
from redisgate.proxy.commands.table import CommandSpec, CommandTable, KeyAccess, SearchKind
from redisgate.proxy.wire.encode import encode_error
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
