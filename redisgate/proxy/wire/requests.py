"""RESP on the data plane, sans-IO: client requests in, upstream replies framed, our replies out.

Theory of operation
-------------------
`RequestFramer` turns a client's byte stream into `Command`s: the arguments (for the session to
route and check) and the exact bytes of the command (`raw`, forwarded to the upstream as is).
A command is handed out only once its whole byte span is buffered, so a shared upstream
connection never sees half a command. (hiredis cannot be the judge of that: `has_data()` is
False between the arguments of a half-received command, it accepts `+x` or `:1` where Redis
demands `$`, and it mis-frames RESP3 attributes.)

Two paths, both pure Python, chosen with `benchmarks/bench_resp.py`:

- Fast path, for a buffer that starts on a command boundary: one `bytes.split(b"\\r\\n")` cuts
  the whole buffer into lines in C. A command `*N` is then the next 2N+1 lines: its arguments
  are one stepped slice, and each header line must be exactly `$<len(arg)>`, which also proves
  that no argument held a CRLF (its line would be shorter). `raw` is the buffer itself when it
  holds just this command (no copy), else the lines joined back.
- Slow path, for everything else (inline commands, an argument with CRLF inside, big or
  non-canonical headers, limits, errors, a command cut off by the end of the buffer): a
  resumable header-by-header scanner, modelled on Redis's `processMultibulkBuffer`, with the
  same checks in the same order and Redis's own error messages. A cut-off command moves to a
  growable tail with its parse state, so it is resumed, never re-scanned; `_need` says how
  long the tail must get before parsing can progress, so a 100 MB argument arriving in 64 KB
  pieces costs one append per piece. After a slow command the fast path realigns on the
  lines it already has, or gives up for the rest of that buffer (never re-splitting it).

Limits (`set_limits`) apply from the headers: a bulk header that would take the command past
`max_request_bytes` is refused before its body arrives. Commands parsed ahead but not yet
handed out are re-judged when the limits change (the gateway relaxes them after AUTH; while
`unauthenticated` is set, array and bulk limits are refused in Redis's pre-AUTH words).

Measured with `benchmarks/bench_resp.py` against hiredis-based alternatives (which cannot
say where a command ends): numbers in docs/performance.md.

Runs (`runs`): with `next_command(fast, room)`, a read that starts with plain forwarded
commands hands them out as one `Run`, a slice of the input, instead of one `Command` each.

`ReplyFramer` (upstream replies, byte-faithful) lives in `replies`, the inline splitter in
`inline`, encoders and canned replies (`REPLY_OK`...) in `encode`, the default limits and
their words in `framing_limits`.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple, cast, overload

from redisgate.errors import RemoteProtocolError
from redisgate.proxy.wire import framing_limits
from redisgate.proxy.wire.encode import encode_command
from redisgate.proxy.wire.inline import split_inline_args
from redisgate.proxy.wire.replies import parse_int
from redisgate.proxy.wire.runs import ARRAY_HEADERS, BULK_HEADERS, Forwardable, Run, leading_run

__all__ = ["Command", "RequestFramer", "split_commands"]

_INT_MAX = 2**31 - 1

_new_tuple = tuple.__new__


class Command(NamedTuple):
    """One client command: `args[0]` is its name as sent (not case-folded); `raw` is the exact
    multibulk bytes to forward (inline commands are re-encoded, so upstreams always get RESP).

    A NamedTuple rather than a frozen dataclass: just as immutable, three times cheaper to
    create, and the framer creates one per command.
    """

    args: list[bytes]
    raw: bytes


def _new_command(args: list[bytes], raw: bytes) -> Command:
    return _new_tuple(Command, (args, raw))


def split_commands(raw: bytes) -> list[Command]:
    """The commands of a `Run`'s bytes, framed again (they were complete and valid)."""
    framer = RequestFramer()
    framer.feed(raw)
    return framer.drain()


def _slice(buf: bytes | bytearray, start: int, end: int) -> bytes:
    """`bytes` of buf[start:end] with one copy, whichever buffer type holds them."""
    if type(buf) is bytes:
        return buf[start:end]
    with memoryview(buf) as view:
        return bytes(view[start:end])


