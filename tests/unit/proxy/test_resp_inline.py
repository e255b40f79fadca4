"""Inline request splitting: the same arguments Redis's sdssplitargs would produce."""

from __future__ import annotations

import pytest

from redisgate.proxy.wire.inline import split_inline_args


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"PING", [b"PING"]),
        (b"", []),
        (b"   \t ", []),
        (b"  SET   k \t v  ", [b"SET", b"k", b"v"]),
        (b'SET k "a b"', [b"SET", b"k", b"a b"]),
        (b'SET k ""', [b"SET", b"k", b""]),  # Redis 7 keeps empty quoted arguments
        (b"SET k ''", [b"SET", b"k", b""]),
        (rb'ECHO "\x41\x62\x7a"', [b"ECHO", b"Abz"]),
        (rb'ECHO "\xZZ"', [b"ECHO", b"xZZ"]),  # not hex: backslash escapes the x
        (rb'ECHO "a\nb\rc\td\be\af"', [b"ECHO", b"a\nb\rc\td\be\af"]),
        (rb'ECHO "\\ \" \q"', [b"ECHO", b'\\ " q']),
        (rb"ECHO 'it\'s'", [b"ECHO", b"it's"]),
        (rb"ECHO 'a\nb'", [b"ECHO", rb"a\nb"]),  # single quotes keep backslashes
        (rb"ECHO 'a\\b'", [b"ECHO", rb"a\\b"]),
        (b'ECHO a"b c"', [b"ECHO", b"ab c"]),  # a quote may open mid-argument
        (b"ECHO a'b c'", [b"ECHO", b"ab c"]),
        (b'ECHO "a" "b"', [b"ECHO", b"a", b"b"]),
        (b'ECHO "a"\tb', [b"ECHO", b"a", b"b"]),
        (b'ECHO "a"\x0bb', [b"ECHO", b"a", b"b"]),  # isspace() after a closing quote
        (b"ECHO a\x0bb", [b"ECHO", b"a\x0bb"]),  # but \v does not end a bare argument
        (b"\x0b\x0cPING", [b"PING"]),  # and is skipped between arguments
        (b"SET a\rb c", [b"SET", b"a", b"b", b"c"]),  # a lone CR ends a bare argument
        (b"ECHO a\x00b c", [b"ECHO", b"a"]),  # NUL ends the C string
        (b"\xff\xfe raw", [b"\xff\xfe", b"raw"]),
    ],
)
def test_split_like_sdssplitargs(line: bytes, args: list[bytes]) -> None:
    assert split_inline_args(line) == args


@pytest.mark.parametrize(
    "line",
    [
        b'ECHO "abc',
        b"ECHO 'abc",
        b'ECHO "a"b',  # a closing quote must be followed by a blank or the end
        b"ECHO 'a'b",
        b'ECHO "abc\\"',
        b'ECHO "ab\x00c"',  # the NUL ends the string inside the quotes
        b'"',
    ],
)
def test_unbalanced_quotes(line: bytes) -> None:
    assert split_inline_args(line) is None
