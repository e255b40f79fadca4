"""RequestFramer, encoders and canned replies: bytes in, commands and bytes out."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisgate.errors import RemoteProtocolError
from redisgate.proxy.wire import encode as wire_encode
from redisgate.proxy.wire import framing_limits as wire_limits
from redisgate.proxy.wire import inline as wire_inline
from redisgate.proxy.wire import replies as wire_replies
from redisgate.proxy.wire import requests as wire_requests
from redisgate.proxy.wire import runs as wire_runs
from redisgate.proxy.wire.encode import (
    encode_array,
    encode_bulk,
    encode_command,
    encode_error,
    encode_int,
    encode_map,
    encode_push,
    encode_simple,
)
from redisgate.proxy.wire.replies import ReplyFramer
from redisgate.proxy.wire.requests import Command, RequestFramer


class SlowRequestFramer(RequestFramer):
    """The framer with its split fast path off: only the Redis-like header scanner runs."""

    _FAST_PATH = False


class CountingFramer(RequestFramer):
    """Counts parse attempts, to show that a waiting command is not re-scanned on every feed."""

    attempts = 0

    def _parse_one(self, buf: bytes | bytearray, base: int) -> tuple[Command | None, int]:
        CountingFramer.attempts += 1
        return super()._parse_one(buf, base)


Factory = Callable[..., RequestFramer]


@pytest.fixture(params=[RequestFramer, SlowRequestFramer], ids=["fast", "slow"])
def make(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = request.param
    return factory


def ref_encode(*args: bytes) -> bytes:
    """Reference multibulk encoder, written independently of the module under test."""
    out = b"*" + str(len(args)).encode() + b"\r\n"
    for arg in args:
        out += b"$" + str(len(arg)).encode() + b"\r\n" + arg + b"\r\n"
    return out


def feed_all(framer: RequestFramer, *pieces: bytes) -> list[Command]:
    """Feed pieces one by one, collecting commands after each, the way client.py will."""
    out: list[Command] = []
    for piece in pieces:
        framer.feed(piece)
        while (command := framer.next_command()) is not None:
            out.append(command)
    return out


def error_of(framer: RequestFramer, data: bytes) -> str:
    framer.feed(data)
    with pytest.raises(RemoteProtocolError) as info:
        framer.drain()
    return str(info.value)


# Framing ---------------------------------------------------------------------------------


def test_one_command(make: Factory) -> None:
    raw = ref_encode(b"set", b"key:1", b"value")
    framer = make()
    framer.feed(raw)
    command = framer.next_command()
    assert command == Command([b"set", b"key:1", b"value"], raw)
    assert command is not None and command.args[0] == b"set"  # not case-folded
    assert command.raw is raw  # a whole-buffer command is not even copied
    assert framer.next_command() is None
    assert framer.buffered_bytes == 0


def test_pipeline_in_one_feed(make: Factory) -> None:
    commands = [[b"SET", b"key:%d" % i, b"v" * (i % 7)] for i in range(500)]
    raws = [ref_encode(*args) for args in commands]
    framer = make()
    framer.feed(b"".join(raws))
    got = framer.drain()
    assert [c.args for c in got] == commands
    assert [c.raw for c in got] == raws
    assert framer.drain() == []


def test_bytes_like_input_and_accounting(make: Factory) -> None:
    framer = make()
    framer.feed(bytearray(ref_encode(b"GET", b"a")))
    framer.feed(memoryview(ref_encode(b"GET", b"b") + b"*1\r\n"))
    assert framer.buffered_bytes == 2 * len(ref_encode(b"GET", b"a")) + 4
    command = framer.next_command()
    assert command is not None and type(command.raw) is bytes
    assert all(type(arg) is bytes for arg in command.args)
    assert framer.buffered_bytes == len(ref_encode(b"GET", b"b")) + 4  # one parsed ahead
    with pytest.raises(AttributeError):
        command.raw = b""  # type: ignore[misc]


def test_next_command_and_drain_agree(make: Factory) -> None:
    data = b"".join(ref_encode(b"GET", b"k%d" % i) for i in range(20))
    one, other = make(), make()
    other.feed(data)
    assert feed_all(one, data) == other.drain()


@pytest.mark.parametrize(
    "args",
    [
        [b"SET", b"k", b""],  # empty argument
        [b"SET", b"k", b"a\r\nb\r\n"],  # CRLF inside an argument
        [b"SET", b"k", b"\r\n$3\r\nfoo\r\n"],  # looks like RESP inside an argument
        [b"SET", b"k", b"x" * 5000],  # longer than the fast path's header table
        [b"MSET", *[b"k" for _ in range(1500)]],  # more arguments than the fast table
        [b"\x00\xff\r", b"\n"],
    ],
)
def test_binary_safe_arguments(make: Factory, args: list[bytes]) -> None:
    raw = ref_encode(*args)
    framer = make()
    pipeline = raw + ref_encode(b"PING") + raw
    assert feed_all(framer, pipeline) == [
        Command(args, raw),
        Command([b"PING"], ref_encode(b"PING")),
        Command(args, raw),
    ]


def test_half_received_command_is_never_returned(make: Factory) -> None:
    data = ref_encode(b"SET", b"key", b"a\r\nb") + ref_encode(b"GET", b"key")
    first = len(ref_encode(b"SET", b"key", b"a\r\nb"))
    for cut in range(len(data) + 1):
        framer = make()
        early = feed_all(framer, data[:cut])
        assert len(early) == (2 if cut == len(data) else 1 if cut >= first else 0)
        late = feed_all(framer, data[cut:])
        assert [c.raw for c in early + late] == [data[:first], data[first:]]


def test_byte_by_byte(make: Factory) -> None:
    data = ref_encode(b"SET", b"k", b"v") + b"PING\r\n" + ref_encode(b"GET", b"k")
    framer = make()
    got = feed_all(framer, *(data[i : i + 1] for i in range(len(data))))
    assert [c.args for c in got] == [[b"SET", b"k", b"v"], [b"PING"], [b"GET", b"k"]]


@pytest.mark.parametrize("empty", [b"*0\r\n", b"*-1\r\n", b"*-5\r\n", b"\r\n", b"\n", b" \t\r\n"])
def test_empty_requests_are_skipped(make: Factory, empty: bytes) -> None:
    framer = make()
    data = empty + ref_encode(b"PING") + empty
    assert feed_all(framer, data) == [Command([b"PING"], ref_encode(b"PING"))]
    assert framer.buffered_bytes == 0


def test_feeding_again_before_parsing(make: Factory) -> None:
    framer = make()
    framer.feed(ref_encode(b"GET", b"a")[:7])
    framer.feed(ref_encode(b"GET", b"a")[7:] + ref_encode(b"GET", b"b")[:3])
    framer.feed(ref_encode(b"GET", b"b")[3:])
    assert [c.args for c in framer.drain()] == [[b"GET", b"a"], [b"GET", b"b"]]


@pytest.mark.parametrize("piece", [4096, 65536])
@pytest.mark.parametrize("header_bytewise", [False, True])
def test_five_megabyte_bulk(piece: int, header_bytewise: bool) -> None:
    value = bytes(range(256)) * (5 * 4096)  # 5 MiB, CRLFs included
    raw = ref_encode(b"SET", b"big", value)
    head = len(raw) - len(value) - 2  # everything before the value
    pieces = [raw[i : i + 1] for i in range(head + 16)] if header_bytewise else []
    start = head + 16 if header_bytewise else 0
    pieces += [raw[i : i + piece] for i in range(start, len(raw), piece)]
    framer = CountingFramer()
    CountingFramer.attempts = 0
    assert feed_all(framer, *pieces) == [Command([b"SET", b"big", value], raw)]
    # Each header byte may try to parse once; once the bulk header is read, the framer waits
    # for the whole value (1280 pieces of 4 KiB: still at most two more attempts).
    assert CountingFramer.attempts <= (head + 16 if header_bytewise else 1) + 2


# Inline commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"PING\r\n", [b"PING"]),
        (b"PING\n", [b"PING"]),
        (b'SET k "a b"\n', [b"SET", b"k", b"a b"]),
        (b"  get   key  \r\n", [b"get", b"key"]),
        (rb'SET k "\x00\r\n"' + b"\r\n", [b"SET", b"k", b"\x00\r\n"]),
    ],
)
def test_inline(make: Factory, line: bytes, args: list[bytes]) -> None:
    framer = make()
    assert feed_all(framer, line) == [Command(args, encode_command(args))]


def test_inline_mixed_with_multibulk(make: Factory) -> None:
    data = b"PING\r\n" + ref_encode(b"GET", b"k") + b"ECHO hi\n\r\n" + ref_encode(b"PING")
    got = feed_all(make(), data)
    assert [c.args for c in got] == [[b"PING"], [b"GET", b"k"], [b"ECHO", b"hi"], [b"PING"]]
    assert all(c.raw == encode_command(c.args) for c in got)


# Errors: Redis's own wording -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*abc\r\n", "Protocol error: invalid multibulk length"),
        (b"*01\r\n", "Protocol error: invalid multibulk length"),
        (b"*+1\r\n", "Protocol error: invalid multibulk length"),
        (b"* 1\r\n", "Protocol error: invalid multibulk length"),
        (b"*\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\rX$1\r\na\r\n", "Protocol error: invalid multibulk length"),
        (b"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "Protocol error: expected '$', got 'f'"),
        (b"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
        (b"*1\r\n*1\r\n$1\r\na\r\n", "Protocol error: expected '$', got '*'"),
        (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$01\r\na\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$1\rX", "Protocol error: invalid bulk length"),
        (b"*1\r\n$3\r\nfooXY", "Protocol error: bulk data not followed by CRLF"),
        (b'ECHO "abc\r\n', "Protocol error: unbalanced quotes in request"),
        (b"ECHO 'a'b\n", "Protocol error: unbalanced quotes in request"),
    ],
)
def test_malformed_requests(make: Factory, data: bytes, message: str) -> None:
    assert error_of(make(), data) == message


def test_too_big_header_and_inline_lines(make: Factory) -> None:
    limit = 1000
    assert error_of(make(max_inline_bytes=limit), b"*" + b"1" * limit) == (
        "Protocol error: too big mbulk count string"
    )
    assert error_of(make(max_inline_bytes=limit), b"*1\r\n$" + b"1" * limit) == (
        "Protocol error: too big bulk count string"
    )
    assert error_of(make(max_inline_bytes=limit), b"PING" * limit) == (
        "Protocol error: too big inline request"
    )
    assert error_of(make(max_inline_bytes=limit), b"A" * (limit + 1) + b"\r\n") == (
        "Protocol error: too big inline request"
    )
    # Up to the limit, a line without its end just waits, and a full line is accepted (its
    # line ending does not count).
    framer = make(max_inline_bytes=limit)
    framer.feed(b"PING" + b" " * (limit - 4))
    assert framer.drain() == []
    framer.feed(b"\r\n")
    assert [c.args for c in framer.drain()] == [[b"PING"]]


def test_limits_apply_before_the_body_arrives(make: Factory) -> None:
    header = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n"
    assert error_of(make(max_bulk_bytes=1000), header) == "Protocol error: invalid bulk length"
    message = error_of(make(max_request_bytes=10_000), header)
    assert message == "max request size exceeded (limit 10000 bytes)"
    assert error_of(make(max_array_len=2), header) == "Protocol error: invalid multibulk length"


def test_request_limit_counts_the_whole_command(make: Factory) -> None:
    raw = ref_encode(b"MSET", *[b"k%02d" % i for i in range(20)])
    assert len(raw) > 100
    assert error_of(make(max_request_bytes=100), raw).startswith("max request size exceeded")
    framer = make(max_request_bytes=len(raw))
    assert feed_all(framer, raw)[0].raw == raw
    # A command waiting for a header line cannot grow past the limit either.
    framer = make(max_request_bytes=100, max_inline_bytes=1000)
    assert error_of(framer, b"*2\r\n$1\r\na\r\n" + b"1" * 200).startswith(
        "max request size exceeded"
    )


def test_limits_on_inline_commands(make: Factory) -> None:
    assert error_of(make(max_array_len=2), b"SET k v\r\n") == (
        "Protocol error: invalid multibulk length"
    )
    assert error_of(make(max_bulk_bytes=3), b"SET k value\r\n") == (
        "Protocol error: invalid bulk length"
    )
    assert error_of(make(max_request_bytes=20), b"SET key value\r\n").startswith(
        "max request size exceeded"
    )


def test_good_commands_come_out_before_the_error(make: Factory) -> None:
    data = ref_encode(b"GET", b"a") + ref_encode(b"GET", b"b") + b"*1\r\n:1\r\n"
    framer = make()
    framer.feed(data)
    assert [c.args for c in framer.drain()] == [[b"GET", b"a"], [b"GET", b"b"]]
    with pytest.raises(RemoteProtocolError, match="expected '\\$', got ':'"):
        framer.drain()
    other = make()
    other.feed(data)
    assert other.next_command() is not None
    assert other.next_command() is not None
    with pytest.raises(RemoteProtocolError):
        other.next_command()


def test_framer_stays_failed(make: Factory) -> None:
    framer = make()
    framer.feed(b"*x\r\n")
    with pytest.raises(RemoteProtocolError) as first:
        framer.next_command()
    framer.feed(ref_encode(b"PING"))
    for call in (framer.next_command, framer.drain):
        with pytest.raises(RemoteProtocolError) as again:
            call()
        assert again.value is first.value


# Limits that change (little before AUTH, more after) ------------------------------------------


def test_relaxing_limits_rejudges_commands_parsed_ahead(make: Factory) -> None:
    auth = ref_encode(b"AUTH", b"secret")
    big = ref_encode(b"SET", b"k", b"v" * 20_000)
    framer = make(max_bulk_bytes=16_384, max_array_len=10)
    framer.feed(auth + big)
    assert framer.next_command() == Command([b"AUTH", b"secret"], auth)
    framer.set_limits(max_bulk_bytes=512 * 1024 * 1024, max_array_len=1024 * 1024)
    assert framer.max_bulk_bytes == 512 * 1024 * 1024
    assert framer.max_array_len == 1024 * 1024
    assert framer.next_command() == Command([b"SET", b"k", b"v" * 20_000], big)
    # Without the change, the same bytes are refused.
    strict = make(max_bulk_bytes=16_384)
    strict.feed(auth + big)
    assert strict.next_command() is not None
    with pytest.raises(RemoteProtocolError, match="invalid bulk length"):
        strict.next_command()


def test_pre_auth_limits_speak_like_redis(make: Factory) -> None:
    def pre_auth() -> RequestFramer:
        return make(max_array_len=10, max_bulk_bytes=16_384, unauthenticated=True)

    assert pre_auth().unauthenticated
    assert error_of(pre_auth(), b"*11\r\n") == ("Protocol error: unauthenticated multibulk length")
    assert error_of(pre_auth(), b"*2\r\n$4\r\nAUTH\r\n$16385\r\n") == (
        "Protocol error: unauthenticated bulk length"
    )
    assert error_of(pre_auth(), b"*3000000000\r\n") == "Protocol error: invalid multibulk length"
    assert error_of(pre_auth(), b"*1\r\n$-5\r\n") == "Protocol error: invalid bulk length"
    # Past int64 a length is invalid to Redis (string2ll) before it is long (found by fuzzing).
    assert error_of(pre_auth(), b"*1\r\n$9223372036854775808\r\n") == (
        "Protocol error: invalid bulk length"
    )
    framer = pre_auth()
    framer.feed(ref_encode(b"AUTH", b"pw") + ref_encode(*[b"k"] * 11))
    assert framer.next_command() is not None
    framer.set_limits(max_array_len=1024, unauthenticated=False)
    assert not framer.unauthenticated
    assert framer.next_command() == Command([b"k"] * 11, ref_encode(*[b"k"] * 11))


def test_changing_limits_mid_command(make: Factory) -> None:
    raw = ref_encode(b"SET", b"k", b"v" * 3000) + ref_encode(b"PING")
    framer = make(max_request_bytes=2000, max_inline_bytes=10)
    framer.feed(raw[:20])
    assert framer.drain() == []
    framer.set_limits(max_request_bytes=10_000, max_inline_bytes=100)
    assert (framer.max_request_bytes, framer.max_inline_bytes) == (10_000, 100)
    assert [c.args[0] for c in feed_all(framer, raw[20:])] == [b"SET", b"PING"]


def test_tightening_limits_applies_to_what_is_still_buffered(make: Factory) -> None:
    framer = make()
    framer.feed(ref_encode(b"PING") + ref_encode(b"SET", b"k", b"v" * 100))
    assert framer.next_command() is not None
    framer.set_limits(max_bulk_bytes=10)
    with pytest.raises(RemoteProtocolError, match="invalid bulk length"):
        framer.next_command()


# Property tests ------------------------------------------------------------------------------

arguments = st.lists(
    st.one_of(
        st.binary(max_size=12),
        st.sampled_from([b"", b"\r\n", b"\r", b"\n", b"$3\r\nfoo\r\n", b"*1\r\n"]),
        st.integers(min_value=4090, max_value=4100).map(lambda n: b"\r\n" * (n // 2)),
    ),
    min_size=1,
    max_size=6,
)
inline_words = st.lists(st.from_regex(rb"\A[A-Za-z0-9:_]{1,8}\Z"), min_size=1, max_size=4)
requests = st.lists(
    st.one_of(arguments.map(lambda a: (a, False)), inline_words.map(lambda a: (a, True))),
    min_size=1,
    max_size=12,
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=150, deadline=None)
@given(requests=requests, cuts=st.lists(st.integers(min_value=0), max_size=8))
@pytest.mark.parametrize("factory", [RequestFramer, SlowRequestFramer], ids=["fast", "slow"])
def test_random_requests_under_random_splits(
    factory: Factory, requests: list[tuple[list[bytes], bool]], cuts: list[int]
) -> None:
    stream = b""
    expected = []
    for args, inline in requests:
        stream += b" ".join(args) + b"\r\n" if inline else ref_encode(*args)
        expected.append(Command(args, ref_encode(*args)))
    assert feed_all(factory(), *split_at(stream, cuts)) == expected


# Encoders and canned replies -----------------------------------------------------------------


def test_encode_command() -> None:
    assert encode_command([b"SET", "ключ", 42]) == ref_encode(b"SET", "ключ".encode(), b"42")
    assert encode_command([bytearray(b"a"), memoryview(b"b")]) == ref_encode(b"a", b"b")
    assert encode_command([]) == b"*0\r\n"


def test_simple_replies() -> None:
    assert encode_simple("OK") == wire_encode.REPLY_OK
    assert encode_simple(b"PONG") == wire_encode.REPLY_PONG
    assert encode_simple("a\r\nb") == b"+a  b\r\n"
    assert encode_error("ERR", "bad\r\nthing") == b"-ERR bad  thing\r\n"
    assert encode_error("NOAUTH", "Authentication required.") == wire_encode.REPLY_NOAUTH
    assert encode_error("ERR", "") == b"-ERR\r\n"
    assert encode_int(-7) == b":-7\r\n"
    assert encode_int(0) == wire_encode.REPLY_ZERO


def test_null_encodings_depend_on_protocol() -> None:
    assert encode_bulk(None) == b"$-1\r\n" == wire_encode.REPLY_NULL_BULK
    assert encode_bulk(None, resp3=True) == b"_\r\n" == wire_encode.REPLY_NULL
    assert encode_array(None) == wire_encode.REPLY_NULL_ARRAY
    assert encode_array(None, resp3=True) == wire_encode.REPLY_NULL
    assert encode_bulk("é") == b"$2\r\n\xc3\xa9\r\n"
    assert encode_array([]) == wire_encode.REPLY_EMPTY_ARRAY


def hello(resp3: bool) -> bytes:
    return encode_map(
        {
            "server": encode_bulk("redis"),
            "version": encode_bulk("7.2.0"),
            "proto": encode_int(3 if resp3 else 2),
            "id": encode_int(5),
            "mode": encode_bulk("standalone"),
            "role": encode_bulk("master"),
            "modules": encode_array([]),
        },
        resp3=resp3,
    )


def test_hello_reply_as_clients_parse_it() -> None:
    reader = hiredis.Reader()
    reader.feed(hello(resp3=False))
    assert reader.gets() == [
        *(b"server", b"redis", b"version", b"7.2.0", b"proto", 2, b"id", 5),
        *(b"mode", b"standalone", b"role", b"master", b"modules", []),
    ]
    reader.feed(hello(resp3=True))
    assert reader.gets() == {
        **{b"server": b"redis", b"version": b"7.2.0", b"proto": 3, b"id": 5},
        **{b"mode": b"standalone", b"role": b"master", b"modules": []},
    }
    assert hello(resp3=True).startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n")
    assert encode_map([("a", b":1\r\n")]) == b"*2\r\n$1\r\na\r\n:1\r\n"
    assert encode_map({b"a": b":1\r\n"}, resp3=True) == b"%1\r\n$1\r\na\r\n:1\r\n"


def test_push_encoding() -> None:
    message = [encode_bulk("message"), encode_bulk("chan"), encode_bulk("hi")]
    assert encode_push(message, resp3=True).startswith(b">3\r\n")
    assert encode_push(message) == encode_array(message)


def test_canned_replies_are_single_frames() -> None:
    canned = {name: value for name, value in vars(wire_encode).items() if name.startswith("REPLY_")}
    assert canned["REPLY_NOAUTH"] == b"-NOAUTH Authentication required.\r\n"
    assert canned["REPLY_WRONGPASS"] == (
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    )
    for name, value in canned.items():
        assert ReplyFramer().feed(value) == [value], name
        assert set(wire_encode.__all__) >= {name}


def test_sans_io() -> None:
    """The RESP modules never touch sockets, the event loop, the clock or Postgres."""
    for module in (wire_requests, wire_encode, wire_inline, wire_replies, wire_runs, wire_limits):
        tree = ast.parse(inspect.getsource(module))
        imported = {
            name.split(".")[0]
            for node in ast.walk(tree)
            for name in (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        }
        assert not imported & {"asyncio", "socket", "time", "asyncpg", "selectors"}, module
