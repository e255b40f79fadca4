"""The floor's framing (benchmarks/floor.py): where a reply ends and how many whole commands a
read holds, including the partial cases that make it wait for more bytes. No event loop."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def floor(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    yield importlib.import_module("floor")
    sys.modules.pop("floor", None)


LRANGE = b"*3\r\n$3\r\nxxx\r\n$-1\r\n*2\r\n:1\r\n+OK\r\n"
REPLIES = [b"+OK\r\n", b"-ERR no\r\n", b":42\r\n", b"$3\r\nxxx\r\n", b"$-1\r\n", b"*-1\r\n"]


@pytest.mark.parametrize("reply", [*REPLIES, LRANGE, b"%1\r\n+a\r\n:1\r\n", b"*0\r\n"])
def test_reply_end_finds_the_end_of_a_whole_reply_and_waits_for_a_partial_one(
    floor: ModuleType, reply: bytes
) -> None:
    assert floor.reply_end(reply + b"+NEXT\r\n", 0) == len(reply)
    for cut in range(1, len(reply)):
        assert floor.reply_end(reply[:cut], 0) == -1, cut


def test_reply_end_starts_at_an_offset(floor: ModuleType) -> None:
    buf = b"".join(REPLIES)
    pos, ends = 0, []
    while pos < len(buf):
        pos = floor.reply_end(buf, pos)
        ends.append(pos)
    assert len(ends) == len(REPLIES) and ends[-1] == len(buf)


def test_whole_commands_counts_complete_commands_and_stops_before_a_partial_one(
    floor: ModuleType,
) -> None:
    get = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
    set_ = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nxxx\r\n"
    assert floor.whole_commands(get + set_) == (2, len(get + set_))
    for cut in range(1, len(set_)):
        assert floor.whole_commands(get + set_[:cut]) == (1, len(get)), cut
    assert floor.whole_commands(b"") == (0, 0)


def wire(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


@pytest.mark.parametrize(
    "read",
    [
        wire(b"SET", b"a\r\nb", b"c") + wire(b"GET", b"k"),  # a CRLF inside an argument
        wire(b"SET", b"k", b"x" * 5000) + wire(b"GET", b"k"),  # too long for the header table
        wire(b"GET", b"k") * 3 + wire(b"GET", b"k")[:7],
        wire(b"GET", b"k") * 2 + wire(b"SET", b"a\r\nb", b"c")[:12],
    ],
)
def test_whole_commands_splits_as_the_exact_scan_does(floor: ModuleType, read: bytes) -> None:
    assert floor.whole_commands(read) == floor.scan_commands(read)
