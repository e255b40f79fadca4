"""Encoders for the RESP the gateway writes itself, and canned replies.

Replies from the upstream are forwarded as received (see `resp_reply`); these are for what the
gateway answers on its own (AUTH, HELLO, errors, pub/sub confirmations) and
for commands it sends upstream itself. Error text is made single-line here, so a message built
from user input can never break the framing of the reply stream. Everything is re-exported by
`resp`, where callers find it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "REPLY_EMPTY_ARRAY",
    "REPLY_HELLO_NOAUTH",
    "REPLY_NOAUTH",
    "REPLY_NOPROTO",
    "REPLY_NULL",
    "REPLY_NULL_ARRAY",
    "REPLY_NULL_BULK",
    "REPLY_OK",
    "REPLY_ONE",
    "REPLY_PONG",
    "REPLY_QUEUED",
    "REPLY_RESET",
    "REPLY_SYNTAX_ERROR",
    "REPLY_WRONGPASS",
    "REPLY_ZERO",
    "encode_array",
    "encode_bulk",
    "encode_command",
    "encode_error",
    "encode_int",
    "encode_map",
    "encode_push",
    "encode_simple",
]


def _to_bytes(value: bytes | bytearray | memoryview | str | int) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    return bytes(value)


def _one_line(text: str | bytes) -> bytes:
    """Text for a `+`/`-` line: CR and LF would end the line early, so they become spaces."""
    data = text.encode() if isinstance(text, str) else text
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


def encode_command(args: Sequence[bytes | bytearray | memoryview | str | int]) -> bytes:
    """A command as multibulk (`*N` of `$` bulks), the only form upstreams are sent."""
    # One list and one join: half the time of a map over zipped lengths (the HTTP command API
    # encodes every command it is handed, benchmarks/httpload.py).
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if type(arg) is bytes else _to_bytes(arg)
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)


def encode_simple(text: str | bytes) -> bytes:
    """A simple string (`+OK`)."""
    return b"+" + _one_line(text) + b"\r\n"


def encode_error(code: str, message: str) -> bytes:
    """An error reply `-CODE message` (the first word is what clients map to exceptions)."""
    return b"-" + _one_line(f"{code} {message}" if message else code) + b"\r\n"


def encode_int(value: int) -> bytes:
    return b":%d\r\n" % value


def encode_bulk(value: bytes | str | None, *, resp3: bool = False) -> bytes:
    """A bulk string; None is `$-1` in RESP2 and `_` in RESP3."""
    if value is None:
        return REPLY_NULL if resp3 else REPLY_NULL_BULK
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(data), data)


def encode_array(frames: Sequence[bytes] | None, *, resp3: bool = False) -> bytes:
    """An array of already-encoded frames; None is `*-1` in RESP2 and `_` in RESP3."""
    if frames is None:
        return REPLY_NULL if resp3 else REPLY_NULL_ARRAY
    return b"*%d\r\n" % len(frames) + b"".join(frames)


def encode_push(frames: Sequence[bytes], *, resp3: bool = False) -> bytes:
    """Out-of-band data (pub/sub messages): `>` in RESP3, a plain array in RESP2."""
    return (b">%d\r\n" if resp3 else b"*%d\r\n") % len(frames) + b"".join(frames)


def encode_map(
    items: Mapping[str, bytes] | Mapping[bytes, bytes] | Iterable[tuple[str | bytes, bytes]],
    *,
    resp3: bool = False,
) -> bytes:
    """A map of bulk-string keys to already-encoded values: `%` in RESP3, a flat array in RESP2.

    This is the shape of the HELLO reply: `encode_map({"proto": encode_int(3), ...})`.
    """
    pairs = list(items.items() if isinstance(items, Mapping) else items)
    parts = [(b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(pairs) if resp3 else 2 * len(pairs))]
    for key, value in pairs:
        parts.append(encode_bulk(key))
        parts.append(value)
    return b"".join(parts)


# Canned replies ------------------------------------------------------------------------------

REPLY_OK = b"+OK\r\n"
REPLY_PONG = b"+PONG\r\n"
REPLY_SYNTAX_ERROR = b"-ERR syntax error\r\n"
REPLY_QUEUED = b"+QUEUED\r\n"
REPLY_RESET = b"+RESET\r\n"
REPLY_ZERO = b":0\r\n"
REPLY_ONE = b":1\r\n"
REPLY_NULL_BULK = b"$-1\r\n"  # RESP2 null
REPLY_NULL_ARRAY = b"*-1\r\n"  # RESP2 null array
REPLY_NULL = b"_\r\n"  # RESP3 null
REPLY_EMPTY_ARRAY = b"*0\r\n"
REPLY_NOAUTH = b"-NOAUTH Authentication required.\r\n"
REPLY_WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
REPLY_NOPROTO = b"-NOPROTO unsupported protocol version\r\n"
REPLY_HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    b"HELLO AUTH <user> <pass> option can be used to authenticate the client and "
    b"select the RESP protocol version at the same time\r\n"
)
