"""The floor: the smallest uvloop forwarder that serves redis-benchmark, for `make bench`.

What Python itself can do on this machine, with no policy at all: one shared connection to
Redis, a FIFO of (client, replies owed), client bytes forwarded as read (only whole commands,
so two clients' bytes never interleave), writes to Redis coalesced once per loop turn, and
each client's replies in a read sent as one slice of it. Reply and request boundaries are
found with `bytes.find` and nothing is parsed into objects. No AUTH from clients (the floor
authenticates its own connection), no scopes, limits, usage, metrics or timeouts.

The gateway's distance to this column (`compare.py`: `x_floor`, CPU µs per command) is the
cost of its design, since both pay the same interpreter, event loop and system calls.

    python benchmarks/floor.py --port 7000 --backend 127.0.0.1:6379 [--password P]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import deque

import uvloop

CRLF = b"\r\n"
_DOLLAR, _STAR, _PERCENT, _TILDE, _GT = b"$*%~>"
_PLUS, _MINUS, _COLON = b"+-:"
_HEADER = {n: b"$%d" % n for n in range(4096)}.get  # `$<len>` of an argument, if short


def reply_end(buf: bytes, pos: int) -> int:
    """Where the RESP2/3 reply starting at `pos` ends, or -1 if it is not all in `buf`."""
    nl = buf.find(CRLF, pos)
    if nl < 0:
        return -1
    kind = buf[pos]
    if kind == _DOLLAR:
        size = int(buf[pos + 1 : nl])
        if size < 0:
            return nl + 2
        end = nl + size + 4
        return end if end <= len(buf) else -1
    if kind in (_STAR, _PERCENT, _TILDE, _GT):
        count = int(buf[pos + 1 : nl])
        if kind == _PERCENT:
            count *= 2
        pos = nl + 2
        for _ in range(count):
            pos = reply_end(buf, pos)
            if pos < 0:
                return -1
        return pos
    return nl + 2  # a line: + - : _ , # (and a RESP3 blob is not sent to this floor's clients)


def whole_commands(buf: bytes) -> tuple[int, int]:
    """How many complete multibulk commands `buf` starts with, and where they end.

    As the gateway frames a read: one split into lines in C, then each command's `$<len>`
    headers checked against its arguments (which proves no argument held a CRLF); a read
    that is not so plain goes to the exact scan."""
    lines = buf.split(CRLF)
    last = len(lines) - 1  # the lines before it ended in CRLF
    count = i = 0
    while i < last:
        head = lines[i]
        if head[:1] != b"*":
            return scan_commands(buf)
        j = i + 2 * int(head[1:]) + 1  # the line after the command's last
        if j > last:
            break
        k = i + 1
        while k < j and _HEADER(len(lines[k + 1])) == lines[k]:
            k += 2
        if k < j:  # an argument with a CRLF inside, or a long one
            return scan_commands(buf)
        i = j
        count += 1
    if i == last and not lines[last]:
        return count, len(buf)
    return count, sum(map(len, lines[:i])) + 2 * i


def scan_commands(buf: bytes) -> tuple[int, int]:
    """`whole_commands` for any multibulk input, one header at a time."""
    count = pos = 0
    size = len(buf)
    while pos < size:
        nl = buf.find(CRLF, pos)
        if nl < 0:
            break
        end = nl + 2
        for _ in range(int(buf[pos + 1 : nl])):
            nl = buf.find(CRLF, end)
            if nl < 0:
                return count, pos
            end = nl + int(buf[end + 1 : nl]) + 4
            if end > size:
                return count, pos
        pos = end
        count += 1
    return count, pos


class Upstream(asyncio.Protocol):
    """The one connection to Redis: replies go to the clients at the FIFO's head, in order."""

    def __init__(self, password: str | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.fifo: deque[list] = deque()  # [client or None, replies still owed]
        self.out: list[bytes] = []
        self.flushing = False
        self.buf = b""
        self.lost = self.loop.create_future()
        if password:
            self.send(
                None, 1, b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password.encode())
            )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.flush()

    def send(self, client: Client | None, count: int, raw: bytes) -> None:
        self.fifo.append([client, count])
        self.out.append(raw)
        if not self.flushing:
            self.flushing = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flushing = False
        if self.transport is not None and self.out:
            self.transport.write(b"".join(self.out))
            self.out.clear()

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        fifo, pos, size = self.fifo, 0, len(buf)
        while pos < size and fifo:
            head = fifo[0]
            start = pos
            owed = head[1]
            while owed:  # the usual replies inline; aggregates by `reply_end`
                kind = buf[pos]
                if kind == _DOLLAR:
                    nl = buf.find(CRLF, pos)
                    if nl < 0:
                        break
                    length = int(buf[pos + 1 : nl])
                    end = nl + 2 if length < 0 else nl + length + 4
                    if end > size:
                        break
                elif kind in (_PLUS, _COLON, _MINUS):
                    end = buf.find(CRLF, pos) + 2
                    if end < 2:
                        break
                else:
                    end = reply_end(buf, pos)
                    if end < 0:
                        break
                pos = end
                owed -= 1
                if pos >= size:
                    break
            if pos > start:
                client = head[0]
                if client is not None and not client.closed:
                    client.transport.write(buf[start:pos])
            if owed:
                head[1] = owed
                break
            fifo.popleft()
        self.buf = buf[pos:] if pos < size else b""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class Client(asyncio.Protocol):
    """One client: whole commands go to Redis as read; a partial one waits for the rest."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.transport: asyncio.Transport
        self.closed = False
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        count, end = whole_commands(buf)
        if count:
            self.upstream.send(self, count, buf if end == len(buf) else buf[:end])
        self.buf = buf[end:] if end < len(buf) else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True  # replies still owed are read and dropped


async def serve(port: int, host: str, backend_port: int, password: str | None) -> None:
    loop = asyncio.get_running_loop()
    upstream = Upstream(password)
    await loop.create_connection(lambda: upstream, host, backend_port)
    server = await loop.create_server(lambda: Client(upstream), "127.0.0.1", port, backlog=4096)
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set_result, None)
    await asyncio.wait([stop, upstream.lost], return_when=asyncio.FIRST_COMPLETED)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", required=True, metavar="HOST:PORT")
    parser.add_argument("--password", help="Redis's password (the floor's own AUTH)")
    args = parser.parse_args()
    host, _, backend_port = args.backend.rpartition(":")
    uvloop.run(serve(args.port, host, int(backend_port), args.password))


if __name__ == "__main__":
    main()
