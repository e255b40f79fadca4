"""Valid inputs built from a fuzzer's bytes: each byte is a choice (the structure-aware half).

A coverage-guided fuzzer mutates bytes; `Choices` reads them as decisions (how many arguments,
which reply type, how deep), so a mutation changes the structure and every input is valid by
construction. Past the end of the input every choice is 0, which always means "stop" or "the
simplest thing". The generators return what they built together with what it must parse to.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bytes that matter to the framers, so that generated arguments and lines hit their edges.
SPECIAL = b"\r\n$*:+-_,#(!=%~>|;.?\"' \t\\x\x00\x0b\x0c0123456789\xff"


class Choices:
    """Decisions read from bytes, one or two at a time; 0 once the bytes run out."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def byte(self) -> int:
        pos = self._pos
        if pos >= len(self._data):
            return 0
        self._pos = pos + 1
        return self._data[pos]

    def below(self, n: int) -> int:
        """A number in range(n) (n <= 65536)."""
        if n <= 256:
            return self.byte() % n
        return (self.byte() << 8 | self.byte()) % n

    def chance(self, in_256: int) -> bool:
        """True for `in_256` of the 256 byte values; False once the bytes run out."""
        return self.byte() >= 256 - in_256

    def pick(self, options: bytes) -> int:
        return options[self.below(len(options))]

    def blob(self, max_len: int, long: bool = True) -> bytes:
        """Short bytes, often made of the framers' special bytes; now and then long ones."""
        kind = self.below(32)
        if kind == 31 and long:  # around the fast paths' 4096-entry tables, CRLFs included
            return b"\r\n" * (2045 + self.below(6)) + b"x" * self.below(3)
        n = self.below(max_len + 1)
        if kind < 12:
            return bytes(self.pick(SPECIAL) for _ in range(n))
        if kind < 20:
            return bytes(self.byte() for _ in range(n))
        return bytes(97 + self.below(26) for _ in range(n))

    def rest(self) -> bytes:
        data = self._data[self._pos :]
        self._pos = len(self._data)
        return data


# Requests -------------------------------------------------------------------------------------

NAMES = [b"GET", b"SET", b"PING", b"MGET", b"get", b"HSET", b"MULTI", b"X"]


@dataclass
class GeneratedRequests:
    data: bytes
    commands: list[list[bytes]]  # what the framer must hand out, in order


def requests(c: Choices) -> GeneratedRequests:
    """A pipeline of multibulk and inline commands with empty requests between them."""
    parts: list[bytes] = []
    commands: list[list[bytes]] = []
    for _ in range(1 + c.below(10)):
        kind = c.below(8)
        if kind == 7:
            parts.append(
                [b"*0\r\n", b"*-1\r\n", b"\r\n", b"\n", b" \t\r\n", b"*-7\r\n"][c.below(6)]
            )
            continue
        args = [NAMES[c.below(len(NAMES))]]
        args += [c.blob(12, long=kind < 5) for _ in range(c.below(6))]  # inline: < 64 KiB
        if kind < 5:
            if c.chance(8):  # many arguments: past the run and fast-path header tables
                args += [b"k"] * (1020 + c.below(10))
            parts.append(
                b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
            )
        else:
            args = [a for a in args if a and b"\x00" not in a] or [b"PING"]
            parts.append(inline_line(c, args) + (b"\r\n" if c.chance(200) else b"\n"))
        commands.append(args)
    return GeneratedRequests(b"".join(parts), commands)


# Inline lines ---------------------------------------------------------------------------------

_BARE_OK = frozenset(range(33, 127)) - frozenset(b"\"'\\")
_SPACES = b" \t\x0b\x0c"


def inline_line(c: Choices, args: list[bytes]) -> bytes:
    """A line that sdssplitargs splits back into exactly `args` (none may hold a NUL)."""
    words = []
    for arg in args:
        style = c.below(4)
        if style == 0 and arg and all(b in _BARE_OK for b in arg):
            words.append(arg)
        elif style <= 1 and not any(b in b"'\r\n" for b in arg) and not arg.endswith(b"\\"):
            words.append(b"'" + arg + b"'")
        else:
            words.append(b'"' + b"".join(_dquote(c, b) for b in arg) + b'"')
    # Any C isspace() may follow a closing quote, but only space and tab end a bare word.
    gaps = [
        bytes(c.pick(_SPACES if w[:1] in (b'"', b"'") else b" \t") for _ in range(1 + c.below(2)))
        for w in words
    ]
    lead = bytes(c.pick(_SPACES) for _ in range(c.below(3)))
    return (
        lead + b"".join(w + g for w, g in zip(words, gaps, strict=True))[: -len(gaps[-1]) or None]
    )


