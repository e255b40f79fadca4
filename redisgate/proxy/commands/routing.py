"""How the gateway treats each Redis command: our overrides, as data, in one place.

Every command (and subcommand) gets one `Route`:

- `FORWARD`: stateless; shares a multiplexed upstream connection with other clients.
- `PINNED`: changes or depends on per-connection state (transactions, subscriptions, blocking,
  client-side caching, reply modes), so the client moves to a dedicated upstream connection.
- `INTERCEPTED`: answered or rewritten by the gateway (authentication, db selection, connection
  identity, server introspection filtered to what a tenant may see).
- `DENIED`: admin or cross-tenant; refused whatever the API key's scopes allow (`SERVER_WIDE`
  ones only on shared servers: an instance owning its server gets the route named there).

Classification order (`classify`): an entry in `ROUTES` for the full name (`config|get`); else a
family wildcard (`config|*`) for subcommands; else, in a data-type group (`DATA_GROUPS`), the
documented default (DENIED if Redis flags it `admin`, PINNED if `blocking`, FORWARD otherwise).
Anything else is *unclassified* (a newer backend's command we have not reviewed): it gets the same
flag-based route but `classified=False`, and the policy refuses it unless the scope allows
everything (DESIGN.md, "Scopes"). Every command of Redis 7.0 is classified; a test enforces it.

Three commands are routed by their arguments (`ARG_RULES`, applied by `table.route`): XREAD and
XREADGROUP are PINNED only with BLOCK; COPY with a DB option is DENIED.

This module is sans-IO and imports nothing of the gateway: the table (`table.py`) applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum


class Route(Enum):
    """Where a command goes; see the module docstring."""

    FORWARD = "forward"
    PINNED = "pinned"
    INTERCEPTED = "intercepted"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class Decision:
    """A command's route, the reason shown in docs and errors, and whether we reviewed it."""

    route: Route
    reason: str
    classified: bool = True


FORWARD, PINNED, INTERCEPTED, DENIED = Route.FORWARD, Route.PINNED, Route.INTERCEPTED, Route.DENIED

# Data-type commands act only on keys of the selected database, i.e. of the tenant's instance.
DATA_GROUPS = frozenset(
    {"bitmap", "geo", "hash", "hyperloglog", "list", "set", "sorted-set", "stream", "string"}
)

_ACL = "ACL users belong to the backend operator; API-key scopes replace them"
_CLUSTER = "the gateway presents a standalone server; cluster topology is the operator's"
_PERSIST = "persistence is the platform's: it schedules saves and sizes the disk for them"
_REPL = "replication topology is the operator's business"
_LATENCY = "server-wide latency data covers every tenant"
_SLOWLOG = "the slow log shows every tenant's commands and arguments"
_OWN_CLIENTS = "answered from the gateway's own connections of this instance, never other tenants'"
_MODULE = (
    "loading code into the server is the operator's business; INFO modules lists what is loaded"
)
_CONFIG = "server configuration is the operator's business"
_FUNCTION = "functions live server-wide, not per database: this touches other tenants' libraries"
_PUBSUB_LIST = "pub/sub is server-wide, not per database: this lists other tenants' channels"
_UNSUB = "replies once per channel: must never reach a shared connection's FIFO"
_BLOCKING = "blocks its connection until data arrives"
_TRACKING = "client-side caching state lives on one upstream connection"
_CLIENT_ADMIN = "acts on other clients of the server, i.e. on other tenants"
_SCRIPT = "runs inside Redis; a key limited to patterns runs it as its own ACL user: see Notes"

