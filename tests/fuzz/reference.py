"""Reference models the fuzz targets compare the framers with: plain, whole-buffer, no speed.

Each one restates the rules of one framer the simplest way (recursion, one pass over the whole
input, no fast paths, no resumable state), so what the framers add for speed (line splitting
in C, canonical-header tables, runs, growable tails, resumed scans) is judged against a model
that has none of it:

- `sdssplitargs`: Redis's `sdssplitargs` (sds.c) transcribed pointer by pointer, C string
  semantics included (a NUL ends the line, C `isspace()` in the C locale).
- `frame_requests`: Redis's `processMultibulkBuffer` / `processInlineBuffer` over a whole
  buffer, with the framer's documented limits and words (`wire/framing_limits.py`), returning
  each command with its byte span.
- `frame_replies`: a recursive RESP2/RESP3 reply parser that returns where each top-level
  reply ends, and whether the stream is broken or just unfinished.

Integers follow Redis's `string2ll`: an optional `-`, no leading zero, no `+`, within int64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from redisgate.proxy.wire import framing_limits as words

# Redis's string2ll ----------------------------------------------------------------------------

_STRING2LL = re.compile(rb"0|-?[1-9][0-9]*")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT_MAX = 2**31 - 1
MAX_REPLY_COUNT = 2**60  # the reply framer refuses aggregates this long (no reply can be)


def string2ll(text: bytes) -> int | None:
    """Redis's string2ll: the integer `text` spells, or None."""
    if _STRING2LL.fullmatch(text) is None:
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


# sdssplitargs ---------------------------------------------------------------------------------

_C_SPACE = b" \t\n\v\f\r"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_C_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def sdssplitargs(line: bytes) -> list[bytes] | None:
    """Redis's sdssplitargs on the C string `line` (up to its first NUL); None on an error."""
    s = line + b"\0"

    def at(i: int) -> int:  # *p: the NUL terminator keeps every read in the string
        return s[i]

    def isspace(c: int) -> bool:
        return c != 0 and c in _C_SPACE

    def ishex(c: int) -> bool:
        return c != 0 and c in _HEX_DIGITS

    p = 0
    vector: list[bytes] = []
    while True:
        while at(p) and isspace(at(p)):
            p += 1
        if not at(p):
            return vector
        inq = insq = done = False
        current = bytearray()
        while not done:
            if inq:
                if (
                    at(p) == ord("\\")
                    and at(p + 1) == ord("x")
                    and ishex(at(p + 2))
                    and ishex(at(p + 3))
                ):
                    current.append(int(bytes([at(p + 2), at(p + 3)]), 16))
                    p += 3
                elif at(p) == ord("\\") and at(p + 1):
                    p += 1
                    current.append(_C_ESCAPES.get(at(p), at(p)))
                elif at(p) == ord('"'):
                    if at(p + 1) and not isspace(at(p + 1)):
                        return None  # closing quote must be followed by a space or nothing
                    done = True
                elif not at(p):
                    return None  # unterminated quotes
                else:
                    current.append(at(p))
            elif insq:
                if at(p) == ord("\\") and at(p + 1) == ord("'"):
                    p += 1
                    current.append(ord("'"))
                elif at(p) == ord("'"):
                    if at(p + 1) and not isspace(at(p + 1)):
                        return None
                    done = True
                elif not at(p):
                    return None
                else:
                    current.append(at(p))
            elif at(p) in (ord(" "), ord("\n"), ord("\r"), ord("\t"), 0):
                done = True
            elif at(p) == ord('"'):
                inq = True
            elif at(p) == ord("'"):
                insq = True
            else:
                current.append(at(p))
            if at(p):
                p += 1
        vector.append(bytes(current))


# Requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    max_array_len: int = words.DEFAULT_MAX_ARRAY_LEN
    max_bulk_bytes: int = words.DEFAULT_MAX_BULK_BYTES
    max_inline_bytes: int = words.DEFAULT_MAX_INLINE_BYTES
    max_request_bytes: int = words.DEFAULT_MAX_REQUEST_BYTES
    unauthenticated: bool = False

    def kwargs(self) -> dict[str, int | bool]:
        return {
            "max_array_len": self.max_array_len,
            "max_bulk_bytes": self.max_bulk_bytes,
            "max_inline_bytes": self.max_inline_bytes,
            "max_request_bytes": self.max_request_bytes,
            "unauthenticated": self.unauthenticated,
        }


