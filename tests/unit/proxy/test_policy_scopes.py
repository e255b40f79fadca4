"""ScopeCheck: a scope bound to the Redis 7.0 command table, commands in, denials out."""

from __future__ import annotations

import pytest

from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.policy.scope_check import NOPERM_CHANNEL, NOPERM_KEY, ScopeCheck, bind_scope
from redisgate.scopes import KEYSPACE_WIDE, PRESETS, SCRIPT_RUNNERS, WHOLE_INSTANCE, parse_scope

TABLE = CommandTable.from_snapshot()
FORWARDED = frozenset({b"get", b"GET", b"set", b"SET", b"ping", b"PING", b"dbsize", b"keys"})


def check(scope: str, *args: str) -> bytes | None:
    raw = [a.encode() for a in args]
    spec = TABLE.resolve(raw)
    assert spec is not None
    denial = ScopeCheck(parse_scope(scope), TABLE, FORWARDED).check(spec, raw)
    return None if denial is None else denial[1]


def reason(scope: str, *args: str) -> str | None:
    raw = [a.encode() for a in args]
    spec = TABLE.resolve(raw)
    assert spec is not None
    denial = ScopeCheck(parse_scope(scope), TABLE, FORWARDED).check(spec, raw)
    return None if denial is None else denial[0]


SCRIPTING = frozenset(spec.name for spec in TABLE.walk() if "scripting" in spec.acl_categories)
OPT_IN = ": this API key's scope does not allow scripting; add +@scripting to its scope"


def command_denied(name: str) -> bytes:
    """Redis's words; for scripting commands, with how to opt in to scripting."""
    hint = f"{OPT_IN} (docs/scopes.md)" if name in SCRIPTING else ""
    return f"-NOPERM this user has no permissions to run the '{name}' command{hint}\r\n".encode()


READ_APP = "+@read ~app:*"
NOPERM_SORT_BY = b"-NOPERM BY option of SORT denied due to insufficient ACL permissions.\r\n"
NOPERM_SORT_GET = b"-NOPERM GET option of SORT denied due to insufficient ACL permissions.\r\n"


