"""Micro-benchmark of RESP framing: which request framer and reply framer the gateway uses.

Run: `python benchmarks/bench_resp.py [--quick]`. Prints ns per command (requests) or per
frame (replies), best of several rounds. Numbers depend on the machine: compare rows of one
run, never across machines, and never assert on them in tests.

Request framers compared (all must give the same commands and raw bytes):

- `resp.RequestFramer`: the module as shipped (split fast path + per-header slow path);
- `per-arg scanner`: the same class with the fast path off (a Redis-like header scanner);
- `hiredis+check`: hiredis parses, then the span is proven by re-encoding the arguments and
  comparing with the buffer (needed because hiredis accepts `+x`, `:1`, attributes...);
- `hybrid`: Python scans the spans header by header, hiredis parses each complete span;
- `hiredis (unsafe)`: hiredis alone, no span: a lower bound, not a correct framer.

Reply framers: `resp.ReplyFramer` against hiredis parsing (not byte-faithful, a lower bound)
and hiredis parsing plus re-encoding (the design the byte-faithful framer replaces).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import hiredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redisgate.proxy.wire.encode import encode_command
from redisgate.proxy.wire.replies import ReplyFramer, parse_int
from redisgate.proxy.wire.requests import Command, RequestFramer

_bulk_item = b"$%d\r\n%s\r\n".__mod__


class PerArgScanner(RequestFramer):
    """The shipped framer with its split fast path switched off."""

    _FAST_PATH = False


class HiredisChecked:
    """hiredis parses; re-encoding the arguments proves the span (the check hiredis needs)."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)
        self._buf = self._buf + data if self._buf else data

    def drain(self) -> list[Command]:
        out: list[Command] = []
        buf, pos, gets = self._buf, 0, self._reader.gets
        while (args := gets()) is not False:
            raw = b"*%d\r\n" % len(args) + b"".join(
                map(_bulk_item, zip(map(len, args), args, strict=True))
            )
            end = pos + len(raw)
            if buf[pos:end] != raw:
                raise ValueError("not a canonical multibulk command")
            out.append(Command(args, raw))
            pos = end
        self._buf = buf[pos:]
        return out


class Hybrid:
    """Python finds each command's span from its headers; hiredis parses the complete span."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._buf = self._buf + data if self._buf else data

    def drain(self) -> list[Command]:
        out: list[Command] = []
        buf, pos, n, find = self._buf, 0, len(self._buf), self._buf.find
        reader = self._reader
        while pos < n:
            cr = find(b"\r", pos)
            argc = parse_int(buf[pos + 1 : cr])
            if cr < 0 or argc is None:
                break
            p = cr + 2
            for _ in range(argc):
                cr = find(b"\r", p)
                length = parse_int(buf[p + 1 : cr]) if cr > 0 and buf[p] == 36 else None
                if length is None:
                    p = n + 1
                    break
                p = cr + length + 4
            if p > n:
                break
            reader.feed(buf, pos, p - pos)
            out.append(Command(reader.gets(), buf[pos:p]))
            pos = p
        self._buf = buf[pos:]
        return out


class HiredisUnsafe:
    """hiredis alone: fast, but it cannot give spans. Shown as a lower bound only."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)

    def drain(self) -> list[Any]:
        out, gets = [], self._reader.gets
        while (args := gets()) is not False:
            out.append(args)
        return out


REQUEST_FRAMERS: dict[str, Callable[[], Any]] = {
    "resp.RequestFramer": RequestFramer,
    "per-arg scanner": PerArgScanner,
    "hiredis+check": HiredisChecked,
    "hybrid": Hybrid,
    "hiredis (unsafe)": HiredisUnsafe,
}


def _command(i: int) -> bytes:
    if i % 2:
        return encode_command([b"SET", b"key:%03d" % (i % 1000), b"value"])
    return encode_command([b"GET", b"key:%03d" % (i % 1000)])


