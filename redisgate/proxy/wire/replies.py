"""Byte-faithful framing of upstream replies (RESP2 and RESP3), sans-IO.

Theory of operation
-------------------
The gateway forwards each reply exactly as the upstream sent it, so all it needs is where one
top-level reply ends and the next begins. hiredis cannot tell: it folds `+OK` and `$2 OK` into
the same value, reports no byte offsets and returns a RESP3 attribute as if it were the reply.
`ReplyFramer` therefore scans headers itself and never decodes a value.

Every RESP element starts with a line: a type byte, text, CRLF. Blob types (`$ ! =`) then carry
that many bytes and a CRLF; aggregates (`* ~ > % |`) announce how many elements follow (maps
and attributes count pairs). Open aggregates live on an explicit stack of remaining counts, so
depth costs no recursion. An attribute (`|`) is stored as a negative count: when it completes
it is not a value of its parent, so an attribute and the reply it annotates form one frame.
RESP3 streamed strings (`$?` then `;len` chunks up to `;0`) and streamed aggregates (`*?` ...
`.`) are framed too, though Redis does not send them.

Scanning only ever runs over `bytes`. When a frame is cut off, its scanned prefix is kept as
immutable parts and only the unfinished element onwards is kept in a growable tail, with the
number of bytes it must reach (`_need`) or, for an unfinished line, how far it was already
searched (`_seen`). A bulk cut off in its body is not copied at all: its header is checked,
the reads that carry its body are kept as they are (`_skip` counts the bytes still to come,
its CRLF included), and the frame is joined once, when complete. So a 100 KB or 100 MB bulk in
64 KB pieces costs one copy in all, and a huge array in pieces is scanned once: linear, never
quadratic.

Speed: a read holding exactly one `+`, `-`, `:` or `$` reply (the commonest) is returned as is
after three checks. Long aggregates of short bulks (LRANGE, MGET hits, HGETALL) are checked in C
by `_bulk_run`. Measured (bench_resp.py, shared 2-core dev box, ns per frame): `+OK` 370,
3-byte bulk 480, 16 small bulks per read 530 each, 100-element array 14 000, 100 KB bulk 2300.
Parsing with hiredis alone takes 260/260/90/3100/5700 and cannot give the bytes back;
parsing and re-encoding (not byte-faithful anyway) 460/480/270/25 700/184 000. Since issue 19
(same bench, a busier box): a 100-element array of one length 10 800 -> 3000 (strided check),
a 100 KB bulk in 64 KB reads 8700 -> 3900 (its body kept as read, joined once).
"""

from __future__ import annotations

import re
from operator import eq

from redisgate.errors import RemoteProtocolError

__all__ = ["ReplyFramer", "is_error", "is_push", "scalar_text", "split_aggregate"]