def script_denied(name: str, lacks: str = "keys") -> bytes:
    return (
        f"-NOPERM '{name}' runs a script, which can reach any key and channel, and this key may "
        f"only access the {lacks} matching its patterns (a key with allkeys and allchannels may "
        "run it)\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("scope", "args", "expected"),
    [
        (READ_APP, ("GET", "app:1"), None),
        (READ_APP, ("get", "other:1"), NOPERM_KEY),
        (READ_APP, ("SET", "app:1", "v"), command_denied("set")),
        (READ_APP, ("MGET", "app:1", "app:2"), None),
        (READ_APP, ("MGET", "app:1", "other"), NOPERM_KEY),
        (READ_APP, ("EVAL", "return 1", "0"), command_denied("eval")),
        (READ_APP, ("CONFIG", "GET", "maxmemory"), command_denied("config|get")),
        # %R~ lets reads through and blocks writes, per key spec
        ("+@all %R~a:* %W~b:*", ("COPY", "a:1", "b:1"), None),
        ("+@all %R~a:* %W~b:*", ("COPY", "b:1", "a:1"), NOPERM_KEY),
        ("+@all %R~a:* %W~b:*", ("GET", "b:1"), NOPERM_KEY),
        ("+@all %R~a:* %W~b:*", ("SET", "a:1", "v"), NOPERM_KEY),
        ("+@all %R~a:* %W~b:*", ("SET", "b:1", "v"), None),
        ("+@all %R~a:* %W~b:*", ("SET", "b:1", "v", "GET"), NOPERM_KEY),  # SET GET reads
        ("+@all %R~a:* %W~b:*", ("DEL", "b:1"), None),
        ("+@all %R~a:* %W~b:*", ("EXISTS", "a:1"), None),  # neither read nor write asked
        ("+@all %W~b:*", ("EXISTS", "b:1"), None),
        ("+@all %W~b:*", ("INCR", "b:1"), NOPERM_KEY),  # INCR returns the value: a read
        ("+@all %W~b:*", ("LPUSH", "b:1", "x"), None),
        # keys found by every kind of key spec
        # scripts reach keys they do not declare: they need allkeys
        ("+@all ~app:*", ("EVAL", "return 1", "1", "app:1"), script_denied("EVAL")),
        ("+@all ~app:*", ("EVAL_RO", "return 1", "0"), script_denied("EVAL_RO")),
        ("+@all ~app:*", ("EVALSHA", "a" * 40, "1", "app:1"), script_denied("EVALSHA")),
        ("+@all ~app:*", ("FCALL", "f", "1", "app:1"), script_denied("FCALL")),
        ("+@all ~app:*", ("FCALL_RO", "f", "0"), script_denied("FCALL_RO")),
        ("+@all ~app:*", ("FUNCTION", "LIST"), None),  # runs nothing
        ("+@all ~app:*", ("SCRIPT", "EXISTS", "a"), None),
        ("+@all allkeys allchannels", ("EVAL", "return 1", "2", "app:1", "other"), None),
        ("+@all ~app:*", ("XREAD", "STREAMS", "app:s", "other", "0", "0"), NOPERM_KEY),
        ("+@all ~app:*", ("XREAD", "COUNT", "1", "STREAMS", "app:s", "app:t", "0", "0"), None),
        (
            "+@all ~app:*",
            ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "app:s", "other", ">", ">"),
            NOPERM_KEY,
        ),
        ("+@all ~app:*", ("ZUNIONSTORE", "other", "2", "app:a", "app:b"), NOPERM_KEY),
        ("+@all ~app:*", ("ZINTERCARD", "2", "app:a", "other"), NOPERM_KEY),
        ("+@all ~app:*", ("LMPOP", "2", "app:a", "other", "LEFT"), NOPERM_KEY),
        ("+@all ~app:*", ("BLMPOP", "0", "1", "app:a", "LEFT"), None),
        ("+@all ~app:*", ("GEORADIUS", "app:g", "0", "0", "1", "km", "STORE", "x"), NOPERM_KEY),
        ("+@all ~app:*", ("OBJECT", "ENCODING", "other"), NOPERM_KEY),
        ("+@all ~app:*", ("MEMORY", "USAGE", "other"), NOPERM_KEY),
        ("+@all ~app:*", ("MEMORY", "USAGE", "app:1"), None),
        ("+@all ~app:*", ("SORT", "app:l", "STORE", "other"), NOPERM_KEY),
        ("+@all ~app:*", ("SORT", "app:l", "STORE", "app:dst"), None),
        ("+@all ~app:*", ("SORT", "app:l", "BY", "w_*"), NOPERM_SORT_BY),
        ("+@all ~app:*", ("SORT", "app:l", "get", "h_*->f"), NOPERM_SORT_GET),
        ("+@all ~app:*", ("SORT", "app:l", "BY", "nosort", "GET", "#"), None),
        ("+@all allkeys", ("SORT", "app:l", "BY", "w_*"), None),
        ("+@all ~app:*", ("MSET", "app:1", "v", "other", "v"), NOPERM_KEY),
        ("+@all ~app:*", ("RENAME", "app:1", "other"), NOPERM_KEY),
        # rule order
        ("+@all -get allkeys", ("GET", "k"), command_denied("get")),
        ("-get +@all allkeys", ("GET", "k"), None),
        # scripting is a category like any other
        ("+@all -@scripting allkeys", ("EVAL", "return 1", "0"), command_denied("eval")),
        ("+@all -@scripting allkeys", ("FUNCTION", "LIST"), command_denied("function|list")),
        ("+@all -@scripting allkeys", ("SCRIPT", "FLUSH"), command_denied("script|flush")),
        ("+@read +eval allkeys allchannels", ("EVAL", "return 1", "0"), None),
        # a script can PUBLISH anywhere too: it needs allchannels as well
        ("+@read +eval allkeys", ("EVAL", "return 1", "0"), script_denied("EVAL", "channels")),
        ("+@all allkeys &a.*", ("FCALL", "f", "0"), script_denied("FCALL", "channels")),
        # connection commands needing no authentication are never refused
        ("", ("AUTH", "x"), None),
        ("", ("HELLO", "3"), None),
        ("", ("PING",), command_denied("ping")),
    ],
)
def test_check(scope: str, args: tuple[str, ...], expected: bytes | None) -> None:
    assert check(scope, *args) == expected