# Full name (lowercase, `container|sub` for subcommands) -> (route, one-line reason).
# Data-type commands not listed here take the DATA_GROUPS default (FORWARD).
ROUTES: dict[str, tuple[Route, str]] = {
    # --- connection ---------------------------------------------------------------------
    "auth": (INTERCEPTED, "API-key authentication is the gateway's; the backend password is ours"),
    "hello": (INTERCEPTED, "protocol and authentication are negotiated with the gateway"),
    "ping": (FORWARD, ""),
    "echo": (FORWARD, ""),
    "select": (INTERCEPTED, "databases are virtualised: an instance is one backend database"),
    "quit": (INTERCEPTED, "closes the client connection, never a shared upstream one"),
    "reset": (INTERCEPTED, "resets the session and gives a pinned connection back clean"),
    "client": (DENIED, "missing or unknown CLIENT subcommand: each one is reviewed separately"),
    "client|*": (DENIED, "CLIENT subcommand not reviewed by this gateway version"),
    "client|id": (INTERCEPTED, "the gateway's own connection id, not a shared upstream's"),
    "client|getname": (INTERCEPTED, "the name lives in the session, not on shared upstreams"),
    "client|setname": (INTERCEPTED, "the name lives in the session, not on shared upstreams"),
    "client|setinfo": (INTERCEPTED, "library info lives in the session, not on shared upstreams"),
    "client|info": (INTERCEPTED, "describes the client's gateway connection"),
    "client|help": (FORWARD, ""),
    "client|tracking": (PINNED, _TRACKING + "; REDIRECT ids are translated by the gateway"),
    "client|caching": (PINNED, _TRACKING),
    "client|getredir": (PINNED, _TRACKING),
    "client|trackinginfo": (PINNED, _TRACKING),
    "client|reply": (PINNED, "OFF/SKIP suppress replies, which would desync a shared FIFO"),
    "client|no-touch": (PINNED, "a per-connection mode that must not leak to other clients"),
    "client|kill": (INTERCEPTED, _OWN_CLIENTS),
    "client|list": (INTERCEPTED, _OWN_CLIENTS),
    "client|unblock": (
        INTERCEPTED,
        _OWN_CLIENTS + "; sent to the backend for the blocked client's own connection",
    ),
    "client|no-evict": (
        INTERCEPTED,
        "kept in the session: gateway connections are never evicted by the backend's "
        "maxmemory-clients (their backend connections are the gateway's)",
    ),
    "client|pause": (
        DENIED,
        "pauses the gateway's shared connections too, whose commands would time out",
    ),
    "client|unpause": (DENIED, "CLIENT PAUSE is refused; there is nothing to resume"),
    # --- transactions -------------------------------------------------------------------
    "multi": (PINNED, "a transaction queues on one connection until EXEC"),
    "watch": (PINNED, "watched keys belong to one connection until EXEC or UNWATCH"),
    "exec": (FORWARD, "sent on the pinned connection if any; otherwise Redis replies its error"),
    "discard": (FORWARD, "sent on the pinned connection if any; otherwise Redis replies its error"),
    "unwatch": (FORWARD, "sent on the pinned connection if any; a no-op elsewhere"),
    # --- pub/sub ------------------------------------------------------------------------
    "subscribe": (PINNED, "subscribed connections receive pushes"),
    "psubscribe": (PINNED, "subscribed connections receive pushes"),
    "ssubscribe": (PINNED, "subscribed connections receive pushes"),
    "unsubscribe": (PINNED, _UNSUB),
    "punsubscribe": (PINNED, _UNSUB),
    "sunsubscribe": (PINNED, _UNSUB),
    "publish": (FORWARD, ""),
    "spublish": (FORWARD, ""),
    "pubsub": (DENIED, "missing or unknown PUBSUB subcommand"),
    "pubsub|channels": (DENIED, _PUBSUB_LIST),
    "pubsub|shardchannels": (DENIED, _PUBSUB_LIST),
    "pubsub|numpat": (DENIED, "counts every tenant's pattern subscriptions"),
    "pubsub|numsub": (FORWARD, ""),
    "pubsub|shardnumsub": (FORWARD, ""),
    "pubsub|help": (FORWARD, ""),
    # --- scripting ----------------------------------------------------------------------
    "eval": (FORWARD, _SCRIPT),
    "evalsha": (FORWARD, _SCRIPT),
    "eval_ro": (FORWARD, _SCRIPT),
    "evalsha_ro": (FORWARD, _SCRIPT),
    "fcall": (FORWARD, _SCRIPT),
    "fcall_ro": (FORWARD, _SCRIPT),
    "script": (DENIED, "missing or unknown SCRIPT subcommand"),
    "script|load": (FORWARD, "the cache is addressed by SHA1: no other script's EVALSHA changes"),
    "script|exists": (FORWARD, ""),
    "script|help": (FORWARD, ""),
    "script|flush": (DENIED, "empties the script cache every tenant shares"),
    "script|kill": (DENIED, "kills whichever script runs, possibly another tenant's"),
    "script|debug": (DENIED, "the Lua debugger can block the whole server"),
    "function": (DENIED, "missing or unknown FUNCTION subcommand"),
    "function|*": (DENIED, _FUNCTION),
    "function|help": (FORWARD, ""),
    "function|load": (DENIED, _FUNCTION),
    "function|delete": (DENIED, _FUNCTION),
    "function|flush": (DENIED, _FUNCTION),
    "function|restore": (DENIED, _FUNCTION),
    "function|dump": (DENIED, _FUNCTION),
    "function|list": (DENIED, _FUNCTION),
    "function|stats": (DENIED, "shows the function or script another tenant is running"),
    "function|kill": (DENIED, "kills whichever function runs, possibly another tenant's"),
    # --- generic (keyspace) ----------------------------------------------------------------
    "copy": (FORWARD, "with a DB option it is denied: the target is another tenant's database"),
    "del": (FORWARD, ""),
    "dump": (FORWARD, ""),
    "exists": (FORWARD, ""),
    "expire": (FORWARD, ""),
    "expireat": (FORWARD, ""),
    "expiretime": (FORWARD, ""),
    "keys": (FORWARD, "lists the selected database only"),
    "object": (FORWARD, "missing or unknown OBJECT subcommand: Redis replies its error"),
    "object|*": (FORWARD, "key introspection"),
    "persist": (FORWARD, ""),
    "pexpire": (FORWARD, ""),
    "pexpireat": (FORWARD, ""),
    "pexpiretime": (FORWARD, ""),
    "pttl": (FORWARD, ""),
    "randomkey": (FORWARD, ""),
    "rename": (FORWARD, ""),
    "renamenx": (FORWARD, ""),
    "scan": (FORWARD, "scans the selected database only"),
    "sort": (FORWARD, "BY/GET patterns read other keys: the policy requires full key access"),
    "sort_ro": (FORWARD, "BY/GET patterns read other keys: the policy requires full key access"),
    "touch": (FORWARD, ""),
    "ttl": (FORWARD, ""),
    "type": (FORWARD, ""),
    "unlink": (FORWARD, ""),
    "migrate": (DENIED, "ships keys to an arbitrary host (exfiltration, server-side requests)"),
    "move": (DENIED, "moves a key into another database, i.e. another tenant's instance"),
    "restore": (
        DENIED,
        "a crafted DUMP payload can crash a server the platform does not configure "
        "with sanitize-dump-payload",
    ),
    "wait": (PINNED, "blocks its connection until replicas acknowledge"),
    "waitaof": (PINNED, "blocks its connection until the AOF is fsynced"),
    # --- server -------------------------------------------------------------------------
    "acl": (DENIED, _ACL),
    "acl|*": (DENIED, _ACL),
    "acl|whoami": (INTERCEPTED, "answers with the API key's name"),
    "acl|cat": (INTERCEPTED, "answers from the gateway's command table"),
    "command": (INTERCEPTED, "the reply is filtered to the commands the gateway allows"),
    "command|count": (INTERCEPTED, "counts the commands the gateway allows"),
    "command|docs": (INTERCEPTED, "filtered to the commands the gateway allows"),
    "command|info": (INTERCEPTED, "filtered to the commands the gateway allows"),
    "command|list": (INTERCEPTED, "filtered to the commands the gateway allows"),
    "command|getkeys": (FORWARD, "a pure function of its arguments"),
    "command|getkeysandflags": (FORWARD, "a pure function of its arguments"),
    "command|help": (FORWARD, ""),
    "config": (DENIED, _CONFIG),
    "config|*": (DENIED, _CONFIG),
    "config|get": (DENIED, "server configuration is the operator's business"),
    "dbsize": (FORWARD, "counts the selected database only"),
    "flushdb": (FORWARD, "empties the selected database only"),
    "flushall": (DENIED, "empties every database of the server (use FLUSHDB)"),
    "swapdb": (DENIED, "swaps two databases, i.e. two tenants' instances"),
    "info": (
        INTERCEPTED,
        "rewritten: host details withheld, clients counted on the gateway, and on a shared "
        "server only the instance's own figures",
    ),
    "lolwut": (FORWARD, ""),
    "time": (FORWARD, ""),
    "debug": (DENIED, "can crash, stall or reconfigure the server"),
    "monitor": (
        DENIED,
        "streams every command of the server, other tenants' or the gateway's own, with "
        "its connections' addresses; SLOWLOG and LATENCY answer the same questions",
    ),
    "shutdown": (DENIED, "stopping and restarting servers is the platform's"),
    "failover": (DENIED, _REPL),
    "replicaof": (DENIED, _REPL),
    "slaveof": (DENIED, _REPL),
    "replconf": (DENIED, "replication protocol, internal"),
    "sync": (DENIED, "replication protocol: streams every database"),
    "psync": (DENIED, "replication protocol: streams every database"),
    "role": (INTERCEPTED, "replicas' and masters' addresses withheld"),
    "restore-asking": (DENIED, "cluster-internal variant of RESTORE"),
    "save": (DENIED, "blocks the whole server while it writes the dataset; " + _PERSIST),
    "bgsave": (DENIED, _PERSIST),
    "bgrewriteaof": (DENIED, _PERSIST),
    "lastsave": (DENIED, _PERSIST),
    "latency": (DENIED, _LATENCY),
    "latency|*": (DENIED, _LATENCY),
    "slowlog": (DENIED, _SLOWLOG),
    "slowlog|*": (DENIED, _SLOWLOG),
    "module": (DENIED, _MODULE),
    "module|*": (DENIED, _MODULE),
    "memory": (DENIED, "missing or unknown MEMORY subcommand"),
    "memory|usage": (FORWARD, "one key's footprint"),
    "memory|help": (FORWARD, ""),
    "memory|doctor": (DENIED, "server-wide memory report"),
    "memory|stats": (DENIED, "server-wide memory report"),
    "memory|malloc-stats": (DENIED, "server-wide allocator report"),
    "memory|purge": (DENIED, "server-wide allocator maintenance"),
    # --- cluster ------------------------------------------------------------------------
    "cluster": (DENIED, _CLUSTER),
    "cluster|*": (DENIED, _CLUSTER),
    "asking": (DENIED, _CLUSTER),
    "readonly": (DENIED, _CLUSTER),
    "readwrite": (DENIED, _CLUSTER),
    # --- data-type commands that are not plain FORWARD ---------------------------------------
    "blpop": (PINNED, _BLOCKING),
    "brpop": (PINNED, _BLOCKING),
    "brpoplpush": (PINNED, _BLOCKING),
    "blmove": (PINNED, _BLOCKING),
    "blmpop": (PINNED, _BLOCKING),
    "bzpopmin": (PINNED, _BLOCKING),
    "bzpopmax": (PINNED, _BLOCKING),
    "bzmpop": (PINNED, _BLOCKING),
    "xread": (FORWARD, "pinned when it has a BLOCK option"),
    "xreadgroup": (FORWARD, "pinned when it has a BLOCK option"),
    "pfdebug": (DENIED, "internal debugging command that can corrupt values"),
    "pfselftest": (DENIED, "internal self-test that burns server CPU"),
}