@dataclass(frozen=True)
class Request:
    """One command: its arguments, where it lies in the input, and whether it was inline."""

    args: list[bytes]
    start: int
    end: int
    inline: bool


class _Incomplete(Exception):
    pass


class _Refused(Exception):
    pass


def encode(args: list[bytes]) -> bytes:
    """The canonical multibulk form of a command."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def frame_requests(data: bytes, limits: Limits) -> tuple[list[Request], str | None, int]:
    """Every command in `data` (empty requests skipped), the error that stops the stream (None
    when it ends on a command boundary or inside an unfinished command), and where it stopped
    (the start of the refused or unfinished command, or the end)."""
    out: list[Request] = []
    pos = 0
    while pos < len(data):
        try:
            if data[pos] == ord("*"):
                args, end = _multibulk(data, pos, limits)
                inline = False
            else:
                args, end = _inline(data, pos, limits)
                inline = True
        except _Incomplete:
            return out, None, pos
        except _Refused as exc:
            return out, str(exc), pos
        if args:
            out.append(Request(args, pos, end, inline))
        pos = end
    return out, None, pos


def _multibulk(data: bytes, base: int, limits: Limits) -> tuple[list[bytes], int]:
    n = len(data)
    too_long_array, too_long_bulk = _too_long_words(limits)
    cr = data.find(b"\r", base)
    if cr < 0 or cr + 1 >= n:
        if cr < 0 and n - base > limits.max_inline_bytes:
            raise _Refused(words.ERR_MULTIBULK_COUNT_TOO_BIG)
        raise _Incomplete
    count = string2ll(data[base + 1 : cr])
    if count is None or count > _INT_MAX or data[cr + 1] != ord("\n"):
        raise _Refused(words.ERR_MULTIBULK_LENGTH)
    if count > limits.max_array_len:
        raise _Refused(too_long_array)
    p = cr + 2
    args: list[bytes] = []
    for _ in range(max(count, 0)):
        cr = data.find(b"\r", p)
        if cr < 0 or cr + 1 >= n:
            if cr < 0 and n - p > limits.max_inline_bytes:
                raise _Refused(words.ERR_BULK_COUNT_TOO_BIG)
            if n - base > limits.max_request_bytes:
                raise _Refused(words.ERR_REQUEST_TOO_BIG.format(limits.max_request_bytes))
            raise _Incomplete
        if data[p] != ord("$"):
            raise _Refused(words.ERR_EXPECTED_DOLLAR.format(chr(data[p])))
        length = string2ll(data[p + 1 : cr])
        if length is None or length < 0 or data[cr + 1] != ord("\n"):
            raise _Refused(words.ERR_BULK_LENGTH)
        if length > limits.max_bulk_bytes:
            raise _Refused(too_long_bulk)
        body = cr + 2
        if body + length + 2 - base > limits.max_request_bytes:
            raise _Refused(words.ERR_REQUEST_TOO_BIG.format(limits.max_request_bytes))
        if body + length + 2 > n:
            raise _Incomplete
        if data[body + length : body + length + 2] != b"\r\n":
            raise _Refused(words.ERR_BULK_NOT_TERMINATED)
        args.append(data[body : body + length])
        p = body + length + 2
    return args, p


def _inline(data: bytes, base: int, limits: Limits) -> tuple[list[bytes], int]:
    n = len(data)
    too_long_array, too_long_bulk = _too_long_words(limits)
    lf = data.find(b"\n", base)
    if lf < 0:
        if n - base > limits.max_inline_bytes:
            raise _Refused(words.ERR_INLINE_TOO_BIG)
        raise _Incomplete
    stop = lf - 1 if lf > base and data[lf - 1] == ord("\r") else lf
    if stop - base > limits.max_inline_bytes:
        raise _Refused(words.ERR_INLINE_TOO_BIG)
    args = sdssplitargs(data[base:stop])
    if args is None:
        raise _Refused(words.ERR_UNBALANCED_QUOTES)
    if args:
        if len(args) > limits.max_array_len:
            raise _Refused(too_long_array)
        if max(map(len, args)) > limits.max_bulk_bytes:
            raise _Refused(too_long_bulk)
        if len(encode(args)) > limits.max_request_bytes:
            raise _Refused(words.ERR_REQUEST_TOO_BIG.format(limits.max_request_bytes))
    return args, lf + 1


def _too_long_words(limits: Limits) -> tuple[str, str]:
    if limits.unauthenticated:
        return words.ERR_UNAUTHENTICATED_MULTIBULK, words.ERR_UNAUTHENTICATED_BULK
    return words.ERR_MULTIBULK_LENGTH, words.ERR_BULK_LENGTH


# Replies --------------------------------------------------------------------------------------

_DOUBLE = re.compile(rb"[+-]?(?:inf|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.I)
_BIG_NUMBER = re.compile(rb"[+-]?[0-9]+")


class _Broken(Exception):
    pass


def frame_replies(data: bytes) -> tuple[list[int], bool]:
    """Where each complete top-level reply in `data` ends, and whether the stream is broken
    (False: it ends between replies or inside an unfinished one)."""
    ends: list[int] = []
    pos = 0
    while pos < len(data):
        try:
            pos = _value(data, pos)
        except _Incomplete:
            return ends, False
        except _Broken:
            return ends, True
        ends.append(pos)
    return ends, False


def _line(data: bytes, p: int) -> tuple[int, bytes, int]:
    """The element header at p: its type byte, its text, where what follows starts."""
    cr = data.find(b"\r\n", p)
    if cr < 0:
        raise _Incomplete
    if cr == p:
        raise _Broken  # an empty line has no type byte
    return data[p], data[p + 1 : cr], cr + 2


def _attributes(data: bytes, p: int) -> tuple[int, bytes, int]:
    """Skip any attributes at p (each annotates what follows); the next element's header."""
    t, text, nxt = _line(data, p)
    while t == ord("|"):
        count = string2ll(text)
        if count is None or count < 0 or count >= MAX_REPLY_COUNT:
            raise _Broken
        p = nxt
        for _ in range(2 * count):
            p = _value(data, p)
        t, text, nxt = _line(data, p)
    return t, text, nxt


