"""Replies the gateway writes itself, and the COMMAND reply filters (bytes in, out)."""

from __future__ import annotations

import hiredis
import pytest

from redisgate.proxy.commands import answers
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.wire.replies import ReplyFramer, split_aggregate

TABLE = CommandTable.from_snapshot()
ALLOWED = answers.allowed_names(TABLE)


def bulk(text: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(text), text)


def verbatim(text: bytes) -> bytes:
    body = b"txt:" + text
    return b"=%d\r\n%s\r\n" % (len(body), body)


def parse(frame: bytes) -> object:
    reader = hiredis.Reader()
    reader.feed(frame)
    value = reader.gets()
    assert reader.gets() is False  # exactly one frame
    return value


def one_frame(frame: bytes) -> bytes:
    """The frame, checked to be exactly one well-formed reply (lengths included)."""
    assert ReplyFramer().feed(frame) == [frame]
    return frame


# --- split_aggregate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"*0\r\n", (b"*", [])),
        (b"*2\r\n$1\r\na\r\n:1\r\n", (b"*", [b"$1\r\na\r\n", b":1\r\n"])),
        (
            b"*2\r\n*2\r\n+x\r\n$0\r\n\r\n$4\r\n\r\n\r\n\r\n",
            (b"*", [b"*2\r\n+x\r\n$0\r\n\r\n", b"$4\r\n\r\n\r\n\r\n"]),
        ),
        (
            b"%2\r\n$1\r\nk\r\n:1\r\n+j\r\n~1\r\n,1.5\r\n",
            (b"%", [b"$1\r\nk\r\n", b":1\r\n", b"+j\r\n", b"~1\r\n,1.5\r\n"]),
        ),
        (b"~2\r\n+a\r\n_\r\n", (b"~", [b"+a\r\n", b"_\r\n"])),
    ],
)
def test_split_aggregate(frame: bytes, expected: tuple[bytes, list[bytes]]) -> None:
    assert split_aggregate(frame) == expected


@pytest.mark.parametrize(
    "frame",
    [
        b"$3\r\nabc\r\n",
        b"+OK\r\n",
        b"-ERR x\r\n",
        b":1\r\n",
        b">2\r\n$7\r\nmessage\r\n$1\r\na\r\n",
        b"*3\r\n$1\r\na\r\n:1\r\n",  # claims 3 elements, holds 2
        b"%1\r\n$1\r\nk\r\n",  # a key without its value
    ],
)
def test_split_aggregate_refuses_what_it_cannot_split(frame: bytes) -> None:
    assert split_aggregate(frame) is None


# --- COMMAND -------------------------------------------------------------------------------


def command_entry(name: bytes, *, resp3: bool = False) -> bytes:
    """A COMMAND INFO entry with the shapes Redis 7 uses (flags a set in RESP3, nested arrays,
    a bulk holding CRLF), so that byte-faithful copying is actually exercised."""
    flags = b"~2\r\n+write\r\n+denyoom\r\n" if resp3 else b"*2\r\n+write\r\n+denyoom\r\n"
    key_spec = b"*4\r\n$5\r\nflags\r\n*1\r\n$2\r\nRW\r\n$5\r\nnotes\r\n$4\r\na\r\nb\r\n"
    return (
        b"*10\r\n"
        + bulk(name)
        + b":-3\r\n"
        + flags
        + b":1\r\n:1\r\n:1\r\n"
        + b"*2\r\n$6\r\n@write\r\n$7\r\n@string\r\n"
        + b"*0\r\n"
        + b"*1\r\n"
        + key_spec
        + b"*0\r\n"
    )


@pytest.mark.parametrize("resp3", [False, True])
def test_command_list_filter_keeps_allowed_entries_byte_for_byte(resp3: bool) -> None:
    get, config, set_, flushall = (
        command_entry(n, resp3=resp3) for n in (b"get", b"config", b"set", b"flushall")
    )
    monitor = command_entry(b"MONITOR", resp3=resp3)  # names compare case-insensitively
    reply = b"*5\r\n" + get + monitor + set_ + flushall + config
    out = answers.filter_command_list(ALLOWED)(reply)
    assert out == one_frame(b"*2\r\n" + get + set_)


def test_command_list_filter_on_a_list_of_names() -> None:
    reply = b"*4\r\n" + bulk(b"get") + bulk(b"monitor") + bulk(b"SET") + b"+shutdown\r\n"
    out = answers.filter_command_list(ALLOWED)(reply)
    assert out == b"*2\r\n" + bulk(b"get") + bulk(b"SET")


def test_command_list_filter_keeps_nulls_and_unparsable_frames() -> None:
    f = answers.filter_command_list(ALLOWED)
    assert f(b"*2\r\n*-1\r\n_\r\n") == b"*2\r\n*-1\r\n_\r\n"
    assert f(b"-ERR unknown\r\n") == b"-ERR unknown\r\n"
    assert f(b"*3\r\n$1\r\na\r\n") == b"*3\r\n$1\r\na\r\n"  # truncated: left alone


def test_command_list_keeps_allowed_subcommands() -> None:
    names = [b"client|id", b"object|encoding", b"config|set", b"client|pause"]
    reply = b"*4\r\n" + b"".join(bulk(n) for n in names)
    out = answers.filter_command_list(ALLOWED)(reply)
    assert out == b"*2\r\n" + bulk(b"client|id") + bulk(b"object|encoding")