# Denied above because they act on (or show) the whole server. An instance whose backend is not
# shared (`Backend.shared` is false: the instance owns its server, e.g. one provisioned for it)
# gets the route named here instead, since there "the whole server" is the instance itself;
# what several keys of that instance share (functions, the script cache, the slow log) still
# needs the whole instance in the key's scope (`scopes.WHOLE_INSTANCE`, `scopes.KEYSPACE_WIDE`;
# `policy.need` says which). Name -> (route on an owned server, reason shown there).
_OWN_SERVER = "the instance's own server"
SERVER_WIDE: dict[str, tuple[Route, str]] = {
    **{
        name: (FORWARD, "")
        for name in (
            "flushall",
            "function|load",
            "function|delete",
            "function|flush",
            "function|restore",
            "function|dump",
            "function|list",
            "function|stats",
            "function|kill",
            "script|flush",
            "script|kill",
            "pubsub|channels",
            "pubsub|shardchannels",
            "pubsub|numpat",
            "memory|stats",
            "memory|doctor",
        )
    },
    "memory|malloc-stats": (FORWARD, _OWN_SERVER),
    "memory|purge": (FORWARD, _OWN_SERVER),
    **{
        f"latency|{sub}": (FORWARD, _OWN_SERVER)
        for sub in ("doctor", "graph", "help", "histogram", "history", "latest", "reset")
    },
    "slowlog|get": (
        INTERCEPTED,
        "each entry's client address and name (the gateway's backend connection) withheld",
    ),
    "slowlog|len": (FORWARD, _OWN_SERVER),
    "slowlog|reset": (FORWARD, _OWN_SERVER),
    "slowlog|help": (FORWARD, ""),
    "config|get": (
        INTERCEPTED,
        "host paths, addresses and secrets withheld (see What inspection withholds)",
    ),
    "config|help": (FORWARD, ""),
    "config|resetstat": (FORWARD, "resets the INFO statistics of the instance's own server"),
    "lastsave": (FORWARD, _OWN_SERVER),
    "restore": (
        FORWARD,
        "servers the platform runs check every payload (sanitize-dump-payload yes)",
    ),
}