# Canonical small numbers, the way Redis writes them (no sign, no leading zero): one dict
# lookup both parses and validates the common lengths and counts.
_NUMS: dict[bytes, int] = {b"%d" % i: i for i in range(4096)}
_INT_RE = re.compile(rb"-?[1-9][0-9]{0,18}|0")  # the shape of Redis's string2ll (int64 digits)
_DOUBLE_RE = re.compile(rb"[+-]?(?:inf|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.I)
_BIGNUM_RE = re.compile(rb"[+-]?[0-9]+")

_STREAMED = 1 << 62  # remaining count of a streamed aggregate: never reaches zero by counting
_STREAMED_MIN = 1 << 61
_IN_STREAMED_STRING = -(1 << 62)
_MAX_COUNT = 1 << 60  # larger counts are refused: doubled (maps) they stay below the sentinels

# Type bytes.
_BULK, _SIMPLE, _ERROR, _INTEGER, _ARRAY = 36, 43, 45, 58, 42
_BLOB_ERROR, _VERBATIM, _MAP, _SET, _PUSH, _ATTRIBUTE = 33, 61, 37, 126, 62, 124
_NULL, _DOUBLE, _BOOLEAN, _BIG_NUMBER, _CHUNK, _END = 95, 44, 35, 40, 59, 46


_HEADER_OF_LENGTH: dict[int, bytes] = {i: b"$%d" % i for i in range(4096)}
_header_of_length = _HEADER_OF_LENGTH.get
_LENGTH_OF_HEADER: dict[bytes, int] = {v: k for k, v in _HEADER_OF_LENGTH.items()}
_RUN_MIN = 8  # aggregates this long try the vectorized check first
_RUN_MAX_ITEM = 4096 + 12  # the longest element the check accepts, with its framing


def _bulk_run(buf: bytes, start: int, count: int) -> tuple[int, int]:
    """Skip the longest run of up to `count` complete canonical bulks (`$<len>`, len < 4096).

    Returns (where the run ends, how many elements it holds). One split and one list comparison
    in C instead of a Python step per element: an LRANGE reply costs tens of ns per element
    instead of hundreds. The region split starts at `count * 32` bytes and grows 8x at a time,
    so it stays proportional to the reply, not to whatever follows it in the buffer.

    Bulks all of one length (a list of same-size values, ids, hashes) are checked without
    the split: element i starts at `start + i * step`, so each byte of the header and of the
    trailing CRLF is compared across all of them in one strided slice (`_uniform_run`).
    """
    n = len(buf)
    cr = buf.find(b"\r\n", start, start + 7)
    if cr > 0:
        size = _LENGTH_OF_HEADER.get(buf[start:cr])
        if size is not None:
            step = cr - start + 4 + size
            end = start + step * count
            if (
                end <= n
                and buf.startswith(buf[start : cr + 2], start + step)  # a cheap first test
                and _uniform_run(buf[start:end], step, cr + 2 - start, count)
            ):
                return end, count
    want = 2 * count
    cap = count * 32
    while True:
        stop = min(n, start + cap)
        lines = buf[start:stop].split(b"\r\n", want)
        if len(lines) > want or stop == n or cap >= count * _RUN_MAX_ITEM:
            break
        cap *= 8
    pairs = min(count, (len(lines) - 1) // 2)  # the last line is not CRLF-terminated
    headers = lines[0 : 2 * pairs : 2]
    data = lines[1 : 2 * pairs : 2]
    expected = list(map(_header_of_length, map(len, data)))
    if expected == headers:
        if pairs == count:
            return stop - len(lines[want]), count
    else:
        pairs = list(map(eq, expected, headers)).index(False)
    size = sum(map(len, headers[:pairs])) + sum(map(len, data[:pairs])) + 4 * pairs
    return start + size, pairs


def _uniform_run(region: bytes, step: int, header: int, count: int) -> bool:
    """True if `region` is `count` elements of `step` bytes that all start with the first
    one's `header` bytes (`$<len>` CRLF) and end with CRLF; the bodies between are opaque."""
    for at in range(header):
        if region[at::step] != region[at : at + 1] * count:
            return False
    return region[step - 2 :: step] == b"\r" * count and region[step - 1 :: step] == b"\n" * count


def parse_int(text: bytes) -> int | None:
    """Parse a RESP length or integer strictly (no sign games, no leading zeros); None if bad."""
    value = _NUMS.get(text)
    if value is None and _INT_RE.fullmatch(text):
        value = int(text)
        if not -(2**63) <= value < 2**63:  # string2ll's range: 19 digits can overflow int64
            return None
    return value


def _error(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"Protocol error: {message}")


class ReplyFramer:
    """Split an upstream byte stream into whole top-level replies, byte for byte.

    `feed(data)` returns every reply completed by `data`, each as the exact bytes received
    (attributes included with the reply they annotate). Malformed input raises
    `RemoteProtocolError`, and replies completed earlier in the same `data` are not returned:
    the stream can no longer be trusted, so the caller drops the connection and fails every
    pending request. The framer then stays failed.
    """

    __slots__ = ("_failed", "_need", "_parts", "_seen", "_skip", "_stack", "_tail")

    def __init__(self) -> None:
        self._stack: list[int] = []  # remaining elements of each open aggregate
        # Scanned bytes of the current, unfinished frame (views of reads, never copied).
        self._parts: list[bytes | memoryview] = []
        self._tail: bytearray | None = None  # from the unfinished element onwards
        self._need = 0  # bytes the tail must hold before scanning can progress
        self._seen = -1  # >= 0: the tail holds an unfinished line searched up to here
        self._skip = 0  # > 0: bytes still to come of a bulk body (and its CRLF), tail empty
        self._failed: RemoteProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for the reply being received (for memory accounting)."""
        tail = len(self._tail) if self._tail is not None else 0
        return tail + sum(map(len, self._parts))

    def feed(self, data: bytes) -> list[bytes]:
        """Buffer `data` and return the raw bytes of each reply it completes."""
        if self._failed is not None:
            raise self._failed
        tail = self._tail
        if tail is None:  # between frames (mid-frame there is always a tail, maybe empty)
            # The commonest read: exactly one `+`, `-`, `:` or `$` reply. Return it as is.
            cr = data.find(b"\r\n")
            if cr > 0 and data[-2:] == b"\r\n":
                t = data[0]
                if cr == len(data) - 2:
                    if t == 43 or t == 45 or (t == 58 and data[1:cr] in _NUMS):
                        return [data]
                elif t == 36 and cr + 4 + _NUMS.get(data[1:cr], -9) == len(data):
                    return [data]
            buf = data
        elif self._skip:
            return self._feed_body(data)
        elif not tail:  # mid-frame, at an element boundary: nothing to copy
            buf = data
            self._tail = None
        else:
            tail += data
            if self._seen >= 0:
                if tail.find(b"\r\n", self._seen) < 0:
                    self._seen = max(len(tail) - 1, 0)
                    return []
                self._seen = -1
            elif len(tail) < self._need:
                return []
            buf = bytes(tail)
            self._tail = None
        out: list[bytes] = []
        try:
            self._scan(buf, out)
        except RemoteProtocolError as exc:
            self._failed = exc
            raise
        return out

    def _feed_body(self, data: bytes) -> list[bytes]:
        """More of a bulk body that an earlier read cut off: kept as is until it is complete,
        then the frame goes on (or ends) with the rest of `data`."""
        skip, n = self._skip, len(data)
        if n < skip:
            self._parts.append(data)
            self._skip = skip - n
            return []
        # The body ends in `data`, at `skip`: its CRLF may straddle the previous read.
        last = self._parts[-1]
        if data[skip - 1] != 10 or (data[skip - 2] if skip > 1 else last[-1]) != 13:
            self._failed = _error("bulk data not followed by CRLF")
            raise self._failed
        self._skip = 0
        self._tail = None
        self._parts.append(data if skip == n else memoryview(data)[:skip])
        out: list[bytes] = []
        try:
            if self._value_ended():
                out.append(b"".join(self._parts))
                self._parts = []
            if skip < n:
                self._scan(data, out, skip)
            elif self._parts:  # mid-frame, at an element boundary
                self._tail = bytearray()
                self._need, self._seen = 0, -1
        except RemoteProtocolError as exc:
            self._failed = exc
            raise
        return out

    def _value_ended(self) -> bool:
        """Count a value that just ended in its parent, closing finished aggregates (as the
        end of `_scan`'s loop does); True if it completed the top-level frame."""
        stack = self._stack
        while stack:
            top = stack[-1]
            if top > 0:
                if top > 1:
                    stack[-1] = top - 1
                    return False
                stack.pop()
            else:
                if top < -1:
                    if top == _IN_STREAMED_STRING:
                        raise _error("a streamed string holds only ';' chunks")
                    stack[-1] = top + 1
                else:
                    stack.pop()
                return False
        return True

    def _scan(self, buf: bytes, out: list[bytes], p: int = 0) -> None:
        """Append the frames completed in `buf` from `p`; keep the unfinished rest for the
        next feed."""
        n = len(buf)
        find = buf.find
        stack = self._stack
        nums = _NUMS
        start = p  # p: next element; start: first byte of the current frame in buf
        need, seen = 0, -1  # what the tail will wait for, if the buffer ends inside a frame
        if stack and _RUN_MIN < stack[-1] < _STREAMED_MIN:
            # Resuming inside a long aggregate: skip what is now complete in C, but leave
            # its last element to the loop below, which closes the aggregate.
            p, done = _bulk_run(buf, p, stack[-1] - 1)
            stack[-1] -= done
        while p < n:
            cr = find(b"\r\n", p)
            if cr < 0:
                seen = max(n - p - 1, 0)
                break
            t = buf[p]
            if t == 36 or t == 33 or t == 61:  # $ ! =
                size = nums.get(buf[p + 1 : cr])
                if size is None:
                    text = buf[p + 1 : cr]
                    if t == _BULK and text == b"-1":
                        p = cr + 2  # RESP2 null bulk string
                    elif t == _BULK and text == b"?":
                        stack.append(_IN_STREAMED_STRING)
                        p = cr + 2
                        continue
                    else:
                        size = parse_int(text)
                        if size is None or size < 0:
                            raise _error("invalid bulk length")
                if size is not None:
                    end = cr + 2 + size
                    if end + 2 > n:
                        if t != _VERBATIM and end > n:  # cut in its body: keep, never copy
                            self._parts.append(memoryview(buf)[start:] if start else buf)
                            self._skip = end + 2 - n
                            self._tail = bytearray()
                            return
                        need = end + 2 - p
                        break
                    if buf[end] != 13 or buf[end + 1] != 10:
                        raise _error("bulk data not followed by CRLF")
                    if t == _VERBATIM and (size < 4 or buf[cr + 5] != 58):
                        raise _error("verbatim string without a format prefix")
                    p = end + 2
            elif t == 43 or t == 45:  # + -
                p = cr + 2
            elif t == 58:  # :
                if buf[p + 1 : cr] not in nums and parse_int(buf[p + 1 : cr]) is None:
                    raise _error("invalid integer")
                p = cr + 2
            elif t == 42 or t == 37 or t == 126 or t == 62 or t == 124:  # * % ~ > |
                count = nums.get(buf[p + 1 : cr])
                if count is None:
                    text = buf[p + 1 : cr]
                    if text == b"-1" and t == _ARRAY:
                        count = 0  # RESP2 null array: a complete value
                    elif text == b"?" and t != _ATTRIBUTE:
                        stack.append(_STREAMED)
                        p = cr + 2
                        continue
                    else:
                        count = parse_int(text)
                        if count is None or count < 0 or count >= _MAX_COUNT:
                            raise _error("invalid aggregate length")
                if count:
                    if t == _MAP:
                        count *= 2
                    elif t == _ATTRIBUTE:
                        count *= -2
                    if count < _RUN_MIN:
                        p = cr + 2
                        stack.append(count)
                        continue
                    p, done = _bulk_run(buf, cr + 2, count)
                    if done < count:
                        stack.append(count - done)
                        continue
                    # else: the whole aggregate was checked in C, a complete value
                else:
                    p = cr + 2
                if t == _ATTRIBUTE:
                    continue  # an empty attribute: still waiting for the annotated value
            elif t == _CHUNK:
                if not stack or stack[-1] != _IN_STREAMED_STRING:
                    raise _error("streamed string chunk outside a streamed string")
                size = parse_int(buf[p + 1 : cr])
                if size is None or size < 0:
                    raise _error("invalid streamed string chunk length")
                if size:
                    end = cr + 2 + size
                    if end + 2 > n:
                        need = end + 2 - p
                        break
                    if buf[end] != 13 or buf[end + 1] != 10:
                        raise _error("bulk data not followed by CRLF")
                    p = end + 2
                    continue
                stack.pop()  # `;0`: the streamed string is complete
                p = cr + 2
            elif t == _END:
                if cr != p + 1 or not stack or stack[-1] < _STREAMED_MIN:
                    raise _error("unexpected end of streamed aggregate")
                stack.pop()
                p = cr + 2
            else:
                p = self._scan_rare_line(buf, p, cr, t)
            # A value ended at p: count it in its parent, closing finished aggregates
            # (`_value_ended`, inlined here: this runs once per value of every reply).
            while stack:
                top = stack[-1]
                if top > 0:
                    if top > 1:
                        stack[-1] = top - 1
                        break
                    stack.pop()  # the aggregate is complete: a value of its own parent
                else:
                    if top < -1:
                        if top == _IN_STREAMED_STRING:
                            raise _error("a streamed string holds only ';' chunks")
                        stack[-1] = top + 1
                    else:
                        stack.pop()  # an attribute is complete: not a value, keep going
                    break
            else:
                if self._parts:
                    self._parts.append(buf[start:p])
                    out.append(b"".join(self._parts))
                    self._parts = []
                else:
                    out.append(buf[start:p])
                start = p
        if p >= n and start == n:
            return  # everything consumed, between frames
        # Inside a frame: keep its scanned prefix, and the unfinished element as the new tail.
        if p > start:
            self._parts.append(buf[start:p])
        with memoryview(buf) as view:
            self._tail = bytearray(view[p:])
        self._need = need
        self._seen = seen

    @staticmethod
    def _scan_rare_line(buf: bytes, p: int, cr: int, t: int) -> int:
        """Validate a RESP3 scalar line (`_ , # (`); return where the next element starts."""
        if t == _NULL:
            ok = cr == p + 1
        elif t == _BOOLEAN:
            ok = cr == p + 2 and buf[p + 1] in b"tf"
        elif t == _DOUBLE:
            ok = _DOUBLE_RE.fullmatch(buf, p + 1, cr) is not None
        elif t == _BIG_NUMBER:
            ok = _BIGNUM_RE.fullmatch(buf, p + 1, cr) is not None
        else:
            raise _error(f"invalid reply type byte {chr(t)!r}")
        if not ok:
            raise _error(f"invalid {chr(t)!r} value")
        return cr + 2


def _value_start(frame: bytes) -> int:
    """Skip the attributes a frame may start with; return where its reply proper begins."""
    pos = 0
    while frame[pos] == _ATTRIBUTE:
        # An attribute is laid out exactly like a map: frame it as one to find its end.
        parts = ReplyFramer().feed(b"%" + frame[pos + 1 :])
        pos += len(parts[0])
    return pos


def is_push(frame: bytes) -> bool:
    """True for a RESP3 push (`>`), which the session routes apart from command replies."""
    first = frame[0]
    if first == _ATTRIBUTE:
        first = frame[_value_start(frame)]
    return first == _PUSH


def is_error(frame: bytes) -> bool:
    """True for an error reply (`-` simple error or `!` blob error)."""
    first = frame[0]
    if first == _ATTRIBUTE:
        first = frame[_value_start(frame)]
    return first in (_ERROR, _BLOB_ERROR)


def split_aggregate(frame: bytes) -> tuple[bytes, list[bytes]] | None:
    """(type byte, element frames) of an array/map/set frame, each element byte for byte;
    None for any other frame (for the transforms that rewrite a reply the gateway filters)."""
    kind = frame[:1]
    if kind not in (b"*", b"%", b"~"):
        return None
    header_end = frame.index(b"\r\n")
    count = int(frame[1:header_end])
    if count <= 0:
        return kind, []
    elements = ReplyFramer().feed(frame[header_end + 2 :])
    if len(elements) != (count * 2 if kind == b"%" else count):
        return None
    return kind, elements


def scalar_text(frame: bytes) -> bytes | None:
    """The text of a simple string, bulk or verbatim frame (without the verbatim `txt:`
    prefix); None for a null or any other frame."""
    first = frame[:1]
    if first == b"+":
        return frame[1:-2]
    if first not in (b"$", b"="):
        return None
    header_end = frame.index(b"\r\n")
    if frame[1:header_end] == b"-1":
        return None
    body = frame[header_end + 2 : -2]
    return body[4:] if first == b"=" else body
