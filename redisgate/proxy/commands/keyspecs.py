"""Key and channel positions in a command's arguments, from Redis 7 key specs.

Theory of operation
-------------------
`keys(spec, args)` mirrors Redis's own `getKeysFromCommandWithSpecs` (db.c), which is what Redis
ACL uses to check `~pattern` permissions and what `COMMAND GETKEYSANDFLAGS` prints, so a scope
check on our positions matches Redis ACL on the same command:

1. Commands whose key specs Redis itself cannot interpret (an `unknown` search, an INCOMPLETE
   spec, or VARIABLE_FLAGS) fall back to a per-command function, as Redis does: SORT, SORT_RO,
   MIGRATE, SET and BITFIELD (`_PROCS`, ported from db.c/bitops.c/t_string.c).
2. Otherwise each spec is interpreted: `begin_search` index, or keyword (searched forwards from
   `startfrom`, or backwards from the end when negative); then `find_keys` range (lastkey from
   the first key, or from the end when negative, or a `limit`-th of the rest) or keynum (the
   count at `keynumidx`, keys from `firstkey`). NOT_KEY specs (shard channels) are skipped.

Keywords compare as Redis's `strcasecmp` does: case-insensitive and only up to the first NUL
(`routes.token`), so `STREAMS\\0` cannot hide keys. Counts parse as strictly as Redis's
`string2ll` (no sign, spaces or leading zeros).

Malformed arguments never raise, and each key spec is judged on its own:

- a fixed position past the end of `args` yields nothing for that spec;
- an absent keyword yields nothing (searching forwards, the last argument is never the
  keyword, since a key must follow it);
- a count that is not a strict int64 >= 0, or whose keys would run past the end, yields
  nothing; a count of 0 yields nothing (`EVAL script 0`);
- the other specs of the same command still yield their keys.

Redis instead discards every key of the command when one spec fails and asks a per-command
function, which parses counts leniently (`atoi`). The two differ only on commands that Redis
then refuses to run (arity, syntax or "not an integer" errors, all checked before any key is
touched): `EVAL s 01 k` (GETKEYS says `k`; EVAL rejects `01`) and `ZUNIONSTORE d 0 a` (we say
`d`, Redis nothing). `test_keyspecs_golden.py` lists these cases. Callers may check `arity_ok`
first; the arity check is Redis's first step too.

SORT and SORT_RO also read keys named by the BY and GET *patterns*, which no key spec covers
(Redis marks them `unknown`). We do not report those as keys, exactly like Redis; instead
`sort_patterns` returns their positions, and the policy must then require access to every key,
as Redis ACL does (`BY option of SORT denied due to insufficient ACL permissions`).

Channels (`channels`) have no key specs at all; they come from a small table keyed by command
name, a port of Redis's `commands_with_channels` plus PUBSUB NUMSUB/SHARDNUMSUB, whose arguments
are channel names too. A test checks that every command Redis flags `pubsub` is either in it or
takes no channel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Flag

from redisgate.proxy.commands.routing import token
from redisgate.proxy.commands.table import CommandSpec, KeyAccess, SearchKind

__all__ = ["CHANNEL_SPECS", "ChannelAccess", "channels", "keys", "keys_complete", "sort_patterns"]

KeyPositions = list[tuple[int, KeyAccess]]

_INT64_MAX = (1 << 63) - 1
_INDEX, _KEYWORD = SearchKind.INDEX, SearchKind.KEYWORD
_RANGE, _KEYNUM = SearchKind.RANGE, SearchKind.KEYNUM


def keys(spec: CommandSpec, args: Sequence[bytes]) -> KeyPositions:
    """(argument index, access flags) of every key in `args` (`args[0]` is the command name)."""
    proc = _PROCS.get(spec.name)
    if proc is not None:
        return proc(args)
    found: KeyPositions = []
    argc = len(args)
    for ks in spec.key_specs:
        if not ks.is_key:
            continue
        begin, find = ks.begin, ks.find
        if begin.kind is _INDEX:
            first = begin.index
        elif begin.kind is _KEYWORD:
            first = _after_keyword(begin.keyword, begin.startfrom, args)
        else:
            continue
        if first <= 0:
            continue
        if find.kind is _RANGE:
            if find.lastkey >= 0:
                last = first + find.lastkey
            elif not find.limit:
                last = argc + find.lastkey
            else:
                last = first + ((argc - first) // find.limit + find.lastkey)
        elif find.kind is _KEYNUM:
            at = first + find.keynumidx
            numkeys = _string2ll(args[at]) if at < argc else None
            if numkeys is None or numkeys < 0:
                continue
            first += find.firstkey
            last = first + numkeys - 1
        else:
            continue
        if first >= argc or last >= argc or last < first or find.keystep < 1:
            continue
        if first == last:
            found.append((first, ks.access))
        else:
            access = ks.access
            found += [(i, access) for i in range(first, last + 1, find.keystep)]
    return found


def keys_complete(spec: CommandSpec) -> bool:
    """Whether `keys` finds every key Redis would (SORT's patterns aside: `sort_patterns`).

    False only for a newer backend's command whose key specs Redis cannot interpret and for
    which we have no ported function; the policy should then require access to every key.
    """
    return spec.keys_interpretable or spec.name in _PROCS


def _after_keyword(keyword: bytes, startfrom: int, args: Sequence[bytes]) -> int:
    """Index just after `keyword`, or 0. The last argument is never taken as the keyword when
    searching forwards (a key must follow it), and index 0 (the name) never is."""
    argc = len(args)
    if startfrom > 0:
        indexes = range(startfrom, argc - 1)
    elif startfrom < 0:
        indexes = range(argc + startfrom, 0, -1)
    else:
        return 0
    for i in indexes:
        if token(args[i]) == keyword:
            return i + 1
    return 0


def _string2ll(raw: bytes) -> int | None:
    """Redis's strict integer parse: optional '-', no leading zeros, no spaces, in int64."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if not digits.isdigit() or (digits[:1] == b"0" and raw != b"0"):
        return None
    value = int(raw)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


# --- Per-command functions where key specs are not enough (ported from Redis 7.0) -----------

_RO_ACCESS = KeyAccess.RO | KeyAccess.ACCESS
_OW_UPDATE = KeyAccess.OW | KeyAccess.UPDATE
_RW_ACCESS_UPDATE = KeyAccess.RW | KeyAccess.ACCESS | KeyAccess.UPDATE
_RW_ACCESS_DELETE = KeyAccess.RW | KeyAccess.ACCESS | KeyAccess.DELETE


def _sort_keys(args: Sequence[bytes]) -> KeyPositions:
    """`sortGetKeys`: the sorted key, and the last STORE destination if any."""
    found: KeyPositions = [(1, _RO_ACCESS)] if len(args) > 1 else []
    store = 0
    i = 2
    while i < len(args):
        word = token(args[i])
        if word == b"limit":
            i += 2
        elif word in (b"get", b"by"):
            i += 1
        elif word == b"store" and i + 1 < len(args):
            store = i + 1  # the destination itself is scanned next, as in Redis
        i += 1
    if store:
        found.append((store, _OW_UPDATE))
    return found


def _sort_ro_keys(args: Sequence[bytes]) -> KeyPositions:
    """`sortROGetKeys`: only the sorted key."""
    return [(1, _RO_ACCESS)] if len(args) > 1 else []


def _migrate_keys(args: Sequence[bytes]) -> KeyPositions:
    """`migrateGetKeys`: argument 3, or everything after KEYS when argument 3 is empty."""
    argc, first, num = len(args), 3, 1
    i = 6
    while i < argc:
        word = token(args[i])
        if word == b"keys":
            if args[3]:
                num = 0  # a syntax error MIGRATE itself reports
            else:
                first, num = i + 1, argc - i - 1
            break
        i += {b"auth": 2, b"auth2": 3}.get(word, 1)
    return [(p, _RW_ACCESS_DELETE) for p in range(first, first + num) if p < argc]


def _set_keys(args: Sequence[bytes]) -> KeyPositions:
    """`setGetKeys`: SET overwrites its key, unless GET also reads it."""
    if len(args) < 2:
        return []
    reads = any(token(arg) == b"get" for arg in args[3:])
    return [(1, _RW_ACCESS_UPDATE if reads else _OW_UPDATE)]


def _bitfield_keys(args: Sequence[bytes]) -> KeyPositions:
    """`bitfieldGetKeys`: read-only when every operation is GET (or OVERFLOW)."""
    if len(args) < 2:
        return []
    readonly, i, argc = True, 2, len(args)
    while i < argc:
        word, remaining = token(args[i]), argc - i - 1
        if word == b"get" and remaining >= 2:
            i += 3
        elif word == b"overflow" and remaining >= 1:
            i += 2
        else:  # SET / INCRBY write; anything else is a syntax error Redis treats as a write
            readonly = False
            break
    return [(1, _RO_ACCESS if readonly else _RW_ACCESS_UPDATE)]


_PROCS: dict[str, Callable[[Sequence[bytes]], KeyPositions]] = {
    "sort": _sort_keys,
    "sort_ro": _sort_ro_keys,
    "migrate": _migrate_keys,
    "set": _set_keys,
    "bitfield": _bitfield_keys,
}


def sort_patterns(spec: CommandSpec, args: Sequence[bytes]) -> list[int]:
    """Positions of SORT/SORT_RO BY and GET patterns that make Redis read other keys.

    Mirrors `sortCommandGeneric` and `lookupKeyByPattern`, which use C strings: a pattern
    reads keys only if it has a `*` before any NUL (GET `#` returns the element itself).
    (Redis ACL refuses every GET without full key access; we flag only patterns that read.)
    """
    if spec.name not in ("sort", "sort_ro"):
        return []
    found: list[int] = []
    i, argc = 2, len(args)
    while i < argc:
        word, has_value = token(args[i]), i + 1 < argc
        if word in (b"by", b"get") and has_value:
            if b"*" in args[i + 1].partition(b"\0")[0]:
                found.append(i + 1)
            i += 1
        elif word == b"limit" and i + 2 < argc:
            i += 2
        elif word == b"store" and has_value:
            i += 1
        i += 1
    return found


# --- Channels --------------------------------------------------------------------------------


class ChannelAccess(Flag):
    """How a command uses a channel argument (Redis's CMD_CHANNEL_* plus INSPECT)."""

    PUBLISH = 1
    SUBSCRIBE = 2
    UNSUBSCRIBE = 4
    PATTERN = 8  # the argument is a glob pattern, not a channel name
    INSPECT = 16  # PUBSUB introspection: no message flows


# Name -> (access, first channel index, count or -1 for all remaining arguments).
CHANNEL_SPECS: dict[str, tuple[ChannelAccess, int, int]] = {
    "subscribe": (ChannelAccess.SUBSCRIBE, 1, -1),
    "ssubscribe": (ChannelAccess.SUBSCRIBE, 1, -1),
    "psubscribe": (ChannelAccess.PATTERN | ChannelAccess.SUBSCRIBE, 1, -1),
    "unsubscribe": (ChannelAccess.UNSUBSCRIBE, 1, -1),
    "sunsubscribe": (ChannelAccess.UNSUBSCRIBE, 1, -1),
    "punsubscribe": (ChannelAccess.PATTERN | ChannelAccess.UNSUBSCRIBE, 1, -1),
    "publish": (ChannelAccess.PUBLISH, 1, 1),
    "spublish": (ChannelAccess.PUBLISH, 1, 1),
    "pubsub|numsub": (ChannelAccess.INSPECT, 2, -1),
    "pubsub|shardnumsub": (ChannelAccess.INSPECT, 2, -1),
    "pubsub|channels": (ChannelAccess.PATTERN | ChannelAccess.INSPECT, 2, 1),
    "pubsub|shardchannels": (ChannelAccess.PATTERN | ChannelAccess.INSPECT, 2, 1),
}


def channels(spec: CommandSpec, args: Sequence[bytes]) -> list[tuple[int, ChannelAccess]]:
    """(argument index, access) of every channel or channel pattern in `args`.

    Arguments past the end are simply absent: `UNSUBSCRIBE` alone (all channels) yields [].
    """
    entry = CHANNEL_SPECS.get(spec.name)
    if entry is None:
        return []
    access, start, count = entry
    stop = len(args) if count < 0 else min(len(args), start + count)
    return [(i, access) for i in range(start, stop)]
