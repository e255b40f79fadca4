"""A small mutational fuzzer over the targets: the engine when atheris is not installed, and
the bounded run inside `make test` (fixed seed, fixed count: the same inputs every time).

No coverage feedback: half the inputs mutate a corpus member (byte flips, RESP tokens put in,
ranges deleted, duplicated or spliced from another member), a few are fresh random bytes, and
the generated modes (`generate.py`) bring the structure coverage feedback would have found.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

TOKENS = [
    b"\r\n", b"\r", b"\n", b"*", b"$", b"-1", b"?", b"0", b"1", b"4096", b"4095", b"1024",
    b"|", b"%", b"~", b">", b";", b".", b"=", b"!", b"_", b",", b"#", b"(", b":", b"+", b"-",
    b'"', b"'", b"\\", b"\\x", b" ", b"\t", b"\x00", b"\x0b", b"$?\r\n", b"*?\r\n", b";0\r\n",
    b"9223372036854775808", b"2147483648", b"00",
]  # fmt: skip


class FuzzFailure(AssertionError):
    """A target failed on `data` (the cause is chained)."""

    def __init__(self, target: str, data: bytes) -> None:
        super().__init__(f"fuzz target {target!r} failed on input {data!r:.2000}")
        self.data = data


@dataclass
class Report:
    target: str
    inputs: int
    seconds: float


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(1 + rng.randrange(4)):
        op = rng.randrange(6)
        at = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at:at] = rng.choice(TOKENS)
        elif op == 2:
            del buf[at : at + rng.randrange(1, 9)]
        elif op == 3:
            end = min(len(buf), at + rng.randrange(1, 33))
            buf[end:end] = buf[at:end]
        elif op == 4:
            other = rng.choice(corpus)
            start = rng.randrange(len(other) + 1)
            buf[at:] = other[start : start + rng.randrange(1, 65)] + buf[at:]
        else:
            buf[at : at + 1] = bytes([rng.randrange(256)])
    return bytes(buf)


def fuzz(
    name: str, target: Callable[[bytes], None], seeds: list[bytes], count: int, seed: int
) -> Report:
    """Run `target` on `count` inputs; raise FuzzFailure on the first that fails."""
    rng = random.Random(seed)
    corpus = list(seeds)
    started = time.perf_counter()
    for i in range(count):
        if i < len(seeds):
            data = seeds[i]
        elif rng.randrange(16) == 0:
            data = rng.randbytes(rng.randrange(1, 300))
        else:
            data = mutate(rng, rng.choice(corpus), corpus)
        try:
            target(data)
        except Exception as exc:
            raise FuzzFailure(name, data) from exc
        if rng.randrange(64) == 0 and len(corpus) < 4096:
            corpus.append(data)
    return Report(name, count, time.perf_counter() - started)