class RequestFramer:
    """Frame a client's RESP (and inline) requests into `Command`s, refusing what Redis refuses.

    `feed()` buffers; `next_command()` returns one complete command or None; `drain()` returns
    all of them. A protocol error raises `RemoteProtocolError` with Redis's message once every
    command before it has been handed out; after that the framer stays failed (the connection
    must close). Call `drain()` until it returns `[]`: an error that follows the commands it
    returned is raised by the next call.
    """

    __slots__ = (
        "_argc",
        "_buf",
        "_bulk",
        "_failed",
        "_max_array_len",
        "_max_bulk_bytes",
        "_max_inline_bytes",
        "_max_request_bytes",
        "_need",
        "_off",
        "_pos",
        "_ready",
        "_run_bytes",
        "_seen",
        "_spans",
        "_tail",
        "_too_long_array",
        "_too_long_bulk",
        "_unauthenticated",
    )

    _FAST_PATH = True  # tests and the benchmark switch it off to exercise the slow path alone

    def __init__(
        self,
        *,
        max_array_len: int = framing_limits.DEFAULT_MAX_ARRAY_LEN,
        max_bulk_bytes: int = framing_limits.DEFAULT_MAX_BULK_BYTES,
        max_inline_bytes: int = framing_limits.DEFAULT_MAX_INLINE_BYTES,
        max_request_bytes: int = framing_limits.DEFAULT_MAX_REQUEST_BYTES,
        unauthenticated: bool = False,
    ) -> None:
        self._max_array_len = max_array_len
        self._max_bulk_bytes = max_bulk_bytes
        self._max_inline_bytes = max_inline_bytes
        self._max_request_bytes = max_request_bytes
        self._run_bytes = min(max_request_bytes, max_bulk_bytes)  # reads `feed_run` takes
        self._set_wording(unauthenticated)
        self._buf = b""  # parse source when the buffer starts on a command boundary
        self._pos = 0
        self._tail: bytearray | None = None  # a cut-off command (and what follows it)
        self._need = 0  # the tail must reach this length before parsing can progress
        self._ready: deque[Command | Run] = deque()  # parsed ahead, not yet handed out
        self._failed: RemoteProtocolError | None = None
        self._reset_command()

    def discard(self) -> None:
        """Drop everything buffered (the connection is gone or cut): the bytes go now, not
        when the last reference to the framer does."""
        self._buf, self._pos, self._tail = b"", 0, None
        self._ready.clear()
        self._reset_command()

    def _reset_command(self) -> None:
        # Parse state of the command being received, as offsets from its first byte.
        self._argc = 0  # arguments still to read; 0: the `*N` header is not read yet
        self._off = 0  # where the next header (or bulk data) starts
        self._bulk = -1  # length of the bulk whose data starts at _off; -1: header unread
        self._spans: list[int] = []  # start, end of each argument read so far
        self._seen = 0  # an unfinished line was already searched up to here

    # Limits ----------------------------------------------------------------------------------

    @property
    def max_array_len(self) -> int:
        return self._max_array_len

    @property
    def max_bulk_bytes(self) -> int:
        return self._max_bulk_bytes

    @property
    def max_inline_bytes(self) -> int:
        return self._max_inline_bytes

    @property
    def max_request_bytes(self) -> int:
        return self._max_request_bytes

    def set_limits(
        self,
        *,
        max_array_len: int | None = None,
        max_bulk_bytes: int | None = None,
        max_inline_bytes: int | None = None,
        max_request_bytes: int | None = None,
        unauthenticated: bool | None = None,
    ) -> None:
        """Change limits; they apply to every command not yet handed out."""
        if max_array_len is not None:
            self._max_array_len = max_array_len
        if max_bulk_bytes is not None:
            self._max_bulk_bytes = max_bulk_bytes
        if max_inline_bytes is not None:
            self._max_inline_bytes = max_inline_bytes
        if max_request_bytes is not None:
            self._max_request_bytes = max_request_bytes
        self._run_bytes = min(self._max_request_bytes, self._max_bulk_bytes)
        if unauthenticated is not None:
            self._set_wording(unauthenticated)
        if self._failed is not None:
            return
        # Un-parse what was parsed ahead (a pipelined command after AUTH must be judged by the
        # limits AUTH brings): put the raw bytes back in front of the unparsed rest.
        pending = [command.raw for command in self._ready]
        pending.append(bytes(self._tail) if self._tail is not None else self._buf[self._pos :])
        self._ready.clear()
        self._tail = None
        self._buf = b"".join(pending)
        self._pos = self._need = 0
        self._reset_command()

    @property
    def unauthenticated(self) -> bool:
        return self._unauthenticated

    def _set_wording(self, unauthenticated: bool) -> None:
        """Whether the array and bulk limits are pre-AUTH ones: Redis then words them apart."""
        self._unauthenticated = unauthenticated
        self._too_long_array = (
            framing_limits.ERR_UNAUTHENTICATED_MULTIBULK
            if unauthenticated
            else framing_limits.ERR_MULTIBULK_LENGTH
        )
        self._too_long_bulk = (
            framing_limits.ERR_UNAUTHENTICATED_BULK
            if unauthenticated
            else framing_limits.ERR_BULK_LENGTH
        )

    @property
    def unparsed_bytes(self) -> int:
        """Bytes received and not yet parsed into commands: a command still arriving, and
        what follows it (cheap: what the gateway's memory accounting reads per read)."""
        return len(self._tail) if self._tail is not None else len(self._buf) - self._pos

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet handed out as commands (for memory accounting)."""
        held = len(self._tail) if self._tail is not None else len(self._buf) - self._pos
        return held + sum(len(command.raw) for command in self._ready)

    # Input and output ------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes received from the client (any bytes-like object; bytes avoid a copy)."""
        if type(data) is not bytes:
            data = bytes(data)
        tail = self._tail
        if tail is not None:
            tail += data
        elif self._pos >= len(self._buf):
            self._buf = data  # the usual case: nothing pending, parse `data` without a copy
            self._pos = 0
        elif data:
            with memoryview(self._buf) as view:
                tail = self._tail = bytearray(view[self._pos :])
            tail += data
            self._buf = b""
            self._pos = 0

    def feed_run(self, data: bytes, fast: Forwardable, room: int) -> Run | None:
        """`feed(data)`, then take the `Run` that `next_command(fast, room)` would hand out
        first (None if there is none): the same checks for a fraction of the calls, for the
        usual read of a client, one command or one pipeline of plain commands, with nothing
        buffered before it."""
        if (
            len(data) > self._run_bytes
            or self._tail is not None
            or self._pos < len(self._buf)
            or self._ready
            or self._failed is not None
            or not self._FAST_PATH
        ):
            self.feed(data)
            return None
        lines = data.split(b"\r\n")
        run, _, size = leading_run(data, lines, len(lines) - 1, fast, room, self._max_array_len)
        if size < len(data):  # the rest waits for `next_command`
            self._buf = data[size:] if size else data
            self._pos = 0
        return run

    @property
    def queued(self) -> deque[Command | Run]:
        """Commands parsed ahead and not handed out yet (the rest of a pipelined read)."""
        return self._ready

    @overload
    def next_command(self) -> Command | None: ...

    @overload
    def next_command(self, fast: Forwardable | None, room: int) -> Command | Run | None: ...

    def next_command(self, fast: Forwardable | None = None, room: int = 0) -> Command | Run | None:
        """The next complete command, or None until more bytes are fed; with `fast`, a read
        that starts with up to `room` commands it forwards gives them as one `Run` first."""
        ready = self._ready
        if not ready:
            if self._failed is not None:
                raise self._failed
            if self._tail is None and self._pos >= len(self._buf):
                return None  # nothing buffered: the usual end of a `while` loop
            try:
                commands = self._parse(fast, room)
            except RemoteProtocolError as exc:
                self._failed = exc
                raise
            if len(commands) < 2:
                return commands[0] if commands else None
            ready.extend(commands)
        return ready.popleft()

    def drain(self) -> list[Command]:
        """Every complete command buffered; call again until it returns `[]` (see class doc)."""
        ready = self._ready
        if ready:
            commands = cast(list[Command], list(ready))  # no runs: only next_command makes them
            ready.clear()
            return commands
        if self._failed is not None:
            raise self._failed
        if self._tail is None and self._pos >= len(self._buf):
            return []
        try:
            return cast(list[Command], self._parse())
        except RemoteProtocolError as exc:
            self._failed = exc
            raise

    def requeue(self, commands: list[Command]) -> None:
        """Hand these out again, first (a `Run` the caller could not take whole, as commands)."""
        self._ready.extendleft(reversed(commands))

    # Parsing ---------------------------------------------------------------------------------

    def _parse(self, fast: Forwardable | None = None, room: int = 0) -> list[Command | Run]:
        """Parse every complete command; raise only if the very first one is malformed."""
        out: list[Command | Run] = []
        tail = self._tail
        if tail is not None:
            if len(tail) < self._need:
                return out
            command, end = self._parse_one(tail, 0)
            if end < 0:
                return out
            if command is not None:
                out.append(command)
            with memoryview(tail) as view:
                self._buf = bytes(view[end:])
            self._tail = None
            self._pos = 0
        buf = self._buf
        pos = self._pos
        n = len(buf)
        if pos >= n:
            return out
        lines: list[bytes] | None = None
        if self._FAST_PATH and pos == 0 and self._argc == 0:
            lines = buf.split(b"\r\n")
        last = len(lines) - 1 if lines is not None else 0  # lines before `last` end in CRLF
        i = 0  # index in `lines` of the line that starts at `pos`
        max_argc = self._max_array_len
        max_bulk = self._max_bulk_bytes
        max_request = self._max_request_bytes
        headers = BULK_HEADERS
        # A run starts a parse or not at all (`out` may hold a command completed above), and
        # only in a read no command of which can exceed the size limits (resp_runs).
        if fast is not None and lines is not None and not out and n <= min(max_request, max_bulk):
            run, i, pos = leading_run(buf, lines, last, fast, room, max_argc)
            if run is not None:
                out.append(run)
        try:
            while pos < n:
                if lines is not None:
                    argc = ARRAY_HEADERS.get(lines[i])
                    if argc is not None and argc <= max_argc:
                        j = i + argc + argc + 1  # the line after this command's last line
                        if j <= last:
                            args = lines[i + 2 : j : 2]
                            try:  # every header must be exactly `$<len(arg)>`
                                canonical = [headers[len(a)] for a in args] == lines[i + 1 : j : 2]
                            except IndexError:  # an argument too long for the table
                                canonical = False
                            if canonical:
                                if j == last and not lines[last]:
                                    raw = buf[pos:]  # the rest of the buffer, often all of it
                                else:
                                    raw = b"\r\n".join(lines[i:j]) + b"\r\n"
                                size = len(raw)
                                if size <= max_request and (
                                    size <= max_bulk or max(map(len, args)) <= max_bulk
                                ):
                                    out.append(_new_tuple(Command, (args, raw)))
                                    pos += size
                                    i = j
                                    continue
                self._pos = pos
                command, end = self._parse_one(buf, pos)
                if end < 0:  # cut off: move the partial command to a growable tail
                    with memoryview(buf) as view:
                        self._tail = bytearray(view[pos:])
                    self._buf = b""
                    self._pos = 0
                    return out
                if command is not None:
                    out.append(command)
                if lines is not None:  # realign the fast path, or give it up for this buffer
                    while pos < end and i <= last:
                        pos += len(lines[i]) + 2
                        i += 1
                    if pos != end:
                        lines = None
                pos = end
        except RemoteProtocolError:
            if not out:
                raise
            # Hand out the good commands first; parsing again raises on the next call.
            return out
        self._buf = b""  # all consumed; drop the reference
        self._pos = 0
        return out

    def _parse_one(self, buf: bytes | bytearray, base: int) -> tuple[Command | None, int]:
        """Parse (or resume) the command at `base`, like Redis's processMultibulkBuffer.

        Returns (command, end); (None, end) for a skipped empty request; (None, -1) when more
        bytes are needed, with the progress saved and `_need` set.
        """
        n = len(buf)
        argc = self._argc
        if argc == 0:
            if buf[base] != 42:  # not `*`: an inline command
                return self._parse_inline(buf, base)
            cr = buf.find(b"\r", base + self._seen)
            if cr < 0 or cr + 1 >= n:
                if cr < 0 and n - base > self._max_inline_bytes:
                    raise RemoteProtocolError(framing_limits.ERR_MULTIBULK_COUNT_TOO_BIG)
                self._seen = (n if cr < 0 else cr) - base
                self._need = n - base + 1
                return None, -1
            self._seen = 0
            count = parse_int(bytes(buf[base + 1 : cr]))
            if count is None or count > _INT_MAX or buf[cr + 1] != 10:
                raise RemoteProtocolError(framing_limits.ERR_MULTIBULK_LENGTH)
            if count > self._max_array_len:
                raise RemoteProtocolError(self._too_long_array)
            if count <= 0:
                return None, cr + 2  # `*0`, `*-1`: Redis skips them silently
            argc = count
            off = cr + 2 - base
            bulk = -1
            spans = self._spans = []
        else:
            off = self._off
            bulk = self._bulk
            spans = self._spans
        max_request = self._max_request_bytes
        while argc:
            p = base + off
            if bulk < 0:
                cr = buf.find(b"\r", p + self._seen)
                if cr < 0 or cr + 1 >= n:
                    if cr < 0 and n - p > self._max_inline_bytes:
                        raise RemoteProtocolError(framing_limits.ERR_BULK_COUNT_TOO_BIG)
                    if n - base > max_request:
                        raise RemoteProtocolError(
                            framing_limits.ERR_REQUEST_TOO_BIG.format(max_request)
                        )
                    self._seen = (n if cr < 0 else cr) - p
                    self._need = n - base + 1
                    break
                self._seen = 0
                if buf[p] != 36:
                    raise RemoteProtocolError(
                        framing_limits.ERR_EXPECTED_DOLLAR.format(chr(buf[p]))
                    )
                length = parse_int(bytes(buf[p + 1 : cr]))
                if length is None or length < 0 or buf[cr + 1] != 10:
                    raise RemoteProtocolError(framing_limits.ERR_BULK_LENGTH)
                if length > self._max_bulk_bytes:
                    raise RemoteProtocolError(self._too_long_bulk)
                off = cr + 2 - base
                if off + length + 2 > max_request:
                    raise RemoteProtocolError(
                        framing_limits.ERR_REQUEST_TOO_BIG.format(max_request)
                    )
                bulk = length
                p = cr + 2
            end = p + bulk
            if end + 2 > n:
                self._need = end + 2 - base
                break
            if buf[end] != 13 or buf[end + 1] != 10:
                raise RemoteProtocolError(framing_limits.ERR_BULK_NOT_TERMINATED)
            spans.append(off)
            spans.append(off + bulk)
            off += bulk + 2
            bulk = -1
            argc -= 1
        if argc:
            self._argc = argc
            self._off = off
            self._bulk = bulk
            return None, -1
        raw = _slice(buf, base, base + off)
        args = list(map(raw.__getitem__, map(slice, spans[0::2], spans[1::2])))
        self._reset_command()
        return _new_command(args, raw), base + off

    def _parse_inline(self, buf: bytes | bytearray, base: int) -> tuple[Command | None, int]:
        """An inline command, as Redis's processInlineBuffer reads it (LF or CRLF ends it)."""
        n = len(buf)
        lf = buf.find(b"\n", base + self._seen)
        if lf < 0:
            if n - base > self._max_inline_bytes:
                raise RemoteProtocolError(framing_limits.ERR_INLINE_TOO_BIG)
            self._seen = n - base
            self._need = n - base + 1
            return None, -1
        self._seen = 0
        stop = lf - 1 if lf > base and buf[lf - 1] == 13 else lf
        if stop - base > self._max_inline_bytes:  # Redis only checks lines still unfinished
            raise RemoteProtocolError(framing_limits.ERR_INLINE_TOO_BIG)
        args = split_inline_args(bytes(buf[base:stop]))
        if args is None:
            raise RemoteProtocolError(framing_limits.ERR_UNBALANCED_QUOTES)
        if not args:
            return None, lf + 1  # empty line: skipped, like Redis
        if len(args) > self._max_array_len:
            raise RemoteProtocolError(self._too_long_array)
        if max(map(len, args)) > self._max_bulk_bytes:
            raise RemoteProtocolError(self._too_long_bulk)
        raw = encode_command(args)
        if len(raw) > self._max_request_bytes:
            raise RemoteProtocolError(
                framing_limits.ERR_REQUEST_TOO_BIG.format(self._max_request_bytes)
            )
        return _new_command(args, raw), lf + 1
