"""Our key extraction against the live redis-server's own `COMMAND GETKEYSANDFLAGS`.

`tests/unit/proxy/test_keyspecs_golden.py` compares against a recorded corpus. Here the same
corpus, a corpus freshly generated from this server's `COMMAND DOCS` (with the generator of
`scripts/golden_keys.py`), and a few extra adversarial cases are sent to the real server, and
`keyspecs.keys` must agree with its answers, using a command table built from that server's
`COMMAND INFO`/`COMMAND DOCS` (as the gateway does at startup) and the packaged snapshot.
"""

# redis-py leaves its Connection classes untyped.
# mypy: allow-untyped-calls

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from redis.exceptions import ResponseError

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.commands.keyspecs import keys
from redisgate.proxy.commands.table import CommandTable, KeyAccess
from tests.unit.proxy.test_keyspecs_golden import KNOWN_DIFFERENCES

ROOT = Path(__file__).resolve().parents[2]
RECORDED: list[dict[str, Any]] = json.loads(
    (ROOT / "tests" / "unit" / "proxy" / "data" / "golden_keys.json").read_text()
)["cases"]

# What Redis answers when it finds no key: we must then find none either.
NO_KEY_ERRORS = (
    "Invalid arguments specified for command",
    "The command has no key arguments",
)

# Beyond the recorded corpus: odd spellings, keys named like keywords, counts at the edges.
EXTRA: list[list[str]] = [
    ["set", "get", "v", "GET"],
    ["set", "key:x1", "get"],
    ["set", "key:x2", "v", "KEEPTTL", "GeT"],
    ["sort", "store", "STORE", "key:x3"],
    ["sort", "key:x4", "BY", "key:*", "GET", "#", "STORE", "key:x5"],
    ["sort", "key:x6", "STORE"],
    ["sort_ro", "key:x7", "BY", "x_*", "STORE", "key:x8"],
    ["eval", "return 1", "2", "key:x9", "key:x10", "argv1"],
    ["eval", "return 1", "-1", "key:x11"],
    ["evalsha", "0" * 40, "1", "key:x12"],
    ["fcall_ro", "f", "2", "key:x13", "key:x14"],
    ["eval_ro", "return 1", "1", "key:x15"],
    ["xread", "STREAMS", "key:x16", "key:x17", "key:x18", "0", "0", "0"],
    ["xread", "streams", "STREAMS", "key:x19", "0", "0"],
    ["xreadgroup", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "key:x20", ">"],
    ["zunionstore", "key:x21", "2", "key:x22", "key:x23", "AGGREGATE", "MAX"],
    ["zinterstore", "key:x24", "3", "key:x25"],
    ["zdiffstore", "key:x26", "1", "key:x27"],
    ["zunion", "2", "key:x28", "key:x29", "WITHSCORES"],
    ["lmpop", "2", "key:x30", "key:x31", "RIGHT", "COUNT", "3"],
    ["zmpop", "1", "key:x32", "MIN"],
    ["sintercard", "2", "key:x33", "key:x34", "LIMIT", "1"],
    ["georadius", "key:x35", "1", "2", "3", "m", "STOREDIST", "key:x36", "STORE", "key:x37"],
    ["georadius_ro", "key:x38", "1", "2", "3", "m"],
    ["geosearchstore", "key:x39", "key:x40", "FROMMEMBER", "m", "BYRADIUS", "1", "m"],
    ["copy", "key:x41", "key:x42", "REPLACE"],
    ["lmove", "key:x43", "key:x44", "LEFT", "RIGHT"],
    ["rename", "key:x45", "key:x46"],
    ["mset", "key:x47", "v", "key:x48"],
    ["msetnx", "key:x49", "v"],
    ["del", "key:x50", "key:x51", "key:x52"],
    ["object", "freq", "key:x53"],
    ["memory", "USAGE", "key:x54"],
    ["bitfield", "key:x55", "GET", "u8", "0", "GET", "i4", "1"],
    ["bitfield", "key:x56", "OVERFLOW", "SAT"],
    ["bitfield", "key:x57", "INCRBY", "u8"],
    ["bitop", "AND", "key:x58", "key:x59", "key:x60"],
    ["pfmerge", "key:x61", "key:x62"],
    ["migrate", "h", "1", "", "0", "5", "REPLACE", "KEYS", "key:x63", "key:x64"],
    ["migrate", "h", "1", "key:x65", "0", "5", "AUTH", "p", "KEYS", "key:x66"],
    ["blmpop", "0", "1", "key:x67", "LEFT"],
    ["bzmpop", "0", "2", "key:x68", "key:x69", "MAX"],
    ["xautoclaim", "key:x70", "g", "c", "0", "0"],
    ["xgroup", "CREATE", "key:x71", "g", "$"],
    ["xinfo", "STREAM", "key:x72", "FULL"],
    ["lcs", "key:x73", "key:x74", "IDX", "MINMATCHLEN", "2"],
    ["getex", "key:x75", "PERSIST"],
    ["touch", "key:x76"],
]


# Like ("zunionstore", "key:z1", "0", "key:z2") in KNOWN_DIFFERENCES: a numkeys that runs past
# the end makes Redis drop every key, we keep the destination (one key more to check) and
# ZINTERSTORE itself refuses the arguments.
EXTRA_KNOWN_DIFFERENCES = {
    ("zinterstore", "key:x24", "3", "key:x25"): "we keep the well-defined destination key",
}
ALL_KNOWN_DIFFERENCES = {**KNOWN_DIFFERENCES, **EXTRA_KNOWN_DIFFERENCES}