def classify(name: str, flags: frozenset[str], group: str) -> Decision:
    """The route of `name` (lowercase, `container|sub`); see the module docstring for order."""
    hit = ROUTES.get(name)
    if hit is None and "|" in name:
        hit = ROUTES.get(name.partition("|")[0] + "|*")
    if hit is not None:
        return Decision(hit[0], hit[1])
    classified = group in DATA_GROUPS
    note = "" if classified else "not reviewed by this gateway version; "
    if "admin" in flags:
        return Decision(DENIED, note + "flagged admin by Redis", classified)
    if "blocking" in flags:
        return Decision(PINNED, note + "flagged blocking by Redis", classified)
    return Decision(FORWARD, note.removesuffix("; "), classified)


# --- Argument-dependent routes ---------------------------------------------------------------


def token(arg: bytes) -> bytes:
    """`arg` as Redis compares keywords: ASCII case-insensitive and up to the first NUL.

    Redis parses options with `strcasecmp`, so `STREAMS\\0x` *is* the STREAMS keyword to it.
    Matching it any other way would let a crafted argument hide keys or a BLOCK from us.
    """
    nul = arg.find(b"\0")
    return (arg if nul < 0 else arg[:nul]).lower()


def _xread_rule(first_option: int) -> Callable[[Sequence[bytes]], Decision | None]:
    """XREAD[GROUP] blocks only with BLOCK; options are parsed the way `xreadCommand` does."""
    takes = {b"count": 1, b"group": 2, b"block": 1, b"noack": 0}

    def rule(args: Sequence[bytes]) -> Decision | None:
        i, argc = first_option, len(args)
        while i < argc:
            word = token(args[i])
            if word == b"streams":
                return None
            if word == b"block":
                return Decision(PINNED, "XREAD with BLOCK " + _BLOCKING)
            i += 1 + takes.get(word, 0)
        return None

    return rule


