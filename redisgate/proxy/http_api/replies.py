"""RESP replies to the JSON the Upstash SDKs read, sans-IO (docs/http.md, "Replies").

A reply is `{"result": value}` or, for an error reply, `{"error": text}`. Integers stay
integers, nil is null, arrays are arrays, and every string is text: UTF-8 decoded (bytes that
are not UTF-8 become U+FFFD), or, when the request asked for `Upstash-Encoding: base64`,
base64 at every depth, simple strings included, except a top-level `OK` (the SDKs decode every
other string, and the documented curl output shows `OK`). RESP3 types, which the SDKs cannot
read, are flattened to their RESP2 forms (a map to its flat key-value array, a double to its
text, a boolean to 1 or 0), as Redis itself answers a RESP2 client.

Server-sent events carry pub/sub messages as the JS SDK parses them: one line
`data: message,<channel>,<payload>` per message, the payload as UTF-8 text, never base64.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from redisgate.errors import RemoteProtocolError

__all__ = ["ReplyError", "dumps", "parse", "sse_event"]


class ReplyError(str):
    """An error reply's text (without its `-`), told apart from a string value."""

    __slots__ = ()


def _text(data: bytes, base64: bool) -> str:
    if base64:
        return binascii.b2a_base64(data, newline=False).decode("ascii")
    return data.decode("utf-8", "replace")


def parse(data: bytes, base64: bool = False, error_depth: int = 1) -> Any:
    """The one RESP reply in `data` as a JSON value: an error reply is a `ReplyError` at the
    top (and, with `error_depth` 2, as an element: EXEC's replies), and text deeper down (a
    script's table of `redis.pcall` results)."""
    if base64 and data == b"+OK\r\n":
        return "OK"
    value, end = _value(data, 0, base64, error_depth)
    if end != len(data):
        raise RemoteProtocolError(f"{len(data) - end} bytes after the reply")
    return value


def _error(text: bytes, base64: bool, error_depth: int) -> Any:
    if error_depth > 0:
        return ReplyError(text.decode("utf-8", "replace"))
    return _text(text, base64)


def _line(data: bytes, start: int) -> tuple[bytes, int]:
    end = data.find(b"\r\n", start)
    if end < 0:
        raise RemoteProtocolError("a reply cut short")
    return data[start + 1 : end], end + 2


def _value(data: bytes, at: int, base64: bool, error_depth: int) -> tuple[Any, int]:
    kind = data[at : at + 1]
    line, at = _line(data, at)
    if kind in (b"$", b"=", b"!"):  # bulk, verbatim and blob error strings
        size = int(line)
        if size < 0:
            return None, at
        blob, at = data[at : at + size], at + size + 2
        if kind == b"!":
            return _error(blob, base64, error_depth), at
        return _text(blob[4:] if kind == b"=" else blob, base64), at
    if kind == b":":
        return int(line), at
    if kind in (b"*", b"~", b">", b"%"):  # arrays, sets, pushes and maps (flattened)
        count = int(line)
        if count < 0:
            return None, at
        if kind == b"%":
            count *= 2
        items = []
        for _ in range(count):
            item, at = _value(data, at, base64, error_depth - 1)
            items.append(item)
        return items, at
    if kind == b"+":
        return _text(line, base64), at
    if kind == b"-":
        return _error(line, base64, error_depth), at
    if kind == b"_":
        return None, at
    if kind == b"#":
        return (1 if line == b"t" else 0), at
    if kind in (b",", b"("):  # doubles and big numbers: their text, as RESP2 has them
        return _text(line, base64), at
    if kind == b"|":  # an attribute: skip it, the reply follows
        count = int(line) * 2
        for _ in range(count):
            _, at = _value(data, at, base64, 0)
        return _value(data, at, base64, error_depth)
    raise RemoteProtocolError(f"unknown reply type {kind!r}")


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8 (not \\u-escaped: smaller, and what the SDKs send too)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def entry(value: Any) -> dict[str, Any]:
    """A reply as `{"result": …}` or `{"error": …}` (one entry of a batch's answer)."""
    if isinstance(value, ReplyError):
        return {"error": str(value) or "ERR"}
    return {"result": value}


def sse_event(frame: Any) -> bytes | None:
    """A pub/sub frame (parsed without base64) as the JS SDK's event line; None for frames
    that are not pub/sub."""
    if not isinstance(frame, list) or not frame or not isinstance(frame[0], str):
        return None
    kind = frame[0].lower()
    if kind not in (
        "message",
        "pmessage",
        "subscribe",
        "psubscribe",
        "unsubscribe",
        "punsubscribe",
    ):
        return None
    parts = [kind, *("" if part is None else str(part) for part in frame[1:])]
    # A newline would end the event (the SDK reads the first line only): it is sent escaped.
    text = ",".join(parts).replace("\r", "\\r").replace("\n", "\\n")
    return b"data: " + text.encode("utf-8") + b"\n\n"
