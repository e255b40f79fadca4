"""Snapshot a running Redis's command metadata into `redisgate/data/redis-<x.y>.json`.

    python scripts/snapshot_commands.py --port 6379              # writes redis-7.0.json
    python scripts/snapshot_commands.py --unix-socket /tmp/redis.sock --output out.json

It sends `COMMAND INFO` and `COMMAND DOCS` over a bare redis-py connection in RESP2 and reads
the replies without redis-py's response callbacks (its `COMMAND` callback reshapes the reply
into dicts), so the parser sees exactly what the gateway will see from a live backend. The
normalisation is `redisgate.proxy.commands.table.normalize`, the same code the gateway runs.
"""

# redis-py leaves its Connection classes untyped.
# mypy: allow-untyped-calls, disable-error-code="abstract"

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redisgate.proxy.commands.table import normalize, snapshot_document  # noqa: E402


def connect(args: argparse.Namespace) -> redis.Connection | redis.UnixDomainSocketConnection:
    """A raw RESP2 connection: `read_response` returns plain lists, bytes and ints."""
    common: dict[str, Any] = {"protocol": 2, "password": args.password, "socket_timeout": 10}
    if args.unix_socket:
        return redis.UnixDomainSocketConnection(path=args.unix_socket, **common)
    return redis.Connection(host=args.host, port=args.port, **common)


def call(conn: redis.Connection | redis.UnixDomainSocketConnection, *argv: str) -> Any:
    conn.send_command(*argv)
    return conn.read_response()


_SCALAR = r'(?:"[^"\\]*"|-?\d+)'
_SCALAR_ARRAY = re.compile(rf"\[\s*({_SCALAR}(?:,\s*{_SCALAR})*)\s*\]")


def dumps(document: Any) -> str:
    """Indented JSON with arrays of scalars on one line: readable, and diffs stay small."""
    text = json.dumps(document, indent=1, ensure_ascii=False)
    return _SCALAR_ARRAY.sub(lambda m: "[" + re.sub(r",\s+", ", ", m[1]) + "]", text) + "\n"


def redis_version(info: bytes) -> str:
    for line in info.decode().splitlines():
        if line.startswith("redis_version:"):
            return line.partition(":")[2].strip()
    raise SystemExit("INFO server has no redis_version")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--unix-socket", help="connect through this socket instead of TCP")
    parser.add_argument("--password")
    parser.add_argument("--output", type=Path, help="default: redisgate/data/redis-X.Y.json")
    args = parser.parse_args(argv)

    conn = connect(args)
    try:
        conn.connect()
        version = redis_version(call(conn, "INFO", "server"))
        info = call(conn, "COMMAND", "INFO")
        docs = call(conn, "COMMAND", "DOCS")
    finally:
        conn.disconnect()

    commands = normalize(info, docs)
    major_minor = ".".join(version.split(".")[:2])
    output = args.output or ROOT / "redisgate" / "data" / f"redis-{major_minor}.json"
    document = snapshot_document(commands, version, "scripts/snapshot_commands.py")
    output.write_text(dumps(document), encoding="utf-8")
    subs = sum(len(c.get("subcommands", {})) for c in commands.values())
    print(f"{output}: {len(commands)} commands, {subs} subcommands (Redis {version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
