"""ReplyFramer: upstream bytes in, the exact bytes of each top-level reply out."""

from __future__ import annotations

from typing import Any

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisgate.errors import RemoteProtocolError
from redisgate.proxy.wire.replies import ReplyFramer, is_error, is_push
from tests.fuzz.reference import frame_replies

CRLF = b"\r\n"


class CountingReplyFramer(ReplyFramer):
    """Counts scans, to show that a waiting reply is not re-scanned on every feed."""

    scans = 0

    def _scan(self, buf: bytes, out: list[bytes], p: int = 0) -> None:
        CountingReplyFramer.scans += 1
        super()._scan(buf, out, p)


def frames_of(*pieces: bytes, framer: ReplyFramer | None = None) -> list[bytes]:
    framer = framer or ReplyFramer()
    out: list[bytes] = []
    for piece in pieces:
        out += framer.feed(piece)
    return out


def bulks(*items: bytes) -> bytes:
    return b"".join(b"$%d\r\n%s\r\n" % (len(item), item) for item in items)


# One frame of each kind (RESP2 and RESP3) ------------------------------------------------------

EXAMPLES = {
    "simple": b"+OK\r\n",
    "simple, empty": b"+\r\n",
    "error": b"-ERR unknown command 'FOO', with args beginning with: \r\n",
    "integer": b":1000\r\n",
    "negative integer": b":-42\r\n",
    "zero": b":0\r\n",
    "bulk": b"$3\r\nfoo\r\n",
    "empty bulk": b"$0\r\n\r\n",
    "bulk with CRLF inside": b"$8\r\n\r\n$3\r\nab\r\n",
    "null bulk": b"$-1\r\n",
    "null array": b"*-1\r\n",
    "empty array": b"*0\r\n",
    "array": b"*3\r\n:1\r\n$1\r\na\r\n+b\r\n",
    "nested": b"*2\r\n*2\r\n:1\r\n:2\r\n*0\r\n",
    "null": b"_\r\n",
    "double": b",3.14\r\n",
    "double exponent": b",-1.5e-10\r\n",
    "double inf": b",inf\r\n",
    "double -inf": b",-inf\r\n",
    "double nan": b",nan\r\n",
    "true": b"#t\r\n",
    "false": b"#f\r\n",
    "big number": b"(3492890328409238509324850943850943825024385\r\n",
    "blob error": b"!21\r\nSYNTAX invalid syntax\r\n",
    "verbatim": b"=15\r\ntxt:Some string\r\n",
    "map": b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
    "empty map": b"%0\r\n",
    "set": b"~3\r\n+a\r\n+b\r\n:3\r\n",
    "push": b">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$2\r\nhi\r\n",
    "attribute then reply": b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n",
    "attribute in an array": b"*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n",
    "empty attribute": b"|0\r\n+OK\r\n",
    "streamed string": b"$?\r\n;4\r\nHell\r\n;6\r\no worl\r\n;1\r\nd\r\n;0\r\n",
    "streamed array": b"*?\r\n:1\r\n$1\r\na\r\n*?\r\n.\r\n.\r\n",
    "streamed map": b"%?\r\n+a\r\n:1\r\n.\r\n",
    "long bulk array": b"*12\r\n" + bulks(*(b"item:%d" % i for i in range(12))),
    "long array, mixed": b"*10\r\n" + bulks(*(b"v%d" % i for i in range(8))) + b"$-1\r\n:7\r\n",
    "long map": b"%8\r\n" + bulks(*(b"f%d" % i for i in range(16))),
    "long array of arrays": b"*9\r\n" + b"*1\r\n$1\r\nx\r\n" * 9,
    "long bulk array, CRLF data": b"*9\r\n" + bulks(*([b"a\r\nb"] * 9)),
    "long bulk array, big item": b"*9\r\n" + bulks(*([b"x" * 5000] + [b"y"] * 8)),
}