@pytest.mark.parametrize("name", sorted(KEYSPACE_WIDE))
def test_keyspace_wide_commands_need_allkeys(name: str) -> None:
    args = {
        "scan": ("SCAN", "0"),
        "keys": ("KEYS", "*"),
        "swapdb": ("SWAPDB", "0", "1"),
        "memory|stats": ("MEMORY", "STATS"),
    }.get(name, (name.upper(),))
    denial = check("+@all ~app:*", *args)
    assert denial is not None and denial.startswith(b"-NOPERM '")
    assert b"touches every key" in denial
    assert reason("+@all ~app:*", *args) == "keyspace"
    assert check("+@all allkeys", *args) is None
    # %R~* is a pattern, not allkeys: keyspace-wide commands stay denied
    assert check("+@all %R~*", *args) is not None


WHOLE_INSTANCE_SAMPLES = {
    "function|load": ("FUNCTION", "LOAD", "REPLACE", "#!lua name=lib"),
    "function|delete": ("FUNCTION", "DELETE", "lib"),
    "function|flush": ("FUNCTION", "FLUSH", "ASYNC"),
    "function|restore": ("FUNCTION", "RESTORE", "payload", "REPLACE"),
    "function|kill": ("FUNCTION", "KILL"),
    "function|stats": ("FUNCTION", "STATS"),
    "script|flush": ("SCRIPT", "FLUSH"),
    "script|kill": ("SCRIPT", "KILL"),
    "slowlog|get": ("SLOWLOG", "GET", "10"),
}


def test_every_whole_instance_command_has_a_sample() -> None:
    assert set(WHOLE_INSTANCE_SAMPLES) == set(WHOLE_INSTANCE)


@pytest.mark.parametrize("name", sorted(WHOLE_INSTANCE))
def test_whole_instance_commands_need_allkeys_and_allchannels(name: str) -> None:
    """What other keys' commands run with (functions, the script cache, the running script):
    only a key reaching every key and every channel may change it."""
    args = WHOLE_INSTANCE_SAMPLES[name]
    display = TABLE.resolve([a.encode() for a in args]).display_name  # type: ignore[union-attr]
    for scope, lacks in (("+@all ~app:* allchannels", "keys"), ("+@all allkeys &a.*", "channels")):
        denial = check(scope, *args)
        assert denial is not None and denial.startswith(f"-NOPERM '{display}' ".encode())
        assert f"may only access the {lacks} matching its patterns".encode() in denial
        assert denial.endswith(b"(a key with allkeys and allchannels may run it)\r\n")
        assert reason(scope, *args) == "keyspace"
    assert check("+@all allkeys allchannels", *args) is None
    category = "-@admin" if name == "slowlog|get" else "-@scripting"
    assert check(f"+@all {category} allkeys allchannels", *args) == command_denied(name)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("PUBLISH", "news.uk", "m"), None),
        (("PUBLISH", "sport", "m"), NOPERM_CHANNEL),
        (("SPUBLISH", "news.uk", "m"), None),
        (("SPUBLISH", "sport", "m"), NOPERM_CHANNEL),
        (("SUBSCRIBE", "news.uk", "news.fr"), None),
        (("SUBSCRIBE", "news.uk", "sport"), NOPERM_CHANNEL),
        (("SSUBSCRIBE", "sport"), NOPERM_CHANNEL),
        (("PSUBSCRIBE", "news.*"), None),
        (("PSUBSCRIBE", "news.u*"), NOPERM_CHANNEL),  # must literally be an allowed pattern
        (("PSUBSCRIBE", "*"), NOPERM_CHANNEL),
        (("UNSUBSCRIBE", "sport"), None),
        (("PUNSUBSCRIBE", "*"), None),
        (("PUBSUB", "NUMSUB", "sport"), None),  # introspection: filtered, not refused
    ],
)
def test_channels(args: tuple[str, ...], expected: bytes | None) -> None:
    assert check("+@all allkeys &news.*", *args) == expected
    assert check("+@all allkeys allchannels", *args) is None


