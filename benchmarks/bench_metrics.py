"""Micro-benchmark of what metrics add per command on the gateway's hot path.

Run: `python benchmarks/bench_metrics.py [--quick]`. Prints ns per command, best of several
rounds, for each piece the metrics added (see docs/metrics.md, "Cost"), for a client that
sends one command at a time (every piece runs once per command) and for a pipelined run of
50 commands sent as one slot (per-slot pieces are shared by the run). Compare rows of one
run, never across machines, and never assert on them in tests.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redisgate import metrics

REPLY = b"$5\r\nvalue\r\n"


def best_ns(fn: Callable[[], None], per_call: int, loops: int, rounds: int) -> float:
    """Best round's ns per command (`per_call` commands per call of `fn`)."""
    best = float("inf")
    for _ in range(rounds):
        gc.disable()
        start = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter_ns() - start
        gc.enable()
        best = min(best, elapsed / (loops * per_call))
    return best


class _Slot:
    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0.0


def pieces(run: int) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """Each added piece for one slot of `run` commands, with a baseline of the same shape
    (the loop or call that exists anyway); the difference is what metrics add."""
    src = [(b"GET", b"k")] * run
    parts = [REPLY] * (run - 1)
    fifo = deque(_Slot() for _ in range(4))
    clock = time.monotonic
    counts = {"in": 0}

    class Client:
        run_names: list[bytes] = []

    client = Client()

    def names() -> None:  # ClientConnection._process: the run's names, one append each
        client.run_names = []
        for args in src:
            client.run_names.append(args[0])

    def names_base() -> None:
        client.run_names = []
        for _args in src:
            pass

    def count() -> None:  # PendingRequest.complete
        metrics.count_replies(client.run_names, parts, REPLY)

    def latency() -> None:  # UpstreamConnection.data_received: once per reply batch, at most
        metrics.observe_latency(1.0, 1.00002, 1.0002)  # once per slot (a client alone)

    def stamp() -> None:  # UpstreamConnection._flush: one clock read per write
        now = clock()
        fifo[-1].sent = now

    def batch() -> None:  # one clock read per reply batch, bytes in and out per read/write
        clock()
        counts["in"] += 30
        metrics.CLIENT_BYTES["out"] += 11

    def nothing() -> None:
        pass

    return {
        "names": (names, names_base),
        "count": (count, nothing),
        "latency": (latency, nothing),
        "stamp": (stamp, nothing),
        "batch": (batch, nothing),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer loops (a smoke test)")
    args = parser.parse_args()
    loops, rounds = (2_000, 3) if args.quick else (200_000, 7)
    for run in (1, 50):
        total = 0.0
        print(f"run of {run} command(s) per slot, ns per command (piece - its baseline):")
        for label, (fn, base) in pieces(run).items():
            n = max(1, loops // run)
            ns = best_ns(fn, run, n, rounds) - best_ns(base, run, n, rounds)
            total += ns
            print(f"  {label:<8} {ns:7.1f}")
        print(f"  {'total':<8} {total:7.1f}")


if __name__ == "__main__":
    main()