def _interleaved(runs: Mapping[str, Callable[[], int]], rounds: int) -> dict[str, float]:
    """Best ns per item of each run, timing them round-robin so that a noisy moment on the
    machine does not fall on one candidate only. Each run returns how many items it did."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            t0 = time.perf_counter_ns()
            items = run()
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / items)
    return best


def _drain_all(framers: list[Any], chunks: list[bytes], feeds: int, per_chunk: int) -> int:
    for _ in range(feeds):
        for framer, chunk in zip(framers, chunks, strict=True):
            framer.feed(chunk)
            framer.drain()
    return feeds * len(chunks) * per_chunk


def _next_all(framers: list[Any], chunks: list[bytes], feeds: int, per_chunk: int) -> int:
    for _ in range(feeds):
        for framer, chunk in zip(framers, chunks, strict=True):
            framer.feed(chunk)
            while framer.next_command() is not None:
                pass
    return feeds * len(chunks) * per_chunk


def bench_requests(quick: bool) -> list[tuple[str, str, float]]:
    rounds = 3 if quick else 9
    loads = {
        "50 clients, 1 cmd/feed": (50, 1, 200 if quick else 1000),
        "16-deep pipeline/feed": (1, 16, 300 if quick else 2000),
        "1000-deep pipeline/feed": (1, 1000, 4 if quick else 30),
    }
    rows = []
    for load, (clients, depth, feeds) in loads.items():
        chunks = [b"".join(_command(c * depth + k) for k in range(depth)) for c in range(clients)]
        want = []
        for chunk in chunks:
            reference = RequestFramer()
            reference.feed(chunk)
            want.append([tuple(command) for command in reference.drain()])
        runs = {}
        for name, factory in REQUEST_FRAMERS.items():
            framers = [factory() for _ in range(clients)]
            for framer, chunk, expected in zip(framers, chunks, want, strict=True):
                framer.feed(chunk)
                got = framer.drain()
                if name != "hiredis (unsafe)":
                    assert [tuple(command) for command in got] == expected, name
            runs[name] = partial(_drain_all, framers, chunks, feeds, depth)
        framers = [RequestFramer() for _ in range(clients)]
        runs["resp.RequestFramer next_command()"] = partial(
            _next_all, framers, chunks, feeds, depth
        )
        rows += [(load, name, ns) for name, ns in _interleaved(runs, rounds).items()]
    return rows


def _reencode(value: Any) -> bytes:
    """Re-encode a hiredis value (what a non-faithful gateway would do); loses `+` vs `$`."""
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(map(_reencode, value))
    if value is None:
        return b"$-1\r\n"
    return b"-%s\r\n" % str(value).encode()


def _frame_all(framer: ReplyFramer, pieces: list[bytes], feeds: int, per_feed: int) -> int:
    feed = framer.feed
    for _ in range(feeds):
        for piece in pieces:
            feed(piece)
    return feeds * per_feed


def _hiredis_all(
    reader: Any, pieces: list[bytes], feeds: int, per_feed: int, reencode: bool
) -> int:
    for _ in range(feeds):
        for piece in pieces:
            reader.feed(piece)
            while (value := reader.gets()) is not False:
                if reencode:
                    _reencode(value)
    return feeds * per_feed


def bench_replies(quick: bool) -> list[tuple[str, str, float]]:
    rounds = 3 if quick else 9
    array = b"*100\r\n" + b"".join(b"$8\r\nitem:%03d\r\n" % i for i in range(100))
    big = b"$102400\r\n" + b"x" * 102400 + b"\r\n"
    loads = {  # name: (frame(s) per feed, frames in it, feeds, split in 64 KB reads)
        "+OK": (b"+OK\r\n", 1, 20000, False),
        "bulk of 3 bytes": (b"$3\r\nfoo\r\n", 1, 20000, False),
        "100-element array": (array, 1, 1000, False),
        "100 KB bulk": (big, 1, 1000, False),
        "16 x bulk of 3 per feed": (b"$3\r\nfoo\r\n" * 16, 16, 2000, False),
        "100 KB bulk in 64 KB reads": (big, 1, 500, True),
    }
    rows = []
    for load, (data, per_feed, feeds, split) in loads.items():
        feeds = max(feeds // 10, 2) if quick else feeds
        pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)] if split else [data]
        framer = ReplyFramer()
        assert b"".join(b"".join(framer.feed(piece)) for piece in pieces) == data
        runs = {"resp.ReplyFramer": partial(_frame_all, framer, pieces, feeds, per_feed)}
        for name, reencode in (
            ("hiredis parse (not faithful)", False),
            ("hiredis + re-encode", True),
        ):
            runs[name] = partial(_hiredis_all, hiredis.Reader(), pieces, feeds, per_feed, reencode)
        rows += [(load, name, ns) for name, ns in _interleaved(runs, rounds).items()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke test")
    parser.add_argument("--only", choices=["requests", "replies"], help="run one half only")
    options = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, hiredis {hiredis.__version__}")
    parts = {
        "requests": ("Request framing (ns per command)", bench_requests),
        "replies": ("Reply framing (ns per frame)", bench_replies),
    }
    for key, (title, bench) in parts.items():
        if options.only in (None, key):
            print(f"\n{title}")
            for load, name, ns in bench(options.quick):
                print(f"  {load:28s} {name:36s} {ns:10.0f}")


if __name__ == "__main__":
    main()
