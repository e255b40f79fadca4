"""Scopes: what an API key may do, in Redis 7 ACL syntax, parsed and compiled once.

Theory of operation
-------------------
A scope is a string of rules applied left to right, exactly as `ACL SETUSER` applies them:

    +@read -@dangerous +info ~app:* %R~shared:* &news.*

- commands: `+@category`, `-@category`, `+command`, `-command`, `+command|sub`, `-command|sub`,
  `allcommands` (= `+@all`), `nocommands` (= `-@all`). A command is allowed when the *last*
  rule that names it (directly, through its container, or through one of its categories) is a
  `+` rule; nothing names it means denied. So `-debug +@all` allows DEBUG, `+@all -debug` not.
- keys: `~pattern` (read and write), `%R~pattern`, `%W~pattern`, `%RW~pattern`, `allkeys`
  (= `~*`: every key, and keyspace-wide commands), `resetkeys`;
- channels: `&pattern`, `allchannels` (= `&*`), `resetchannels` (the default, as in Redis 7).

Patterns are Redis globs (`redisgate.glob`), compiled once. Both planes use this module: the
control plane validates what users type (`parse_scope` raises `ScopeError` with the 1-based
column of the bad rule), the gateway compiles each key's scope once (`compile_scope` is cached)
and binds it to the backend's command table (`redisgate.proxy.policy.scope_check`), after
which checking a command is a set lookup plus one glob match per key.

`Scope.canonical` is the `ACL GETUSER`-like normal form (overridden rules dropped, patterns
merged); parsing it gives an equal scope, so it is what we store and show.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

from redisgate.glob import compile_glob

__all__ = [
    "CATEGORIES",
    "DEFAULT_PRESET",
    "KEYSPACE_WIDE",
    "PRESETS",
    "READ",
    "SCRIPT_RUNNERS",
    "WHOLE_INSTANCE",
    "WRITE",
    "CommandRule",
    "Pattern",
    "Scope",
    "ScopeError",
    "compile_scope",
    "known_commands",
    "parse_scope",
    "prefix_scope",
    "preset_scope",
]

# Redis 7's ACL categories (`ACL CAT`), plus `all`.
CATEGORIES = frozenset(
    {
        "admin", "bitmap", "blocking", "connection", "dangerous", "fast", "geo", "hash",
        "hyperloglog", "keyspace", "list", "pubsub", "read", "scripting", "set", "slow",
        "sortedset", "stream", "string", "transaction", "write",
    }
)  # fmt: skip

# Commands (full names, `container|sub` for subcommands) that act on every key of the database
# while naming none. A key limited to patterns cannot be allowed them: their effect (or their
# answer) reaches keys outside its patterns. MEMORY STATS counts every key, as DBSIZE does.
KEYSPACE_WIDE = frozenset(
    {"keys", "scan", "randomkey", "dbsize", "flushdb", "flushall", "swapdb", "memory|stats"}
)
# Commands that run a script: `redis.call()` inside may touch any key or channel, declared or
# not, out of the gateway's sight. On an instance owning its server, a key limited to patterns
# runs them as a backend ACL user of its own, so Redis checks every call inside
# (`redisgate.proxy.backend.key_user_rules`); on a shared server they are refused.
SCRIPT_RUNNERS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
# Commands that need the whole instance (`allkeys` and `allchannels`), with why: what
# changes (or shows) the state every key of a server shares beyond its keys: the
# functions FCALL runs, the script cache EVALSHA reads, the script running now. Other keys'
# commands run with what one key put there, with *their* reach: a key that may change it must
# already reach every key and channel itself. SCRIPT LOAD is not here: the cache is addressed
# by the script's SHA1, so loading a script cannot change what EVALSHA of another SHA runs.
WHOLE_INSTANCE: Mapping[str, str] = {
    **{
        f"function|{sub}": "changes the functions every key of this server calls"
        for sub in ("load", "delete", "flush", "restore")
    },
    "script|flush": "empties the script cache the EVALSHA of every key of this server reads",
    "script|kill": "stops the script running now, which may be another key's",
    "function|kill": "stops the function running now, which may be another key's",
    "function|stats": "shows the function running now, which may be another key's, with its "
    "arguments",
    "slowlog|get": "shows every key's slow commands with their arguments (keys, values, channels)",
}

MAX_SCOPE_CHARS = 8192
MAX_PATTERNS = 256

READ = 1
WRITE = 2
_PERM_NAMES = {"R": READ, "W": WRITE}

# Rules of ACL SETUSER that are about the user, not about what it may do.
_USER_RULES = re.compile(
    r"^(on|off|nopass|resetpass|reset|skip-sanitize-payload|sanitize-payload)$"
)


class ScopeError(ValueError):
    """A scope string that does not parse; `position` is the 1-based column of the bad rule."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at {position}")
        self.reason = reason
        self.position = position


