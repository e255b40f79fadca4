"""Micro-benchmark of Redis glob matching: ns per match, compiled form vs the reference port.

Run: `python benchmarks/bench_glob.py [--quick]`. Prints the best of several timeit rounds for
a few pattern shapes, on a matching and a non-matching key. Numbers depend on the machine:
compare rows of one run, never across machines, and never assert on them in tests.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redisgate.glob import compile_glob, glob_match

SHAPES: list[tuple[bytes, bytes, bytes]] = [  # pattern, matching key, non-matching key
    (b"*", b"app:session:42", b""),
    (b"app:*", b"app:session:42", b"web:session:42"),
    (b"user:?:name", b"user:7:name", b"user:77:name"),
    (b"[a-c]*:x", b"b:session:42:x", b"d:session:42:x"),
    (b"*:session:*", b"app:session:42", b"app:sessions42"),
    (b"app:*:x", b"app:session:42:x", b"app:session:42:y"),
]


def ns_per_call(fn: object, arg: bytes, number: int, repeat: int) -> float:
    timer = timeit.Timer("fn(arg)", globals={"fn": fn, "arg": arg})
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    number, repeat = (20_000, 3) if args.quick else (200_000, 5)

    print(f"{'pattern':<16} {'kind':<14} {'compiled hit':>13} {'miss':>8} {'reference hit':>14}")
    for pattern, hit, miss in SHAPES:
        glob = compile_glob(pattern)
        assert glob.match(hit) and not glob.match(miss), pattern
        compiled_hit = ns_per_call(glob.match, hit, number, repeat)
        compiled_miss = ns_per_call(glob.match, miss, number, repeat)

        def reference(subject: bytes, pattern: bytes = pattern) -> bool:
            return glob_match(pattern, subject)

        reference_hit = ns_per_call(reference, hit, number // 10, repeat)
        print(
            f"{pattern.decode():<16} {glob.kind:<14} {compiled_hit:>10.0f} ns"
            f" {compiled_miss:>5.0f} ns {reference_hit:>11.0f} ns"
        )


if __name__ == "__main__":
    main()
