"""The fuzz targets, briefly, in every `make test`: a fixed seed and a fixed number of inputs
(the same inputs every run, a few seconds in all). `make fuzz` runs them for a million."""

from __future__ import annotations

import pytest

from tests.fuzz import reference
from tests.fuzz.driver import fuzz
from tests.fuzz.seeds import seeds
from tests.fuzz.targets import TARGETS

SHORT_RUN = {"requests": 1500, "inline": 3000, "replies": 2000}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_short_fuzz_run(target: str) -> None:
    fuzz(target, TARGETS[target], seeds(target), SHORT_RUN[target], seed=20260)


@pytest.mark.parametrize(
    ("line", "args"),
    [  # the reference against what redis-server 7 answers (tests/unit/proxy/test_resp_inline.py)
        (b'SET k "a b"', [b"SET", b"k", b"a b"]),
        (b'SET k ""', [b"SET", b"k", b""]),
        (rb'ECHO "\x41\x62\x7a"', [b"ECHO", b"Abz"]),
        (rb'ECHO "\xZZ"', [b"ECHO", b"xZZ"]),
        (rb"ECHO 'it\'s'", [b"ECHO", b"it's"]),
        (b'ECHO a"b c"', [b"ECHO", b"ab c"]),
        (b'ECHO "a"\x0bb', [b"ECHO", b"a", b"b"]),
        (b"ECHO a\x0bb", [b"ECHO", b"a\x0bb"]),
        (b"ECHO a\x00b c", [b"ECHO", b"a"]),
        (b'ECHO "abc', None),
        (b'ECHO "a"b', None),
        (b'ECHO "ab\x00c"', None),
    ],
)
def test_reference_splits_like_redis(line: bytes, args: list[bytes] | None) -> None:
    assert reference.sdssplitargs(line) == args