@dataclass(frozen=True, slots=True)
class CommandRule:
    """`+@read` is CommandRule(True, category="read"); `-config|set`, (False, command=...)."""

    allow: bool
    category: str = ""
    command: str = ""

    def __str__(self) -> str:
        sign = "+" if self.allow else "-"
        return f"{sign}@{self.category}" if self.category else f"{sign}{self.command}"

    def names(self, name: str, container: str, categories: frozenset[str]) -> bool:
        """Whether this rule speaks about the command `name` (`container|sub` for subs)."""
        if self.category:
            return self.category == "all" or self.category in categories
        return self.command == name or self.command == container


@dataclass(frozen=True, slots=True)
class Pattern:
    """A key pattern with its permissions (READ|WRITE), or a channel pattern (perms 0)."""

    glob: bytes
    perms: int = READ | WRITE
    match: Callable[[bytes], bool] = field(compare=False, hash=False, repr=False, default=bool)

    @classmethod
    def compiled(cls, glob: bytes, perms: int = READ | WRITE) -> Pattern:
        return cls(glob, perms, compile_glob(glob).match)

    def key_rule(self) -> str:
        text = self.glob.decode("utf-8", "backslashreplace")
        if self.perms == READ | WRITE and text != "*":  # `~*` would mean allkeys
            return f"~{text}"
        return f"%{'R' if self.perms & READ else ''}{'W' if self.perms & WRITE else ''}~{text}"


@dataclass(frozen=True, slots=True)
class Scope:
    """A parsed, normalised scope. Hashable, so bindings to command tables can be cached."""

    commands: tuple[CommandRule, ...] = ()
    allkeys: bool = False
    keys: tuple[Pattern, ...] = ()
    allchannels: bool = False
    channels: tuple[Pattern, ...] = ()

    # --- Checks (the gateway binds commands to its table; keys and channels are checked here)

    def command_allowed(
        self, name: str, container: str = "", categories: Iterable[str] = ()
    ) -> bool:
        """Whether the last rule naming the command allows it (`name` as `config|get`)."""
        cats = frozenset(categories)
        allowed = False
        for rule in self.commands:
            if rule.names(name, container, cats):
                allowed = rule.allow
        return allowed

    def key_allowed(self, key: bytes, perms: int) -> bool:
        """Redis's rule: some pattern grants every permission needed and matches the key."""
        if self.allkeys:
            return True
        for pattern in self.keys:  # noqa: SIM110 (a loop: any() costs a generator per key)
            if pattern.perms & perms == perms and pattern.match(key):
                return True
        return False

    def channel_allowed(self, channel: bytes) -> bool:
        return self.allchannels or any(p.match(channel) for p in self.channels)

    def channel_pattern_allowed(self, pattern: bytes) -> bool:
        """PSUBSCRIBE: as in Redis, the pattern must literally be one of the allowed ones."""
        return self.allchannels or any(p.glob == pattern for p in self.channels)

    # --- Descriptions

    @property
    def canonical(self) -> str:
        """The normal form: commands, then keys, then channels; it parses back to `self`."""
        return " ".join(self.describe().values())

    def describe(self) -> dict[str, str]:
        """`ACL GETUSER`-like: {"commands": …, "keys": …, "channels": …}."""
        commands = " ".join(str(r) for r in self.commands) or "-@all"
        keys = " ".join(p.key_rule() for p in self.keys) or "resetkeys"
        if self.allkeys:
            keys = "~*"
        if self.allchannels:
            channels = "&*"
        elif self.channels:
            channels = " ".join(
                f"&{p.glob.decode('utf-8', 'backslashreplace')}" for p in self.channels
            )
        else:
            channels = "resetchannels"
        return {"commands": commands, "keys": keys, "channels": channels}

    def __str__(self) -> str:
        return self.canonical


