"""Small helpers shared by the benchmark scripts: RESP framing, a blocking client, /proc reads.

Kept free of the `redisgate` package on purpose: the load generators must not share code (and
therefore bugs or speed-ups) with the gateway they measure.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Arg = bytes | str | int

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def encode(*args: Arg) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def reply_end(buf: bytes | bytearray, pos: int = 0) -> int:
    """Index just past the one complete reply starting at `pos`, or -1 if more bytes are needed.

    Handles RESP2 and RESP3 types; aggregates are walked iteratively (no recursion), since a
    large LRANGE or HGETALL reply is only counted, never decoded.
    """
    size = len(buf)
    need = 1
    while need:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return -1
        kind = buf[pos]
        if kind in b"$=!":  # bulk string, verbatim string, bulk error
            length = int(buf[pos + 1 : eol])
            pos = eol + 2
            if length >= 0:
                pos += length + 2
                if pos > size:
                    return -1
        elif kind in b"*~>%|":  # array, set, push, map, attribute
            count = int(buf[pos + 1 : eol])
            pos = eol + 2
            if count > 0:
                need += count * 2 if kind in b"%|" else count
                if kind == ord("|"):
                    need += 1  # an attribute precedes the reply it annotates
        else:  # + - : _ , # ( : one line
            pos = eol + 2
        need -= 1
    return pos


class BlockingClient:
    """A plain blocking RESP connection, for seeding data and probes (not for load)."""

    def __init__(self, host: str, port: int, password: str | None, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        if password:
            reply = self.call("AUTH", password)
            if not reply.startswith(b"+OK"):
                raise RuntimeError(f"AUTH to port {port} failed: {reply[:200]!r}")

    def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[bytes]:
        """Send all commands in one write and return their raw replies, in order."""
        self.sock.sendall(b"".join(encode(*c) for c in commands))
        replies: list[bytes] = []
        while len(replies) < len(commands):
            end = reply_end(self.buf)
            if end < 0:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("connection closed while waiting for a reply")
                self.buf += chunk
                continue
            replies.append(bytes(self.buf[:end]))
            del self.buf[:end]
        return replies

    def call(self, *args: Arg) -> bytes:
        return self.pipeline([args])[0]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children so far (utime + stime of
    /proc/PID/stat): `redisgate proxy --workers N` serves from child processes."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = fh.read().rsplit(b")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as fh:
            children = [int(child) for child in fh.read().split()]
    except OSError:
        children = []
    for child in children:
        with contextlib.suppress(OSError):  # exited meanwhile
            total += cpu_seconds(child)
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_files_limit(pid: int) -> int:
    """The soft RLIMIT_NOFILE of another process (from /proc/PID/limits)."""
    with open(f"/proc/{pid}/limits") as fh:
        for line in fh:
            if line.startswith("Max open files"):
                value = line.split()[3]
                return resource.RLIM_INFINITY if value == "unlimited" else int(value)
    raise RuntimeError(f"no open-files limit for pid {pid}")


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE toward `wanted` (children inherit it).

    Goes up to the hard limit, and past it when we are root; returns the soft limit in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            except (ValueError, OSError):  # not root: the hard limit is the ceiling
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        else:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of already sorted values; nan when empty."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values), max(1, math.ceil(q / 100 * len(sorted_values))))
    return float(sorted_values[rank - 1])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def write_report(out: Path, name: str, report: dict[str, Any], table: str) -> None:
    """Write `name-<stamp>.json` and `.md` under `out`, print the table and where they went."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{name}-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}-{stamp}.md").write_text(table)
    print(table)
    print(f"written: {out}/{name}-{stamp}.{{json,md}}", file=sys.stderr)