@pytest.mark.parametrize("frame", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_each_kind_alone_and_in_a_stream(frame: bytes) -> None:
    assert ReplyFramer().feed(frame) == [frame]
    stream = b"+OK\r\n" + frame + frame + b":1\r\n"
    assert frames_of(stream) == [b"+OK\r\n", frame, frame, b":1\r\n"]


@pytest.mark.parametrize("frame", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_each_kind_cut_anywhere(frame: bytes) -> None:
    stream = frame + b"+OK\r\n"
    for cut in range(1, len(stream)):
        framer = ReplyFramer()
        first = framer.feed(stream[:cut])
        assert first == ([frame] if cut >= len(frame) else [])
        assert first + framer.feed(stream[cut:]) == [frame, b"+OK\r\n"]


def test_byte_by_byte() -> None:
    stream = b"".join(EXAMPLES.values())
    assert frames_of(*(stream[i : i + 1] for i in range(len(stream)))) == list(EXAMPLES.values())


def test_push_and_error_are_told_apart() -> None:
    kinds = {frame: (is_push(frame), is_error(frame)) for frame in EXAMPLES.values()}
    assert kinds[EXAMPLES["push"]] == (True, False)
    assert kinds[EXAMPLES["error"]] == (False, True)
    assert kinds[EXAMPLES["blob error"]] == (False, True)
    assert sum(push for push, _ in kinds.values()) == 1
    assert sum(error for _, error in kinds.values()) == 2
    attributed_push = b"|1\r\n+a\r\n*1\r\n+b\r\n|0\r\n>1\r\n+invalidate\r\n"
    assert frames_of(attributed_push) == [attributed_push]
    assert is_push(attributed_push) and not is_error(attributed_push)
    assert is_error(b"|1\r\n+a\r\n+b\r\n-ERR no\r\n")
    assert not is_push(b"|1\r\n+a\r\n+b\r\n*1\r\n>1\r\n")


def test_deep_nesting_needs_no_recursion() -> None:
    depth = 100_000
    frame = b"*1\r\n" * depth + b"|1\r\n+a\r\n+b\r\n" + b":1\r\n"
    assert frames_of(frame + b"+OK\r\n") == [frame, b"+OK\r\n"]
    pieces = [frame[i : i + 4099] for i in range(0, len(frame), 4099)]
    assert frames_of(*pieces) == [frame]


@pytest.mark.parametrize("piece", [4096, 65536])
def test_five_megabyte_bulk_in_pieces(piece: int) -> None:
    frame = b"$5242880\r\n" + bytes(range(256)) * 20480 + CRLF
    pieces = [frame[:1], frame[1:3], *(frame[i : i + piece] for i in range(3, len(frame), piece))]
    framer = CountingReplyFramer()
    CountingReplyFramer.scans = 0
    assert frames_of(*pieces, framer=framer) == [frame]
    assert CountingReplyFramer.scans <= 4  # waits for the whole bulk: no re-scans
    assert framer.buffered_bytes == 0


def test_bulk_body_in_pieces_is_kept_as_read() -> None:
    """A bulk cut off in its body keeps the reads that carry it as they are (no growing
    copy), and the frame is joined once; the replies after it in the last read follow."""
    body = bytes(range(256)) * 400
    frame = b"*2\r\n$3\r\nfoo\r\n$102400\r\n" + body + CRLF
    stream = b"+OK\r\n" + frame + b":1\r\n" + frame
    for piece in (1, 2, 3, 4096, 65536, 100_000):
        framer = ReplyFramer()
        out: list[bytes] = []
        for i in range(0, len(stream), piece):
            out += framer.feed(stream[i : i + piece])
            assert len(framer._tail or b"") <= 32  # only ever a header line, never a body
        assert out == [b"+OK\r\n", frame, b":1\r\n", frame]
        assert framer.buffered_bytes == 0


@pytest.mark.parametrize("cut", range(1, 14))
def test_bulk_body_in_pieces_without_crlf(cut: int) -> None:
    """The CRLF after a body that came in pieces is checked, even when a read splits it."""
    stream = b"$8\r\nabcdefghXY+OK\r\n"
    framer = ReplyFramer()
    with pytest.raises(RemoteProtocolError, match="bulk data not followed by CRLF"):
        for piece in (stream[:4], stream[4 : cut + 4], stream[cut + 4 :]):
            framer.feed(piece)


UNIFORM_RUNS = {
    "LRANGE of 3-byte values": b"*12\r\n" + bulks(*[b"abc"] * 12),
    "map of CRLF values": b"%6\r\n" + bulks(*[b"k\r\n"] * 12),
    "empty bulks": b"*9\r\n" + bulks(*[b""] * 9),
    "100-byte values": b"*10\r\n" + bulks(*[b"x" * 100] * 10),
    "one longer at the end": b"*9\r\n" + bulks(*[b"ab"] * 8, b"abc"),
}


@pytest.mark.parametrize("frame", UNIFORM_RUNS.values(), ids=UNIFORM_RUNS.keys())
def test_uniform_bulk_runs_checked_byte_for_byte(frame: bytes) -> None:
    """Bulks of one length are checked by strided slices: with each byte changed in turn,
    the framer still frames as the reference does (tests/fuzz/reference.py) or fails."""
    stream = frame + b"+OK\r\n"
    assert frames_of(stream) == [frame, b"+OK\r\n"]
    for at in range(len(frame)):
        for byte in (b"$", b"\r", b"\n", b"1", b"3", b"x"):
            data = stream[:at] + byte + stream[at + 1 :]
            ends, broken = frame_replies(data)
            try:
                got = ReplyFramer().feed(data)
            except RemoteProtocolError:
                assert broken, data
                continue
            assert not broken, data
            assert [len(b"".join(got[: i + 1])) for i in range(len(got))] == ends, data


def test_long_line_in_pieces_is_searched_once() -> None:
    frame = b"-ERR " + b"e" * 1_000_000 + CRLF
    framer = CountingReplyFramer()
    CountingReplyFramer.scans = 0
    pieces = [frame[i : i + 4096] for i in range(0, len(frame), 4096)]
    assert frames_of(*pieces, framer=framer) == [frame]
    assert CountingReplyFramer.scans <= 2


def test_long_array_in_pieces() -> None:
    items = [b"item:%d" % i if i % 1000 else b"x" * 5000 for i in range(20_000)]
    frame = b"*20000\r\n" + bulks(*items)
    nested = b"*2\r\n$1\r\n0\r\n" + frame  # a SCAN reply
    for piece in (1000, 65536):
        stream = nested + frame
        pieces = [stream[i : i + piece] for i in range(0, len(stream), piece)]
        assert frames_of(*pieces) == [nested, frame]


def test_buffered_bytes() -> None:
    framer = ReplyFramer()
    assert framer.feed(b"*2\r\n$3\r\nfoo\r\n$3\r\nba") == []
    assert framer.buffered_bytes == len(b"*2\r\n$3\r\nfoo\r\n$3\r\nba")
    assert framer.feed(b"r\r\n") == [b"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n"]
    assert framer.buffered_bytes == 0


# Malformed replies ---------------------------------------------------------------------------

MALFORMED = [
    (b"?\r\n", "invalid reply type byte"),
    (b"\r\n", "invalid reply type byte"),
    (b":abc\r\n", "invalid integer"),
    (b":01\r\n", "invalid integer"),
    (b":\r\n", "invalid integer"),
    (b"$abc\r\n", "invalid bulk length"),
    (b"$-2\r\n", "invalid bulk length"),
    (b"!-1\r\n", "invalid bulk length"),
    (b"$3\r\nfooXY", "bulk data not followed by CRLF"),
    (b"=3\r\nabc\r\n", "verbatim string without a format prefix"),
    (b"=5\r\ntxtab\r\n", "verbatim string without a format prefix"),
    (b"*x\r\n", "invalid aggregate length"),
    (b"%-1\r\n", "invalid aggregate length"),
    (b"*-2\r\n", "invalid aggregate length"),
    (b"|?\r\n", "invalid aggregate length"),
    (b"_x\r\n", "invalid '_' value"),
    (b"#x\r\n", "invalid '#' value"),
    (b"#tt\r\n", "invalid '#' value"),
    (b",abc\r\n", "invalid ',' value"),
    (b",1_000\r\n", "invalid ',' value"),
    (b"(1.5\r\n", "invalid '(' value"),
    (b".\r\n", "unexpected end of streamed aggregate"),
    (b"*1\r\n.\r\n", "unexpected end of streamed aggregate"),
    (b"*?\r\n.x\r\n", "unexpected end of streamed aggregate"),
    (b";3\r\nabc\r\n", "streamed string chunk outside a streamed string"),
    (b"$?\r\n:1\r\n", "a streamed string holds only ';' chunks"),
    (b"$?\r\n;x\r\n", "invalid streamed string chunk length"),
    (b"$?\r\n;2\r\nabcd\r\n", "bulk data not followed by CRLF"),
    # Found by tests/fuzz: past int64 (string2ll), and counts so large that they overflowed a
    # C size (OverflowError, not a protocol error) or passed for a streamed aggregate's.
    (b":9223372036854775808\r\n", "invalid integer"),
    (b"$9999999999999999999\r\n", "invalid bulk length"),
    (b"*9223372036854775807\r\n", "invalid aggregate length"),
    (b"%4611686018427387904\r\n", "invalid aggregate length"),
    (b"*2305843009213693952\r\n.\r\n", "invalid aggregate length"),
    (b"|2305843009213693952\r\n", "invalid aggregate length"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_malformed_replies(data: bytes, message: str) -> None:
    framer = ReplyFramer()
    with pytest.raises(RemoteProtocolError) as info:
        framer.feed(b"+OK\r\n" + data)
    assert str(info.value).startswith("Protocol error: ")
    assert message in str(info.value)
    with pytest.raises(RemoteProtocolError) as again:  # the framer stays failed
        framer.feed(b"+OK\r\n")
    assert again.value is info.value


# Property tests ------------------------------------------------------------------------------

line_text = st.binary(max_size=8).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
RESP2_LEAVES = st.one_of(
    st.tuples(st.just("+"), line_text),
    st.tuples(st.just("-"), line_text),
    st.tuples(st.just(":"), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.tuples(st.just("$"), st.none() | st.binary(max_size=12) | st.just(b"a\r\n$1\r\nb")),
)
RESP3_LEAVES = st.one_of(
    RESP2_LEAVES,
    st.tuples(st.just("_")),
    st.tuples(st.just(","), st.floats(allow_nan=True).map(lambda f: repr(f).encode())),
    st.tuples(st.just("#"), st.booleans()),
    st.tuples(st.just("("), st.integers(min_value=-(10**40), max_value=10**40)),
    st.tuples(st.just("!"), st.binary(max_size=12)),
    st.tuples(st.just("="), st.binary(max_size=12)),
    st.tuples(st.just("$?"), st.lists(st.binary(min_size=1, max_size=6), max_size=3)),
)


def resp2_aggregates(children: Any) -> Any:
    return st.tuples(st.just("*"), st.none() | st.lists(children, max_size=10))


def resp3_aggregates(children: Any) -> Any:
    pairs = st.lists(st.tuples(children, children), max_size=5)
    return st.one_of(
        resp2_aggregates(children),
        st.tuples(st.sampled_from(["~", ">", "*?"]), st.lists(children, max_size=10)),
        st.tuples(st.sampled_from(["%", "%?"]), pairs),
        st.tuples(st.just("|"), pairs, children),
    )


def encode(value: Any) -> bytes:
    """Reference RESP encoder over tagged tuples, independent of the module under test."""
    kind: str = value[0]
    if kind in ("+", "-"):
        return kind.encode() + bytes(value[1]) + CRLF
    if kind in (":", "("):
        return kind.encode() + str(value[1]).encode() + CRLF
    if kind in ("$", "!", "=") and value[1] is None:
        return b"$-1\r\n"
    if kind in ("$", "!", "="):
        data = (b"txt:" if kind == "=" else b"") + bytes(value[1])
        return kind.encode() + str(len(data)).encode() + CRLF + data + CRLF
    if kind == "_":
        return b"_\r\n"
    if kind == ",":
        return b"," + bytes(value[1]) + CRLF
    if kind == "#":
        return b"#t\r\n" if value[1] else b"#f\r\n"
    if kind == "$?":
        chunks = b"".join(b";" + str(len(c)).encode() + CRLF + c + CRLF for c in value[1])
        return b"$?\r\n" + chunks + b";0\r\n"
    if kind == "*" and value[1] is None:
        return b"*-1\r\n"
    if kind in ("*", "~", ">"):
        return kind.encode() + str(len(value[1])).encode() + CRLF + b"".join(map(encode, value[1]))
    if kind == "*?":
        return b"*?\r\n" + b"".join(map(encode, value[1])) + b".\r\n"
    flat = b"".join(encode(k) + encode(v) for k, v in value[1])
    if kind == "%":
        return b"%" + str(len(value[1])).encode() + CRLF + flat
    if kind == "%?":
        return b"%?\r\n" + flat + b".\r\n"
    assert kind == "|"
    return b"|" + str(len(value[1])).encode() + CRLF + flat + encode(value[2])


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def kind_of(value: Any) -> str:
    return str(kind_of(value[2]) if value[0] == "|" else value[0])


resp3_values = st.recursive(RESP3_LEAVES, resp3_aggregates, max_leaves=12)
resp2_values = st.recursive(RESP2_LEAVES, resp2_aggregates, max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(resp3_values, min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_random_replies_under_random_splits(values: list[Any], cuts: list[int]) -> None:
    frames = [encode(value) for value in values]
    assert frames_of(*split_at(b"".join(frames), cuts)) == frames
    assert [is_push(f) for f in frames] == [kind_of(v) == ">" for v in values]
    assert [is_error(f) for f in frames] == [kind_of(v) in ("-", "!") for v in values]


def normalized(value: Any) -> Any:
    """hiredis returns error replies as exception objects, which compare by identity."""
    if isinstance(value, list):
        return [normalized(item) for item in value]
    if isinstance(value, Exception):
        return (type(value).__name__, str(value))
    return value


def parse_all(data: bytes) -> list[Any]:
    reader = hiredis.Reader()
    reader.feed(data)
    out = []
    while (value := reader.gets()) is not False:
        out.append(normalized(value))
    assert not reader.has_data()
    return out


@settings(max_examples=200, deadline=None)
@given(values=st.lists(resp2_values, min_size=1, max_size=8), cuts=st.lists(st.integers()))
def test_frames_parse_like_the_whole_stream_in_hiredis(values: list[Any], cuts: list[int]) -> None:
    stream = b"".join(map(encode, values))
    frames = frames_of(*split_at(stream, cuts))
    assert b"".join(frames) == stream
    assert [parse_all(frame) for frame in frames] == [[value] for value in parse_all(stream)]
