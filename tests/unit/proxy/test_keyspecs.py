"""Key and channel extraction, with hand-written expected positions for each command family."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisgate.proxy.commands.keyspecs import (
    CHANNEL_SPECS,
    ChannelAccess,
    channels,
    keys,
    keys_complete,
    sort_patterns,
)
from redisgate.proxy.commands.table import CommandTable, KeyAccess

TABLE = CommandTable.from_snapshot()

RO = KeyAccess.RO | KeyAccess.ACCESS
OW = KeyAccess.OW | KeyAccess.UPDATE
RW_UPD = KeyAccess.RW | KeyAccess.ACCESS | KeyAccess.UPDATE
RW_DEL = KeyAccess.RW | KeyAccess.ACCESS | KeyAccess.DELETE
RW_INS = KeyAccess.RW | KeyAccess.INSERT
RM_DEL = KeyAccess.RM | KeyAccess.DELETE


def extract(command: str | list[bytes]) -> list[tuple[int, KeyAccess]]:
    args = [a.encode() for a in command.split()] if isinstance(command, str) else command
    spec = TABLE.resolve(args)
    assert spec is not None
    return keys(spec, args)


def positions(command: str | list[bytes]) -> list[int]:
    return [i for i, _ in extract(command)]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # plain index + range
        ("get k", [(1, RO)]),
        ("del a b c", [(1, RM_DEL), (2, RM_DEL), (3, RM_DEL)]),
        ("mset a 1 b 2", [(1, OW), (3, OW)]),
        ("lcs a b len", [(1, RO), (2, RO)]),
        ("bitop and d a b", [(2, OW), (3, RO), (4, RO)]),
        ("rpoplpush s d", [(1, RW_DEL), (2, RW_INS)]),
        ("blpop a b 0", [(1, RW_DEL), (2, RW_DEL)]),
        ("bzpopmin a b 1.5", [(1, RW_DEL), (2, RW_DEL)]),
        ("brpoplpush s d 0", [(1, RW_DEL), (2, RW_INS)]),
        # keynum: EVAL/EVALSHA/FCALL numkeys
        ("eval s 2 k1 k2 a1", [(3, RW_UPD), (4, RW_UPD)]),
        ("evalsha sha 1 k a", [(3, RW_UPD)]),
        ("eval_ro s 1 k", [(3, RO)]),
        ("fcall f 2 a b x y", [(3, RW_UPD), (4, RW_UPD)]),
        ("fcall_ro f 1 a", [(3, RO)]),
        ("eval s 0", []),
        ("eval s 0 notakey", []),
        # keynum: ZUNIONSTORE / ZINTER* / ZDIFF* / SINTERCARD
        ("zunionstore d 2 a b weights 1 2", [(1, OW), (3, RO), (4, RO)]),
        ("zinterstore d 1 a aggregate max", [(1, OW), (3, RO)]),
        ("zdiffstore d 2 a b", [(1, OW), (3, RO), (4, RO)]),
        ("zinter 2 a b withscores", [(2, RO), (3, RO)]),
        ("zunion 1 a", [(2, RO)]),
        ("zintercard 2 a b limit 5", [(2, RO), (3, RO)]),
        ("sintercard 2 a b", [(2, RO), (3, RO)]),
        # keynum: LMPOP / ZMPOP / BLMPOP / BZMPOP
        ("lmpop 2 a b left count 3", [(2, RW_DEL), (3, RW_DEL)]),
        ("zmpop 1 z min", [(2, RW_DEL)]),
        ("blmpop 0 2 a b right", [(3, RW_DEL), (4, RW_DEL)]),
        ("bzmpop 1.5 1 z max count 2", [(3, RW_DEL)]),
        # keyword: XREAD / XREADGROUP STREAMS
        ("xread streams a b 0 0", [(2, RO), (3, RO)]),
        ("xread count 2 block 0 streams a 0", [(6, RO)]),
        ("xread streams a b c 0 0", [(2, RO), (3, RO)]),  # unbalanced: Redis then errors
        ("xreadgroup group g c streams a >", [(5, RO)]),
        ("xreadgroup group g c count 1 block 5 noack streams a b > >", [(10, RO), (11, RO)]),
        # keyword: GEORADIUS STORE / STOREDIST
        ("georadius k 0 0 1 km", [(1, RO)]),
        ("georadius k 0 0 1 km store d", [(1, RO), (7, OW)]),
        ("georadius k 0 0 1 km count 3 storedist d", [(1, RO), (9, OW)]),
        ("georadius k 0 0 1 km store d1 storedist d2", [(1, RO), (7, OW), (9, OW)]),
        ("georadiusbymember k m 1 km store d", [(1, RO), (6, OW)]),
        ("geosearchstore d src frommember m byradius 1 km", [(1, OW), (2, RO)]),
        # SORT: sorted key and STORE destination only (BY/GET patterns: see sort_patterns)
        ("sort k", [(1, RO)]),
        ("sort k by w_* get o_* limit 0 1 store dst", [(1, RO), (10, OW)]),
        ("sort k store d1 store d2", [(1, RO), (5, OW)]),  # the last STORE wins, as in Redis
        ("sort k get store", [(1, RO)]),  # "store" is GET's pattern here
        ("sort_ro k by w_* get #", [(1, RO)]),
        # MIGRATE
        ("migrate h 6379 k 0 100", [(3, RW_DEL)]),
        ("migrate h 6379 k 0 100 copy replace", [(3, RW_DEL)]),
        ("migrate h 6379 k 0 100 keys a", []),  # KEYS with a key: a syntax error in Redis
        ("migrate h 6379 x 0 100 auth keys keys b", []),  # AUTH's password is "keys"
        # container subcommands
        ("object encoding k", [(2, KeyAccess.RO)]),
        ("object freq k", [(2, KeyAccess.RO)]),
        ("memory usage k samples 5", [(2, KeyAccess.RO)]),
        ("xinfo stream s full", [(2, RO)]),
        ("xgroup create s g $ mkstream", [(2, RW_INS)]),
        # variable flags: SET and BITFIELD as Redis refines them
        ("set k v", [(1, OW)]),
        ("set k v nx get", [(1, RW_UPD)]),
        ("set k get", [(1, OW)]),  # "get" is the value
        ("bitfield k get u8 0", [(1, RO)]),
        ("bitfield k get u8 0 overflow sat", [(1, RO)]),
        ("bitfield k incrby u8 0 1", [(1, RW_UPD)]),
        ("bitfield k get u8", [(1, RW_UPD)]),  # malformed: Redis assumes a write
        # no keys at all
        ("ping", []),
        ("publish c m", []),
        ("spublish c m", []),  # shard channels are NOT_KEY specs
        ("config get x", []),
    ],
)
def test_key_extraction(command: str, expected: list[tuple[int, KeyAccess]]) -> None:
    assert extract(command) == expected


def test_migrate_with_keys() -> None:
    args = [b"migrate", b"h", b"6379", b"", b"0", b"100", b"copy", b"keys", b"a", b"b"]
    assert extract(args) == [(8, RW_DEL), (9, RW_DEL)]
    args = [b"migrate", b"h", b"1", b"", b"0", b"1", b"auth2", b"u", b"keys", b"keys", b"x"]
    assert positions(args) == [10]  # AUTH2 takes two values, so the second "keys" is KEYS


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([b"XREAD", b"STREAMS\x00junk", b"a", b"0"], [1 + 1]),
        ([b"xread", b"sTrEaMs", b"a", b"0"], [2]),
        ([b"xread", b"count", b"1", b"streams", b"streams", b"x", b"0", b"0"], [4, 5]),
        ([b"set", b"k", b"v", b"GET\x00x"], [1]),
        ([b"sort", b"k", b"STORE\x00", b"d"], [1, 3]),
        ([b"georadius", b"k", b"0", b"0", b"1", b"m", b"StOrE\x00\x01", b"d"], [1, 7]),
    ],
)
def test_keywords_compare_like_strcasecmp(args: list[bytes], expected: list[int]) -> None:
    """Case-insensitive and up to the first NUL, so a crafted keyword cannot hide keys."""
    assert positions(args) == expected


def test_set_get_with_nul_reads() -> None:
    assert extract([b"set", b"k", b"v", b"GET\x00x"]) == [(1, RW_UPD)]


@pytest.mark.parametrize(
    "command",
    [
        "get",  # too few arguments for the fixed position
        "lcs a",  # range past the end
        "eval s 5 k",  # numkeys past the end
        "eval s -1 k",  # negative numkeys
        "eval s x k",  # numkeys not an integer
        "eval s 01 k",  # leading zero: Redis's string2ll refuses it too
        "eval s +1 k",
        "eval s 99999999999999999999 k",  # out of int64
        "eval s",
        "lmpop 5 a b left",
        "xread streams",
        "xread count 1",  # keyword absent
        "xread streams a",  # keyword is the last argument
        "object",
        "sort",
        "set",
        "bitfield",
    ],
)
def test_malformed_commands_yield_no_keys(command: str) -> None:
    assert extract(command) == []


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("zunionstore d x a b", [1]),  # bad numkeys: the other spec still counts
        ("zunionstore d 0 a", [1]),
        ("zunionstore d 5 a", [1]),
        ("bitop and d", [2]),
        ("migrate h 1", []),
        ("lmpop 3 a b left", [2, 3, 4]),  # as Redis: "left" counts; LMPOP then fails
    ],
)
def test_malformed_commands_keep_well_defined_keys(command: str, expected: list[int]) -> None:
    assert positions(command) == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("sort k", []),
        ("sort k by w_* get o_* get # get h_*->f", [3, 5, 9]),
        ("sort k by nosort get #", []),  # BY without '*' only disables sorting
        ("sort k limit 0 10 by w_* store d", [6]),
        ("sort k store by get x", []),  # STORE's destination is named "by"
        ("sort_ro k get p_*", [3]),
        ("get k", []),
    ],
)
def test_sort_patterns(command: str, expected: list[int]) -> None:
    args = [a.encode() for a in command.split()]
    spec = TABLE.resolve(args)
    assert spec is not None and sort_patterns(spec, args) == expected


def test_sort_pattern_star_after_nul_is_no_pattern() -> None:
    args = [b"sort", b"k", b"by", b"w\x00*"]
    assert sort_patterns(TABLE["sort"], args) == []


def test_every_snapshot_command_has_complete_key_extraction() -> None:
    assert [s.name for s in TABLE.walk() if not keys_complete(s)] == []


# --- Channels ------------------------------------------------------------------------------------

SUB, PAT = ChannelAccess.SUBSCRIBE, ChannelAccess.PATTERN


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("publish c m", [(1, ChannelAccess.PUBLISH)]),
        ("spublish c m", [(1, ChannelAccess.PUBLISH)]),
        ("subscribe a b", [(1, SUB), (2, SUB)]),
        ("ssubscribe a", [(1, SUB)]),
        ("psubscribe n.* m?", [(1, PAT | SUB), (2, PAT | SUB)]),
        ("unsubscribe a", [(1, ChannelAccess.UNSUBSCRIBE)]),
        ("unsubscribe", []),
        ("sunsubscribe", []),
        ("punsubscribe p*", [(1, PAT | ChannelAccess.UNSUBSCRIBE)]),
        ("pubsub numsub a b", [(2, ChannelAccess.INSPECT), (3, ChannelAccess.INSPECT)]),
        ("pubsub shardnumsub a", [(2, ChannelAccess.INSPECT)]),
        ("pubsub channels n.*", [(2, PAT | ChannelAccess.INSPECT)]),
        ("pubsub channels", []),
        ("pubsub numpat", []),
        ("publish c", [(1, ChannelAccess.PUBLISH)]),  # arity error in Redis; no crash here
        ("publish", []),
        ("get k", []),
    ],
)
def test_channels(command: str, expected: list[tuple[int, ChannelAccess]]) -> None:
    args = [a.encode() for a in command.split()]
    spec = TABLE.resolve(args)
    assert spec is not None and channels(spec, args) == expected


def test_every_pubsub_command_is_in_the_channel_table() -> None:
    """Redis flags pub/sub commands `pubsub`; all take channels except these two."""
    no_channels = {"pubsub|numpat", "pubsub|help"}
    pubsub = {s.name for s in TABLE.walk() if "pubsub" in s.flags} | {"pubsub|help"}
    assert pubsub - no_channels == set(CHANNEL_SPECS)


# --- Robustness ----------------------------------------------------------------------------------

ALL_SPECS = sorted(TABLE.walk(), key=lambda s: s.name)
WORDS = [b"streams", b"STORE", b"keys", b"get", b"by", b"limit", b"auth", b"auth2", b"overflow",
         b"storedist", b"0", b"1", b"2", b"-1", b"01", b"", b"x\x00", b"\x00", b"999"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(ALL_SPECS),
    st.lists(st.one_of(st.sampled_from(WORDS), st.binary(max_size=4)), max_size=10),
)
def test_extraction_never_raises_and_stays_in_bounds(spec: object, tail: list[bytes]) -> None:
    from redisgate.proxy.commands.table import CommandSpec

    assert isinstance(spec, CommandSpec)
    args = [spec.name.encode().partition(b"|")[0], *tail]
    if spec.container:
        args.insert(1, spec.name.partition("|")[2].encode())
    for i, _ in keys(spec, args):
        assert 1 <= i < len(args)
    for i, _ in channels(spec, args):
        assert 1 <= i < len(args)
    for i in sort_patterns(spec, args):
        assert 1 <= i < len(args)
