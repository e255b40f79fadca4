"""Micro-benchmark of the scope check: what one command costs through the session's policy.

Run: `python benchmarks/bench_scopes.py [--quick]`. Prints ns per command, best of several
rounds, for `Session.handle` (the whole per-command decision: command lookup, route, scope
check, fast path) and for `ScopeCheck.check` alone, under several scopes. Compare rows of one
run, never across machines, and never assert on them in tests.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redisgate.backends import Backend
from redisgate.proxy.clients.session import AuthRequest, Session
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.keys.principals import Instance, Principal
from redisgate.proxy.wire.encode import encode_command
from redisgate.proxy.wire.requests import Command, RequestFramer
from redisgate.scopes import PRESETS, compile_scope, prefix_scope

TABLE = CommandTable.from_snapshot()
TOKEN = b"rg_abcdefghijkl_" + b"s" * 43

SCOPES = {
    "full preset": PRESETS["full"],
    "+@read ~app:*": "+@read ~app:*",
    "prefix app:": prefix_scope("app:"),
    "%R~a:* %W~b:* (+@all)": "+@all %R~a:* %W~b:*",
    "8 patterns": "+@all " + " ".join(f"~p{i}:*" for i in range(7)) + " ~app:*",
}
COMMANDS = {
    "GET app:1": [b"GET", b"app:1"],
    "SET app:1 v": [b"SET", b"app:1", b"v"],
    "MGET 10 keys": [b"MGET", *[b"app:%d" % i for i in range(10)]],
    "EVALSHA 2 keys": [b"EVALSHA", b"a" * 40, b"2", b"app:1", b"app:2"],
    "XREAD STREAMS 2": [b"XREAD", b"STREAMS", b"app:s", b"app:t", b"0", b"0"],
}


def command(args: list[bytes]) -> Command:
    framer = RequestFramer()
    framer.feed(encode_command(args))
    parsed = framer.next_command()
    assert parsed is not None
    return parsed


def session_for(scope: str) -> Session:
    session = Session(TABLE, client_id=1)
    _, request, _ = session.handle(command([b"AUTH", TOKEN]))
    assert isinstance(request, AuthRequest)
    backend = Backend(host="127.0.0.1", port=6379)
    principal = Principal(
        "abcdefghijkl", "bench", Instance("i", "i", backend), compile_scope(scope)
    )
    session.auth_result(request, principal)
    return session


def best_ns(fn: Callable[[], object], number: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.disable()
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
        gc.enable()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    number, rounds = (20_000, 3) if args.quick else (200_000, 5)
    print(f"{'scope':<24} {'command':<18} {'handle ns':>10} {'check ns':>10}")
    for scope_name, scope in SCOPES.items():
        session = session_for(scope)
        check = session._check  # the bound ScopeCheck the session uses
        assert check is not None
        for command_name, argv in COMMANDS.items():
            parsed = command(argv)
            spec = TABLE.resolve(argv)
            assert spec is not None
            handle_ns = best_ns(partial(session.handle, parsed), number, rounds)
            check_ns = best_ns(partial(check.check, spec, argv), number, rounds)
            print(f"{scope_name:<24} {command_name:<18} {handle_ns:>10.0f} {check_ns:>10.0f}")


if __name__ == "__main__":
    main()
