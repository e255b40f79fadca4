"""Fuzz targets: one function per framer, bytes in, an AssertionError when an oracle disagrees.

Any engine drives them (`run.py`: atheris when installed, else our own mutational driver;
`test_fuzz.py`: a short fixed-seed run inside `make test`). Each input's first byte picks a
mode and a configuration; the rest is either the stream itself (raw, for malformed input) or
choices for a generator (`generate.py`, for valid input deep enough to matter). Nothing but
`RemoteProtocolError` may come out of a framer: anything else escapes the target and is a
finding, as is a failed assertion.

Oracles, per target:

requests (`RequestFramer`)
    - at once: exactly the commands and error of `reference.frame_requests`; each multibulk
      command's `raw` is its own span of the input, an inline one's is its canonical
      multibulk; hiredis parses every multibulk `raw` into the same arguments;
    - generated input: the arguments generated, in order, and no error;
    - split into random feeds, with `next_command()` or runs (`next_command(fast, room)`):
      the same commands (a run's bytes frame again into the commands it names); only a
      limit that depends on what was buffered (a line still unfinished) may stop it earlier,
      with that limit's own words; after each read the bytes held stay within the limits
      (plus what the last feed added: `feed` only buffers);
    - limits changed between commands (as AUTH does): what follows is judged by the new ones.
inline (`split_inline_args`)
    - the same as `reference.sdssplitargs` on any line; lines generated from arguments with
      every quoting and escaping style split back into those arguments.
replies (`ReplyFramer`)
    - at once: the frames of `reference.frame_replies`, or an error and no frame; split into
      random feeds: the same frames (a prefix of them when the stream is broken, then the
      error, which stays); frames concatenate to the input consumed and `buffered_bytes` is
      exactly the rest;
    - generated input: the frames generated, one for one, `is_error`/`is_push` right, and
      hiredis counts as many replies where it knows every type used.
"""

from __future__ import annotations

import random
import sys
import zlib
from collections.abc import Callable

import hiredis

from redisgate.errors import RemoteProtocolError
from redisgate.proxy.wire import framing_limits as words
from redisgate.proxy.wire.inline import split_inline_args
from redisgate.proxy.wire.replies import ReplyFramer, is_error, is_push
from redisgate.proxy.wire.requests import Command, RequestFramer, split_commands
from redisgate.proxy.wire.runs import Forwardable, Run
from tests.fuzz import generate, reference
from tests.fuzz.reference import Limits

sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # the reply reference recurses


class SlowRequestFramer(RequestFramer):
    """The framer with its fast path off: the resumable scanner alone."""

    __slots__ = ()
    _FAST_PATH = False


LIMITS = [
    Limits(),
    Limits(max_array_len=4, max_bulk_bytes=16, max_inline_bytes=24, max_request_bytes=64),
    Limits(max_array_len=8, max_bulk_bytes=100, max_inline_bytes=50, max_request_bytes=300),
    Limits(max_array_len=3, max_bulk_bytes=8, max_inline_bytes=16, unauthenticated=True),
    Limits(max_array_len=1100, max_bulk_bytes=5000, max_inline_bytes=4200),
]

# What a transport forwards as it is: some names always, MGET when its argument count is even.
FORWARDABLE = Forwardable(
    names=frozenset({b"GET", b"SET", b"PING", b"get"}),
    keyed={b"MGET": "plan"},
    fits=lambda plan, args: len(args) % 2 == 0,
)

# Limits a stream may hit earlier when it arrives in pieces: they judge an unfinished line.
BUFFERING_WORDS = (
    words.ERR_MULTIBULK_COUNT_TOO_BIG,
    words.ERR_BULK_COUNT_TOO_BIG,
    words.ERR_INLINE_TOO_BIG,
    words.REQUEST_TOO_BIG_PREFIX,
)


def _cuts(data: bytes, seed: int) -> list[bytes]:
    """`data` in pieces at pseudo-random places (deterministic per input)."""
    n = len(data)
    if n < 2:
        return [data]
    rng = random.Random(seed)
    style = rng.randrange(8)
    if style == 0 and n <= 400:  # byte by byte
        return [data[i : i + 1] for i in range(n)]
    k = min(n - 1, 1 + rng.randrange(12 if style < 6 else 3))
    points = sorted(rng.sample(range(1, n), k))
    return [data[a:b] for a, b in zip([0, *points], [*points, n], strict=True)]