def _copy_rule(args: Sequence[bytes]) -> Decision | None:
    """COPY src dst [DB n] [REPLACE]: options from index 3, as `copyCommand` parses them."""
    for arg in args[3:]:
        if token(arg) == b"db":
            return Decision(DENIED, "COPY ... DB writes into another database (another tenant's)")
    return None


# Name -> function of the full argument list; None means the command's static route holds.
ARG_RULES: dict[str, Callable[[Sequence[bytes]], Decision | None]] = {
    "xread": _xread_rule(1),
    "xreadgroup": _xread_rule(1),
    "copy": _copy_rule,
}


# --- Command families the session treats alike -------------------------------------------

# Scripts and pub/sub cross databases: refused on shared servers, never on the fast path.
SCRIPTING = frozenset(
    {b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro", b"script", b"function"}
)
_SUBSCRIBING = frozenset(
    {b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe", b"punsubscribe", b"sunsubscribe"}
)
PUBSUB = _SUBSCRIBING | {b"publish", b"spublish", b"pubsub"}
# Not queueable in MULTI through the gateway (it answers them itself, or they pin).
# INFO, CONFIG, SLOWLOG and ROLE replies are rewritten (`introspection`), which EXEC's array
# would escape.
NOT_IN_MULTI = _SUBSCRIBING | {
    b"info", b"hello", b"auth", b"command", b"config", b"slowlog", b"role"
}  # fmt: skip
# Redis runs these at once inside MULTI instead of queueing them.
RUN_AT_ONCE_IN_MULTI = frozenset({b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"})