def test_reasons() -> None:
    assert reason(READ_APP, "SET", "app:1", "v") == "command"
    assert reason(READ_APP, "GET", "other") == "key"
    assert reason("+@all &a", "PUBLISH", "b", "m") == "channel"
    assert reason("+@all ~a", "EVAL", "return 1", "0") == "keyspace"


def test_fast_names_need_no_further_check() -> None:
    everything = ScopeCheck(parse_scope(PRESETS["full"]), TABLE, FORWARDED)
    assert everything.fast == FORWARDED
    restricted = ScopeCheck(parse_scope("+@all ~app:*"), TABLE, FORWARDED)
    assert restricted.fast == {b"ping", b"PING"}  # keys and keyspace-wide need the full check
    read_only = ScopeCheck(parse_scope(READ_APP), TABLE, FORWARDED)
    assert read_only.fast == frozenset()  # PING is @connection, not granted here


def test_bindings_are_shared() -> None:
    scope = parse_scope(READ_APP)
    assert bind_scope(scope, TABLE, FORWARDED) is bind_scope(
        parse_scope(READ_APP), TABLE, FORWARDED
    )


def test_commands_a_table_lacks_are_simply_not_allowed() -> None:
    """A scope naming a command the backend lacks binds fine (it just never matches)."""
    check_ = ScopeCheck(parse_scope("+get +lmpop"), TABLE, FORWARDED)
    assert "get" in check_.allowed and "set" not in check_.allowed


def key_user_check(scope: str, *args: str) -> bytes | None:
    raw = [a.encode() for a in args]
    spec = TABLE.resolve(raw)
    assert spec is not None
    denial = ScopeCheck(parse_scope(scope), TABLE, FORWARDED).check(spec, raw, key_user=True)
    return None if denial is None else denial[1]


@pytest.mark.parametrize("name", sorted(SCRIPT_RUNNERS))
def test_scripts_run_as_the_key_user_check_the_declared_keys_only(name: str) -> None:
    """Where a script runs as the key's backend ACL user, Redis checks what it calls: the
    gateway checks the command and the keys it declares, as Redis's ACL does."""
    first = "a" * 40 if name.startswith("evalsha") else "f"
    assert key_user_check("+@all ~app:*", name.upper(), first, "1", "app:1") is None
    assert key_user_check("+@all allkeys &a.*", name.upper(), first, "0") is None
    assert key_user_check("+@all ~app:*", name.upper(), first, "1", "other:1") == NOPERM_KEY
    assert key_user_check("+@all -@scripting ~app:*", name.upper(), first, "0") == (
        command_denied(name)
    )
    # not as the key user (a session routing it elsewhere): refused, as before
    assert check("+@all ~app:*", name.upper(), first, "0") == script_denied(name.upper())


def test_scripting_denials_say_how_to_opt_in() -> None:
    denial = check(PRESETS["full"], "EVAL", "return 1", "0")
    assert denial is not None
    assert denial.startswith(b"-NOPERM this user has no permissions to run the 'eval' command: ")
    assert b"add +@scripting to its scope (docs/scopes.md)" in denial
    assert check(PRESETS["full"], "CONFIG", "SET", "x", "y") == (
        b"-NOPERM this user has no permissions to run the 'config|set' command\r\n"
    )