@functools.lru_cache(maxsize=1)
def known_commands() -> Mapping[str, frozenset[str]]:
    """{command: its subcommands} of the packaged Redis 7.0 command snapshot."""
    text = resources.files("redisgate").joinpath("data", "redis-7.0.json").read_text()
    commands = json.loads(text)["commands"]
    return {
        name: frozenset(sub.partition("|")[2] for sub in data.get("subcommands", {}))
        for name, data in commands.items()
    }


def parse_scope(text: str, *, commands: Mapping[str, frozenset[str]] | None = None) -> Scope:
    """Parse and validate a scope; `commands` ({name: subcommands}) defaults to Redis 7.0's.

    Raises ScopeError naming the first bad rule and its column.
    """
    if len(text) > MAX_SCOPE_CHARS:
        raise ScopeError(f"scope is longer than {MAX_SCOPE_CHARS} characters", 1)
    table = known_commands() if commands is None else commands
    parser = _Parser(table)
    for match in re.finditer(r"\S+", text):
        parser.rule(match.group(), match.start() + 1)
    return parser.scope()


@functools.lru_cache(maxsize=4096)
def compile_scope(text: str) -> Scope:
    """`parse_scope` with a cache: every key with the same scope shares one compiled Scope."""
    return parse_scope(text)


class _Parser:
    def __init__(self, commands: Mapping[str, frozenset[str]]) -> None:
        self.known = commands
        self.rules: list[CommandRule] = []
        self.allkeys = False
        self.keys: dict[bytes, int] = {}
        self.allchannels = False
        self.channels: dict[bytes, int] = {}

    def rule(self, token: str, at: int) -> None:
        lowered = token.lower()
        if lowered in ("allcommands", "nocommands"):
            self._command_rule(lowered == "allcommands", "@all", at)
        elif token[0] in "+-":
            self._command_rule(token[0] == "+", token[1:], at)
        elif lowered in ("allkeys", "resetkeys"):
            self.allkeys = lowered == "allkeys"
            self.keys.clear()
        elif lowered in ("allchannels", "resetchannels"):
            self.allchannels = lowered == "allchannels"
            self.channels.clear()
        elif token[0] in "~%":
            self._key_rule(token, at)
        elif token[0] == "&":
            self._channel_rule(token[1:].encode(), at)
        elif _USER_RULES.match(lowered) or token[0] in "<>#!(":
            raise ScopeError(f"'{token}' sets up a Redis user, it is not a scope rule", at)
        else:
            raise ScopeError(f"unknown rule '{token}'", at)

    def _command_rule(self, allow: bool, what: str, at: int) -> None:
        what = what.lower()
        sign = "+" if allow else "-"
        if what.startswith("@"):
            category = what[1:]
            if category != "all" and category not in CATEGORIES:
                raise ScopeError(f"unknown category '@{category}'", at)
            if category == "all":  # everything before is overridden
                self.rules.clear()
                if not allow:
                    return
            self.rules.append(CommandRule(allow, category=category))
            return
        name, bar, sub = what.partition("|")
        if name not in self.known:
            raise ScopeError(f"unknown command '{name}' in '{sign}{what}'", at)
        if bar:
            subs = self.known[name]
            if not subs:
                raise ScopeError(f"'{name}' has no subcommands (in '{sign}{what}')", at)
            if sub not in subs:
                raise ScopeError(f"unknown subcommand '{name}|{sub}'", at)
        # Earlier rules for this command (or, for a container, for its subcommands) are
        # overridden by this one: drop them so the canonical form stays short.
        self.rules = [
            r
            for r in self.rules
            if r.category or (r.command != what and (bar or r.command.partition("|")[0] != name))
        ]
        self.rules.append(CommandRule(allow, command=what))

    def _key_rule(self, token: str, at: int) -> None:
        flags, tilde, glob = token.partition("~")
        if not tilde:
            raise ScopeError(f"invalid key rule '{token}': use ~, %R~, %W~ or %RW~", at)
        perms = READ | WRITE
        if flags:
            perms = 0
            for letter in flags[1:].upper():
                if letter not in _PERM_NAMES:
                    raise ScopeError(
                        f"invalid key permission '{flags}~' in '{token}': use %R~, %W~ or %RW~",
                        at,
                    )
                perms |= _PERM_NAMES[letter]
            if flags[0] != "%" or not perms:
                raise ScopeError(f"invalid key rule '{token}': use ~, %R~, %W~ or %RW~", at)
        if self.allkeys:
            raise ScopeError(
                f"'{token}' after allkeys (or ~*) has no effect: put resetkeys before it", at
            )
        if glob == "*" and not flags:
            self.allkeys = True
            self.keys.clear()
            return
        raw = glob.encode()
        self._count(self.keys, at)
        self.keys[raw] = self.keys.get(raw, 0) | perms

    def _channel_rule(self, glob: bytes, at: int) -> None:
        if self.allchannels:
            raise ScopeError(
                f"'&{glob.decode()}' after allchannels (or &*) has no effect: "
                "put resetchannels before it",
                at,
            )
        if glob == b"*":
            self.allchannels = True
            self.channels.clear()
            return
        self._count(self.channels, at)
        self.channels[glob] = 0

    @staticmethod
    def _count(patterns: dict[bytes, int], at: int) -> None:
        if len(patterns) >= MAX_PATTERNS:
            raise ScopeError(f"more than {MAX_PATTERNS} patterns", at)

    def scope(self) -> Scope:
        return Scope(
            commands=tuple(self.rules),
            allkeys=self.allkeys,
            keys=tuple(Pattern.compiled(g, p) for g, p in self.keys.items()),
            allchannels=self.allchannels,
            channels=tuple(Pattern.compiled(g, 0) for g in self.channels),
        )