# Requests -------------------------------------------------------------------------------------


def fuzz_requests(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, config, body = data[0], data[1], data[2:]
    limits = LIMITS[config % len(LIMITS)]
    framer_type = SlowRequestFramer if config & 0x08 else RequestFramer
    use_runs = bool(config & 0x10)
    generated: list[list[bytes]] | None = None
    if mode & 1:
        made = generate.requests(generate.Choices(body))
        body, generated = made.data, made.commands
        if mode & 2:
            limits = LIMITS[0]  # a valid pipeline within the limits must come out whole
        else:
            generated = None  # judged by the reference alone, under the chosen limits
    expected, error, stop = reference.frame_requests(body, limits)
    if generated is not None:
        assert error is None, error
        assert [r.args for r in expected] == generated
    want = [_command_of(body, r) for r in expected]

    # At once: exactly the reference.
    framer = framer_type(**limits.kwargs())
    framer.feed(body)
    got, got_error = _drain(framer)
    assert got == want, (got, want)
    assert got_error == error, (got_error, error)
    for command in got:
        if command.raw[:1] == b"*":
            reader = hiredis.Reader()
            reader.feed(command.raw)
            assert reader.gets() == command.args
            assert reader.gets() is False
    if got_error is not None:
        _assert_stays_failed(framer, got_error)

    # In pieces.
    seed = zlib.crc32(data)
    _check_in_pieces(framer_type, limits, body, want, error, seed, use_runs)

    # Limits changed between commands (as AUTH does), when the chosen config allows it.
    if mode & 12 == 12 and want:
        _check_limit_change(framer_type, limits, body, expected, stop, seed)


def _command_of(data: bytes, request: reference.Request) -> Command:
    raw = reference.encode(request.args) if request.inline else data[request.start : request.end]
    return Command(request.args, raw)


def _drain(framer: RequestFramer) -> tuple[list[Command], str | None]:
    out: list[Command] = []
    try:
        while True:
            commands = framer.drain()
            if not commands:
                return out, None
            out += commands
    except RemoteProtocolError as exc:
        return out, str(exc)


def _assert_stays_failed(framer: RequestFramer, message: str) -> None:
    for call in (framer.next_command, framer.drain):
        try:
            call()
        except RemoteProtocolError as exc:
            assert str(exc) == message
        else:
            raise AssertionError("a failed framer handed something out")


def _check_in_pieces(
    framer_type: type[RequestFramer],
    limits: Limits,
    body: bytes,
    want: list[Command],
    error: str | None,
    seed: int,
    use_runs: bool,
) -> None:
    """Fed in pieces, the framer must say what the reference says of the bytes fed so far:
    the limits that judge an unfinished line (BUFFERING_WORDS) may refuse earlier than at once."""
    framer = framer_type(**limits.kwargs())
    room = 1 + seed % 20
    got: list[Command] = []
    got_error = None
    fed = 0
    bound = max(limits.max_request_bytes, limits.max_inline_bytes)
    for piece in _cuts(body, seed):
        framer.feed(piece)
        fed += len(piece)
        try:
            while True:
                item = framer.next_command(FORWARDABLE, room) if use_runs else framer.next_command()
                if item is None:
                    break
                got += _commands_of(item)
        except RemoteProtocolError as exc:
            got_error = str(exc)
            break
        # Bytes held now belong to one unfinished command: within the limits, or to be refused
        # as soon as the rest of its line arrives (only `feed` took them).
        assert framer.buffered_bytes <= bound + len(piece) + 2, (framer.buffered_bytes, bound)
    if fed < len(body):  # refused before the end: as the reference refuses what was fed
        expected_so_far, error_so_far, _ = reference.frame_requests(body[:fed], limits)
        assert got == [_command_of(body, r) for r in expected_so_far], (got, expected_so_far)
        assert got_error == error_so_far, (got_error, error_so_far)
    if got_error is not None and got_error.startswith(BUFFERING_WORDS):
        assert got == want[: len(got)], (got, want)  # maybe earlier than at once
    else:
        assert got == want, (got, want)
        assert got_error == error, (got_error, error)
    if got_error is not None:
        _assert_stays_failed(framer, got_error)


def _commands_of(item: Command | Run) -> list[Command]:
    if isinstance(item, Run):
        commands = split_commands(item.raw)
        assert [c.args[0] for c in commands] == item.names
        assert b"".join(c.raw for c in commands) == item.raw
        return commands
    return [item]


def _check_limit_change(
    framer_type: type[RequestFramer],
    limits: Limits,
    body: bytes,
    expected: list[reference.Request],
    stop: int,
    seed: int,
) -> None:
    """Take some commands, change the limits, and judge the rest by the new ones."""
    new_limits = LIMITS[(seed >> 8) % len(LIMITS)]
    taken = (seed >> 16) % (len(expected) + 1)
    framer = framer_type(**limits.kwargs())
    framer.feed(body)
    for request in expected[:taken]:
        command = framer.next_command()
        assert command is not None and command.args == request.args
    # Once asked, the framer parsed all it could (up to the reference's stop, empty requests
    # skipped): what it parsed ahead goes back in front of the rest, as multibulk.
    ahead = expected[taken:] if taken else []
    assert len(framer.queued) == len(ahead)
    rest = b"".join(_command_of(body, r).raw for r in ahead) + body[stop if taken else 0 :]
    framer.set_limits(**new_limits.kwargs())
    expected_rest, error_rest, _ = reference.frame_requests(rest, new_limits)
    got, got_error = _drain(framer)
    assert got == [_command_of(rest, r) for r in expected_rest], (got, expected_rest)
    assert got_error == error_rest, (got_error, error_rest)


# Inline ---------------------------------------------------------------------------------------


def fuzz_inline(data: bytes) -> None:
    if not data:
        return
    if data[0] & 1:
        line = data[1:]
        assert split_inline_args(line) == reference.sdssplitargs(line), line
        return
    c = generate.Choices(data[1:])
    args = [c.blob(10, long=False) for _ in range(1 + c.below(6))]
    args = [a for a in args if b"\x00" not in a] or [b"PING"]
    line = generate.inline_line(c, args)
    assert reference.sdssplitargs(line) == args, (line, args)
    assert split_inline_args(line) == args, (line, args)


# Replies --------------------------------------------------------------------------------------


def fuzz_replies(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    made = None
    if mode & 1:
        made = generate.replies(generate.Choices(body))
        body = made.data
    ends, broken = reference.frame_replies(body)
    want = [body[a:b] for a, b in zip([0, *ends], ends, strict=False)]
    if made is not None:
        assert not broken and want == made.frames, (want, made.frames)

    # At once: all the frames, or the error and no frame at all.
    framer = ReplyFramer()
    try:
        got = framer.feed(body)
    except RemoteProtocolError:
        assert broken, body
    else:
        assert not broken, body
        assert got == want, (got, want)
        assert framer.buffered_bytes == len(body) - sum(map(len, got))

    # In pieces.
    framer = ReplyFramer()
    got = []
    fed = 0
    failed: RemoteProtocolError | None = None
    for piece in _cuts(body, zlib.crc32(data)):
        try:
            got += framer.feed(piece)
        except RemoteProtocolError as exc:
            failed = exc
            break
        fed += len(piece)
        assert framer.buffered_bytes == fed - sum(map(len, got))
    assert got == want[: len(got)], (got, want)
    if broken:
        assert failed is not None, body
        _assert_replies_stay_failed(framer, failed)
    else:
        assert failed is None, (failed, body)
        assert got == want

    if made is not None:
        assert list(map(is_error, want)) == made.errors
        assert list(map(is_push, want)) == made.pushes
        if made.hiredis_count is not None:
            assert _hiredis_count(body) == made.hiredis_count


def _assert_replies_stay_failed(framer: ReplyFramer, failed: RemoteProtocolError) -> None:
    try:
        framer.feed(b"+OK\r\n")
    except RemoteProtocolError as exc:
        assert exc is failed
    else:
        raise AssertionError("a failed reply framer framed again")


_NO_REPLY = object()  # hiredis's own `False` is also how it spells `#f`


def _hiredis_count(data: bytes) -> int:
    reader = hiredis.Reader(notEnoughData=_NO_REPLY)
    reader.feed(data)
    count = 0
    while reader.gets() is not _NO_REPLY:
        count += 1
    return count


TARGETS: dict[str, Callable[[bytes], None]] = {
    "requests": fuzz_requests,
    "inline": fuzz_inline,
    "replies": fuzz_replies,
}