def _dquote(c: Choices, b: int) -> bytes:
    """One byte inside double quotes, escaped in one of the ways Redis understands."""
    escapes = {10: b"\\n", 13: b"\\r", 9: b"\\t", 8: b"\\b", 7: b"\\a"}
    if b in escapes and c.chance(128):
        return escapes[b]
    if b in b'\x00\r\n"\\' or c.chance(48):  # a line must not hold a raw LF
        return b"\\x%02x" % b if c.chance(160) else b"\\x%02X" % b
    if b not in b"xnrtba" and c.chance(24):
        return b"\\" + bytes([b])  # `\q` is `q`
    return bytes([b])


# Replies --------------------------------------------------------------------------------------


@dataclass
class GeneratedReplies:
    data: bytes
    frames: list[bytes]
    hiredis_count: int | None  # replies hiredis must see (None: uses what hiredis lacks)
    errors: list[bool]
    pushes: list[bool]


def replies(c: Choices) -> GeneratedReplies:
    frames, errors, pushes = [], [], []
    hiredis_ok = True
    for _ in range(1 + c.below(8)):
        frame, kind, plain = reply(c, 0)
        frames.append(frame)
        errors.append(kind in b"-!")
        pushes.append(kind == ord(">"))
        hiredis_ok = hiredis_ok and plain
    count = len(frames) if hiredis_ok else None
    return GeneratedReplies(b"".join(frames), frames, count, errors, pushes)


def reply(c: Choices, depth: int) -> tuple[bytes, int, bool]:
    """One value: its bytes, its type byte (after any attribute) and whether hiredis knows
    everything in it (no attributes, blob errors or streams; shallow enough)."""
    prefix = b""
    plain = depth < 6
    if c.chance(16):  # an attribute annotates the value
        pairs = c.below(3)
        prefix = b"|%d\r\n" % pairs + b"".join(
            reply(c, depth + 1)[0] + reply(c, depth + 1)[0] for _ in range(pairs)
        )
        plain = False
    top = 20 if depth < 5 else 12  # past 12: aggregates, rarer the deeper
    kind = c.below(top)
    if kind == 0:
        return prefix + b"+" + _line_text(c) + b"\r\n", ord("+"), plain
    if kind == 1:
        return prefix + b"-ERR " + _line_text(c) + b"\r\n", ord("-"), plain
    if kind == 2:
        value = [0, 1, -1, 4095, 4096, 2**63 - 1, -(2**63), 12345][c.below(8)]
        return prefix + b":%d\r\n" % value, ord(":"), plain
    if kind in (3, 4):
        data = c.blob(20)
        return prefix + b"$%d\r\n%s\r\n" % (len(data), data), ord("$"), plain
    if kind == 5:
        return prefix + [b"$-1\r\n", b"*-1\r\n", b"_\r\n"][c.below(3)], ord("_"), plain
    if kind == 6:
        data = c.blob(20)
        return prefix + b"!%d\r\nERR %s\r\n" % (len(data) + 4, data), ord("!"), False
    if kind == 7:
        data = c.blob(20)
        return prefix + b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data), ord("="), plain
    if kind == 8:
        text = [b"1.5", b"-0", b"inf", b"-inf", b"nan", b"1e10", b"-2.5E-3", b".5", b"3."][
            c.below(9)
        ]
        return prefix + b"," + text + b"\r\n", ord(","), plain
    if kind == 9:
        return (
            prefix + b"(" + b"-" * c.below(2) + b"9" * (1 + c.below(40)) + b"\r\n",
            ord("("),
            plain,
        )
    if kind == 10:
        return prefix + [b"#t\r\n", b"#f\r\n"][c.below(2)], ord("#"), plain
    if kind == 11:  # a streamed string (Redis never sends one, the framer still frames it)
        chunks = [c.blob(10) or b"x" for _ in range(c.below(4))]
        body = b"".join(b";%d\r\n%s\r\n" % (len(x), x) for x in chunks)
        return prefix + b"$?\r\n" + body + b";0\r\n", ord("$"), False
    head = b"*%~>"[c.below(4)]
    if c.chance(24):  # streamed aggregate
        items = [reply(c, depth + 1) for _ in range(c.below(4) * (2 if head == ord("%") else 1))]
        body = b"".join(i[0] for i in items)
        return prefix + bytes([head]) + b"?\r\n" + body + b".\r\n", head, False
    n = 8 + c.below(12) if c.chance(56) else c.below(4)  # long ones take the vectorized check
    count = 2 * n if head == ord("%") else n
    items = [reply(c, depth + 1) if c.chance(160) else _short_bulk(c) for _ in range(count)]
    body = b"".join(i[0] for i in items)
    plain = plain and all(i[2] for i in items)
    if head == ord("%"):  # hiredis builds a dict: an aggregate key is beyond it
        plain = plain and all(key[1] not in b"*%~>" for key in items[0::2])
    return prefix + bytes([head]) + b"%d\r\n" % n + body, head, plain


def _short_bulk(c: Choices) -> tuple[bytes, int, bool]:
    data = c.blob(6)
    return b"$%d\r\n%s\r\n" % (len(data), data), ord("$"), True


def _line_text(c: Choices) -> bytes:
    return bytes(b for b in c.blob(12) if b not in b"\r\n")
