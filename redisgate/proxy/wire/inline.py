"""Inline commands (`PING` typed in telnet), split the way Redis's `sdssplitargs` splits them.

Health checkers and people at a telnet prompt send a bare line instead of RESP. Redis splits it
on blanks, with two quoting styles:

- `"double quotes"` understand `\\n \\r \\t \\b \\a`, `\\xHH` and `\\<any>` (the character itself);
- `'single quotes'` understand only `\\'`;
- a closing quote must be followed by a blank or the end of the line, and an unterminated
  quote makes the whole line invalid (Redis answers `unbalanced quotes in request`).

Blanks are C's `isspace()` when skipped between arguments, but only space, tab, CR and LF end
an unquoted argument (so `a\\vb` is one argument), and a NUL byte ends the line, because Redis
works on a C string. Quoted empty strings (`""`) are real, empty arguments.
"""

from __future__ import annotations

import re

__all__ = ["split_inline_args"]

# Anything that `bytes.split()` would treat differently from sdssplitargs.
_NEEDS_SLOW_PATH = re.compile(rb"[\"'\x00\x0b\x0c]").search

_SPACE = frozenset(b" \t\n\v\f\r")  # C isspace()
_ENDS_BARE_ARG = frozenset(b" \t\n\r")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_BACKSLASH, _DQUOTE, _SQUOTE, _LOWER_X = 92, 34, 39, 120


def split_inline_args(line: bytes) -> list[bytes] | None:
    """Split one inline request line (without its line ending); None if quotes are unbalanced."""
    if _NEEDS_SLOW_PATH(line) is None:
        return line.split()  # plain words: the common case, done in C
    nul = line.find(b"\x00")
    if nul >= 0:
        line = line[:nul]
    return _split_quoted(line)


def _split_quoted(line: bytes) -> list[bytes] | None:
    """The character loop of sdssplitargs, for lines that use quotes or odd blanks."""
    n = len(line)
    args: list[bytes] = []
    i = 0
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = done = False
        while not done:
            c = line[i] if i < n else 0  # 0 plays the C string's terminating NUL
            nxt = line[i + 1] if i + 1 < n else 0
            if in_double:
                if (
                    c == _BACKSLASH
                    and nxt == _LOWER_X
                    and i + 3 < n
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == _BACKSLASH and nxt:
                    i += 1
                    current.append(_ESCAPES.get(nxt, nxt))
                elif c == _DQUOTE:
                    if nxt and nxt not in _SPACE:
                        return None  # closing quote glued to more text
                    done = True
                elif not c:
                    return None  # unterminated
                else:
                    current.append(c)
            elif in_single:
                if c == _BACKSLASH and nxt == _SQUOTE:
                    i += 1
                    current.append(_SQUOTE)
                elif c == _SQUOTE:
                    if nxt and nxt not in _SPACE:
                        return None
                    done = True
                elif not c:
                    return None
                else:
                    current.append(c)
            elif not c or c in _ENDS_BARE_ARG:
                done = True
            elif c == _DQUOTE:
                in_double = True
            elif c == _SQUOTE:
                in_single = True
            else:
                current.append(c)
            if i < n:
                i += 1
        args.append(bytes(current))