# --- Presets ---------------------------------------------------------------------------------

# `full` is what a tenant gets by default: every command but the server administration ones,
# with the dangerous commands that only touch the tenant's own data given back, and the
# inspection the gateway answers about the instance's own server and connections (CLIENT
# LIST/KILL/UNBLOCK/NO-EVICT, CONFIG GET, SLOWLOG GET/LEN, LATENCY, LASTSAVE, ROLE) and
# RESTORE (payloads sanitized by the server). Scripting is opt-in (`full` plus `+@scripting`).
_FULL_COMMANDS = (
    "+@all -@admin -@dangerous +flushdb +flushall +keys +info +sort +sort_ro"
    " +client|list +client|kill +client|unblock +client|no-evict +config|get"
    " +slowlog|get +slowlog|len +latency +lastsave +role +restore -@scripting"
)
PRESETS: dict[str, str] = {
    "full": f"{_FULL_COMMANDS} allkeys allchannels",
    "read-only": "+@read +@connection +@transaction -@dangerous +info +keys +sort_ro allkeys",
    "write-only": "+@write +@connection +@transaction -@dangerous %W~*",
    "pubsub-only": "+@pubsub +@connection resetkeys allchannels",
}
DEFAULT_PRESET = "full"


def preset_scope(name: str) -> str:
    """The scope string of a named preset; ValueError lists the presets for an unknown one."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}: choose one of {', '.join(sorted(PRESETS))}"
        ) from None


def prefix_scope(prefix: str, preset: str = DEFAULT_PRESET) -> str:
    """A preset limited to keys starting with `prefix` (glob characters in it are escaped),
    with the preset's own key permissions (`write-only` stays write-only).

    Keyspace-wide commands (KEYS, SCAN, FLUSHDB …) are then denied: they would reach other keys.
    """
    if not prefix or any(c.isspace() for c in prefix):
        raise ValueError(f"invalid prefix {prefix!r}: it must be non-empty, without spaces")
    base = parse_scope(preset_scope(preset))
    perms = READ | WRITE if base.allkeys else 0
    for pattern in base.keys:
        perms |= pattern.perms
    if not perms:
        raise ValueError(f"the {preset!r} preset gives no key access to limit to a prefix")
    escaped = re.sub(r"([*?\[\]\\])", r"\\\1", prefix)
    rule = Pattern(f"{escaped}*".encode(), perms).key_rule()
    return f"{preset_scope(preset)} resetkeys {rule}"