def _load_generator() -> ModuleType:
    path = ROOT / "scripts" / "golden_keys.py"
    spec = importlib.util.spec_from_file_location("_golden_keys_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOLDEN = _load_generator()


@pytest.fixture(scope="module")
def conn(redis_server: RedisServer) -> Iterator[Any]:
    """A raw RESP2 connection: replies as plain nested lists, no redis-py callbacks."""
    connection = redis.Connection(
        host="127.0.0.1", port=redis_server.port, password=redis_server.password, protocol=2
    )
    connection.connect()
    try:
        yield connection
    finally:
        connection.disconnect()


@pytest.fixture(scope="module")
def live_table(conn: Any) -> CommandTable:
    """The table the gateway would build from this backend (`pool.fetch_command_table`)."""
    info = GOLDEN.call(conn, "COMMAND", "INFO")
    docs = GOLDEN.call(conn, "COMMAND", "DOCS")
    version = next(
        line.partition(":")[2]
        for line in GOLDEN.call(conn, "INFO", "server").decode().splitlines()
        if line.startswith("redis_version:")
    )
    return CommandTable.from_command_info(info, docs, redis_version=version)


@pytest.fixture(scope="module", params=["live", "snapshot"])
def table(request: pytest.FixtureRequest, live_table: CommandTable) -> CommandTable:
    return live_table if request.param == "live" else CommandTable.from_snapshot()


def generate(conn: Any) -> list[list[str]]:
    """Argument lists as `scripts/golden_keys.py` builds them, from this server's docs."""
    commands = GOLDEN.key_bearing(GOLDEN.call(conn, "COMMAND", "INFO"))
    docs_raw = GOLDEN.call(conn, "COMMAND", "DOCS", *sorted({n.split("|")[0] for n in commands}))
    docs: dict[str, list[dict[str, Any]]] = {}
    for name, doc in GOLDEN.pairs(docs_raw).items():
        d = GOLDEN.pairs(doc)
        docs[name] = GOLDEN.arg_tree(d.get("arguments", []))
        for sub, sub_doc in GOLDEN.pairs(d.get("subcommands") or []).items():
            docs[sub] = GOLDEN.arg_tree(GOLDEN.pairs(sub_doc).get("arguments", []))
    rng = random.Random(GOLDEN.SEED)
    out: list[list[str]] = []
    for name in sorted(commands):
        gen = GOLDEN.Generator(rng)
        shapes: set[tuple[str, ...]] = set()
        prefix = name.split("|")
        modes = [("min", 1), ("max", 2), ("max", 3)] + [("random", 2)] * GOLDEN.RANDOM_VARIANTS
        for mode, reps in modes:
            argv = prefix + gen.args(docs[name], mode, reps)
            if gen.shape(argv) not in shapes:
                shapes.add(gen.shape(argv))
                out.append(argv)
    return out + [list(a) for a in GOLDEN.ADVERSARIAL]


def ask_redis(conn: Any, argv: list[str]) -> dict[str, Any]:
    """Redis's answer for `argv`: {"keys": [[name, flags], ...]} or {"error": message}."""
    try:
        reply = GOLDEN.call(conn, "COMMAND", "GETKEYSANDFLAGS", *argv)
    except ResponseError as e:
        return {"error": str(e)}
    return {"keys": [[GOLDEN.decode(k), GOLDEN.decode(f)] for k, f in reply]}


def ours(table: CommandTable, argv: list[str]) -> list[list[Any]]:
    args = [a.encode() for a in argv]
    spec = table.resolve(args)
    assert spec is not None, argv
    return [[argv[i], access.names()] for i, access in keys(spec, args)]


def compare(conn: Any, table: CommandTable, corpus: list[list[str]]) -> list[Any]:
    """Mismatches between Redis and us, known differences aside."""
    mismatches = []
    for argv in corpus:
        if tuple(argv) in ALL_KNOWN_DIFFERENCES:
            continue
        theirs = ask_redis(conn, argv)
        if "error" in theirs:
            assert theirs["error"] in NO_KEY_ERRORS, (argv, theirs)
            expected: list[Any] = []
        else:
            expected = theirs["keys"]
        mine = ours(table, argv)
        if mine != expected:
            mismatches.append((argv, mine, theirs))
    return mismatches


def test_recorded_corpus_matches_the_live_server(conn: Any, table: CommandTable) -> None:
    assert len(RECORDED) > 500
    assert compare(conn, table, [c["args"] for c in RECORDED]) == []


def test_freshly_generated_corpus_matches_the_live_server(
    conn: Any, table: CommandTable, live_table: CommandTable
) -> None:
    corpus = generate(conn)
    assert len(corpus) > 500
    bearing = {
        s.name
        for s in live_table.walk()
        if any(KeyAccess.NOT_KEY not in ks.access for ks in s.key_specs)
    }
    covered = {spec.name for argv in corpus if (spec := table.resolve([a.encode() for a in argv]))}
    assert bearing <= covered
    assert compare(conn, table, corpus) == []


def test_extra_adversarial_cases_match_the_live_server(conn: Any, table: CommandTable) -> None:
    assert compare(conn, table, EXTRA) == []


def test_error_cases_yield_no_keys_on_our_side(conn: Any, table: CommandTable) -> None:
    """Every argument list Redis refuses to extract keys from gets none from us either."""
    corpus = [c["args"] for c in RECORDED] + EXTRA
    refused = [
        argv
        for argv in corpus
        if tuple(argv) not in ALL_KNOWN_DIFFERENCES and "error" in ask_redis(conn, argv)
    ]
    assert refused  # the corpus does exercise the error path
    assert [argv for argv in refused if ours(table, argv)] == []


def test_known_differences_still_differ_on_the_live_server(conn: Any, table: CommandTable) -> None:
    for args in ALL_KNOWN_DIFFERENCES:
        argv = list(args)
        theirs = ask_redis(conn, argv)
        assert ours(table, argv) != theirs.get("keys", []), argv