def test_command_info_keeps_one_element_per_name_asked() -> None:
    reply = b"*3\r\n" + command_entry(b"get") + command_entry(b"monitor") + command_entry(b"set")
    out = answers.filter_command_list(ALLOWED, keep_positions=True)(reply)
    assert out == b"*3\r\n" + command_entry(b"get") + b"*-1\r\n" + command_entry(b"set")


DOC = b"*4\r\n$7\r\nsummary\r\n$6\r\nx\r\ny z\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n"
DOC3 = b"%2\r\n$7\r\nsummary\r\n$6\r\nx\r\ny z\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n"


def test_command_docs_filter_resp2_flat_array() -> None:
    reply = b"*6\r\n" + bulk(b"get") + DOC + bulk(b"monitor") + DOC + bulk(b"client") + DOC
    out = answers.filter_command_docs(ALLOWED)(reply)
    assert out == b"*4\r\n" + bulk(b"get") + DOC + bulk(b"client") + DOC


def test_command_docs_filter_resp3_map() -> None:
    reply = b"%3\r\n" + bulk(b"shutdown") + DOC3 + bulk(b"GET") + DOC3 + bulk(b"set") + DOC3
    out = answers.filter_command_docs(ALLOWED)(reply)
    assert out == b"%2\r\n" + bulk(b"GET") + DOC3 + bulk(b"set") + DOC3
    assert out == one_frame(out)


def test_command_docs_filter_leaves_errors_and_empty_replies() -> None:
    f = answers.filter_command_docs(ALLOWED)
    assert f(b"-ERR x\r\n") == b"-ERR x\r\n"
    assert f(b"*0\r\n") == b"*0\r\n"
    assert f(b"%0\r\n") == b"%0\r\n"


def test_allowed_names_and_count() -> None:
    for name in [b"get", b"set", b"client", b"acl", b"command", b"object", b"eval", b"ping"]:
        assert name in ALLOWED
    for name in [b"flushall", b"monitor", b"shutdown", b"debug", b"swapdb", b"move"]:
        assert name not in ALLOWED
    top_level = [name for name in ALLOWED if b"|" not in name]
    assert answers.command_count_reply(ALLOWED) == b":%d\r\n" % len(top_level)
    assert b"client|id" in ALLOWED and b"client|pause" not in ALLOWED  # as COMMAND LIST names


def test_allowed_names_on_an_instance_owning_its_server() -> None:
    owned = answers.allowed_names(TABLE, shared=False)
    assert owned > ALLOWED
    assert {b"flushall", b"slowlog", b"slowlog|get", b"config|get", b"latency"} <= owned
    assert not {b"config|set", b"monitor", b"shutdown", b"debug"} & owned


def test_allowed_names_leave_out_containers_with_nothing_allowed() -> None:
    assert not {b"config", b"cluster", b"latency", b"slowlog", b"module"} & ALLOWED
    # containers with at least one allowed subcommand stay
    assert {b"client", b"acl", b"memory", b"pubsub", b"script", b"function"} <= ALLOWED


def test_acl_cat_reply() -> None:
    assert answers.acl_cat_reply(TABLE, b"no-such-category") is None
    reply = answers.acl_cat_reply(TABLE, b"pubsub")
    assert reply is not None
    names = parse(reply)
    assert isinstance(names, list)
    assert b"publish" in names and b"pubsub|numsub" in names  # full names, as Redis lists
    assert b"pubsub|channels" not in names  # denied
    assert names == sorted(names)


# --- HELLO, CLIENT INFO, names -------------------------------------------------------------

HELLO_FIELDS = (
    b"$6\r\nserver\r\n$5\r\nredis\r\n"
    b"$7\r\nversion\r\n$6\r\n7.2.4a\r\n"
    b"$5\r\nproto\r\n:%d\r\n"
    b"$2\r\nid\r\n:9001\r\n"
    b"$4\r\nmode\r\n$10\r\nstandalone\r\n"
    b"$4\r\nrole\r\n$6\r\nmaster\r\n"
    b"$7\r\nmodules\r\n*0\r\n"
)


def test_hello_reply_resp2_is_a_flat_array() -> None:
    out = answers.hello_reply(protocol=2, client_id=9001, version="7.2.4a", resp3=False)
    assert out == b"*14\r\n" + HELLO_FIELDS % 2
    assert parse(out) == [
        b"server", b"redis", b"version", b"7.2.4a", b"proto", 2, b"id", 9001,
        b"mode", b"standalone", b"role", b"master", b"modules", [],
    ]  # fmt: skip


def test_hello_reply_resp3_is_a_map() -> None:
    out = answers.hello_reply(protocol=3, client_id=9001, version="7.2.4a", resp3=True)
    assert out == b"%7\r\n" + HELLO_FIELDS % 3
    assert out == one_frame(out)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        (b"", True),
        (b"worker-1", True),
        (b"!~{}[]:;@#$%^&*()_+=", True),
        (b"a b", False),
        (b"a\nb", False),
        (b"a\rb", False),
        (b"a\tb", False),
        (b"\x00", False),
        (b"\x7f", False),
        (b"caf\xc3\xa9", False),
    ],
)
def test_valid_client_name(name: bytes, valid: bool) -> None:
    assert answers.valid_client_name(name) is valid