def _value(data: bytes, p: int) -> int:
    """Parse one value (attributes before it included); return where it ends."""
    t, text, nxt = _attributes(data, p)
    return _after_header(data, t, text, nxt)


def _after_header(data: bytes, t: int, text: bytes, nxt: int) -> int:
    c = chr(t)
    if c in "$!=":
        if c == "$" and text == b"-1":
            return nxt
        if c == "$" and text == b"?":
            return _streamed_string(data, nxt)
        size = string2ll(text)
        if size is None or size < 0:
            raise _Broken
        end = _blob(data, nxt, size)
        if c == "=" and (size < 4 or data[nxt + 3] != ord(":")):
            raise _Broken
        return end
    if c in "+-":
        return nxt
    if c == ":":
        if string2ll(text) is None:
            raise _Broken
        return nxt
    if c in "*%~>":
        if c == "*" and text == b"-1":
            return nxt
        if text == b"?":
            return _streamed_aggregate(data, nxt)
        count = string2ll(text)
        if count is None or count < 0 or count >= MAX_REPLY_COUNT:
            raise _Broken
        p = nxt
        for _ in range(2 * count if c == "%" else count):
            p = _value(data, p)
        return p
    if c == "_" and text == b"":
        return nxt
    if c == "#" and text in (b"t", b"f"):
        return nxt
    if c == "," and _DOUBLE.fullmatch(text):
        return nxt
    if c == "(" and _BIG_NUMBER.fullmatch(text):
        return nxt
    raise _Broken  # `;` and `.` outside their streams, bad scalars, unknown type bytes


def _blob(data: bytes, p: int, size: int) -> int:
    end = p + size
    if end + 2 > len(data):
        raise _Incomplete
    if data[end : end + 2] != b"\r\n":
        raise _Broken
    return end + 2


def _streamed_string(data: bytes, p: int) -> int:
    """`;len` chunks up to `;0`; attributes may stand between them, nothing else."""
    while True:
        t, text, nxt = _attributes(data, p)
        if t != ord(";"):
            _after_header(data, t, text, nxt)  # any other value: broken once it is complete
            raise _Broken
        size = string2ll(text)
        if size is None or size < 0:
            raise _Broken
        if size == 0:
            return nxt
        p = _blob(data, nxt, size)


def _streamed_aggregate(data: bytes, p: int) -> int:
    """Values up to a `.` line."""
    while True:
        t, text, nxt = _attributes(data, p)
        if t == ord("."):
            if text:
                raise _Broken
            return nxt
        p = _after_header(data, t, text, nxt)
