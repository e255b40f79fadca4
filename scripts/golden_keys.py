"""Record Redis's own key extraction as a golden corpus for `keyspecs.keys`.

    python scripts/golden_keys.py --port 6379    # writes tests/unit/proxy/data/golden_keys.json

For every command and subcommand with a key spec, it builds a few argument lists from the
server's `COMMAND DOCS` argument trees (required arguments only, every optional argument, and
seeded random mixes), adds hand-written adversarial cases (keywords in odd case or with a NUL,
keys named like keywords, malformed counts), and stores what `COMMAND GETKEYSANDFLAGS` answers
for each: the key names with their flags, or the error. Argument values are unique so a key
name maps back to one position. `tests/unit/proxy/test_keyspecs_golden.py` then compares our
extraction with the file, without a server.
"""

# redis-py leaves its Connection classes untyped.
# mypy: allow-untyped-calls, disable-error-code="abstract"

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path
from typing import Any

import redis
from redis.exceptions import ResponseError

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "unit" / "proxy" / "data" / "golden_keys.json"
SEED = 7
RANDOM_VARIANTS = 4

# Cases that generated shapes do not reach: how Redis treats odd spellings and bad counts.
ADVERSARIAL: list[list[str]] = [
    ["xread", "STREAMS\0junk", "key:nul1", "key:nul2", "0", "0"],
    ["XREAD", "sTrEaMs", "key:case1", "0"],
    ["xread", "COUNT", "5", "STREAMS", "streams", "key:after", "0", "0"],
    ["xread", "BLOCK", "0", "STREAMS", "key:blk1", "key:blk2", "key:blk3", "0", "0"],
    ["xread", "STREAMS", "key:odd1", "key:odd2", "0"],
    ["xreadgroup", "GROUP", "STREAMS", "c", "STREAMS", "key:grp", ">"],
    ["set", "key:setnul", "v", "GET\0x"],
    ["set", "key:setget", "v", "EX", "10", "get"],
    ["set", "key:setnoget", "get", "NX"],
    ["sort", "key:s1", "STORE\0", "key:s2"],
    ["sort", "key:s3", "LIMIT", "0", "1", "store", "key:s4", "store", "key:s5"],
    ["sort", "key:s6", "BY", "store", "GET", "store", "ALPHA"],
    ["sort", "key:s7", "store", "limit", "x", "y", "store"],
    ["sort_ro", "key:sr", "BY", "w_*", "GET", "#"],
    ["georadius", "key:g1", "1", "2", "3", "m", "STORE", "key:g2", "STOREDIST", "key:g3"],
    ["georadiusbymember", "key:g4", "mem", "3", "km", "storedist", "key:g5"],
    ["migrate", "h", "1", "", "0", "5", "COPY", "AUTH", "KEYS", "KEYS", "key:m1", "key:m2"],
    ["migrate", "h", "1", "key:m3", "0", "5", "KEYS", "key:m4"],
    ["migrate", "h", "1", "", "0", "5", "AUTH2", "u", "p", "keys", "key:m5"],
    ["eval", "return 1", "01", "key:e1"],
    ["eval", "return 1", "+1", "key:e2"],
    ["eval", "return 1", "1abc", "key:e3"],
    ["eval", "return 1", "0"],
    ["eval", "return 1", "3", "key:e4", "key:e5"],
    ["fcall", "f", "-1", "key:f1"],
    ["zunionstore", "key:z1", "0", "key:z2"],
    ["zinterstore", "key:z3", "2", "key:z4", "key:z5", "WEIGHTS", "1", "2"],
    ["lmpop", "3", "key:l1", "key:l2", "LEFT"],
    ["blmpop", "0", "2", "key:l3", "key:l4", "RIGHT", "COUNT", "2"],
    ["bitfield", "key:b1", "GET", "u8", "0", "OVERFLOW", "SAT"],
    ["bitfield", "key:b2", "GET", "u8", "0", "INCRBY", "u8", "0", "1"],
    ["bitfield", "key:b3", "GET", "u8"],
    ["bitfield", "key:b4", "overflow", "wrap", "set", "i8", "0", "1"],
    ["mset", "key:ms1", "v1", "key:ms2", "v2"],
    ["msetnx", "key:ms3", "v3", "key:ms4"],
    ["object", "ENCODING", "key:o1"],
    ["memory", "usage", "key:mu", "SAMPLES", "5"],
    ["bzpopmin", "key:bz1", "key:bz2", "0"],
    ["lcs", "key:lcs1", "key:lcs2", "LEN"],
]


class Generator:
    """Argument lists from a `COMMAND DOCS` argument tree, with unique values."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.counter = itertools.count(1)
        self.generated: set[str] = set()

    def value(self, arg: dict[str, Any]) -> str:
        kind = arg["type"]
        n = next(self.counter)
        text = {
            "key": f"key:{n}",
            "pattern": f"pat:{n}:*",
            "integer": str(n),
            "double": f"{n}.5",
            "unix-time": str(1_700_000_000 + n),
        }.get(kind, f"str:{n}")
        self.generated.add(text)
        return text

    def shape(self, argv: list[str]) -> tuple[str, ...]:
        """`argv` with generated values blanked: two cases of one shape test the same thing."""
        return tuple("" if a in self.generated else a for a in argv)

    def args(self, spec: list[dict[str, Any]], mode: str, reps: int) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(spec):
            arg = spec[i]
            if arg["name"] == "numkeys" and i + 1 < len(spec) and spec[i + 1]["type"] == "key":
                keys = self.one(spec[i + 1], mode, reps)
                out += [str(len(keys)), *keys]
                i += 2
                continue
            out += self.one(arg, mode, reps)
            i += 1
        return out

    def one(self, arg: dict[str, Any], mode: str, reps: int) -> list[str]:
        flags = arg.get("flags", [])
        if "optional" in flags and not self.include(mode):
            return []
        times = reps if "multiple" in flags else 1
        out: list[str] = []
        for n in range(times):
            if "token" in arg and (n == 0 or "multiple_token" in flags):
                out.append(arg["token"])
            out += self.body(arg, mode, reps)
        return out

    def body(self, arg: dict[str, Any], mode: str, reps: int) -> list[str]:
        kind = arg["type"]
        if kind == "pure-token":
            return []
        if kind == "block":
            return self.args(arg["arguments"], mode, reps)
        if kind == "oneof":
            choices = arg["arguments"]
            pick = {"min": 0, "max": len(choices) - 1}.get(mode)
            choice = choices[pick if pick is not None else self.rng.randrange(len(choices))]
            flags = [f for f in choice.get("flags", []) if f != "optional"]
            return self.one({**choice, "flags": flags}, mode, reps)
        return [self.value(arg)]

    def include(self, mode: str) -> bool:
        return {"min": False, "max": True}.get(mode, self.rng.random() < 0.5)


def pairs(raw: list[Any]) -> dict[str, Any]:
    return {decode(raw[i]): raw[i + 1] for i in range(0, len(raw), 2)}


def decode(raw: Any) -> Any:
    if isinstance(raw, bytes):
        return raw.decode()
    if isinstance(raw, list):
        return [decode(x) for x in raw]
    return raw


def arg_tree(raw: list[Any]) -> list[dict[str, Any]]:
    out = []
    for item in raw:
        arg = {k: decode(v) for k, v in pairs(item).items() if k != "arguments"}
        if "arguments" in pairs(item):
            arg["arguments"] = arg_tree(pairs(item)["arguments"])
        out.append(arg)
    return out


def key_bearing(info: list[Any]) -> dict[str, list[Any]]:
    """{full name: docs} of commands with a key spec that is not NOT_KEY, subcommands too."""
    out: dict[str, list[Any]] = {}
    for item in info:
        specs = [pairs(s) for s in item[8]]
        if any(b"not_key" not in s["flags"] for s in specs):
            out[item[0].decode()] = item
        out.update(key_bearing(item[9]))
    return out


def call(conn: Any, *argv: str) -> Any:
    conn.send_command(*argv)
    return conn.read_response()


def record(conn: Any, argv: list[str]) -> dict[str, Any]:
    try:
        reply = call(conn, "COMMAND", "GETKEYSANDFLAGS", *argv)
    except ResponseError as e:
        return {"args": argv, "error": str(e)}
    return {"args": argv, "keys": [[decode(k), decode(f)] for k, f in reply]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--unix-socket")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.unix_socket:
        conn: Any = redis.UnixDomainSocketConnection(path=args.unix_socket, protocol=2)
    else:
        conn = redis.Connection(host=args.host, port=args.port, protocol=2)
    conn.connect()
    try:
        version = next(
            line.partition(":")[2]
            for line in call(conn, "INFO", "server").decode().splitlines()
            if line.startswith("redis_version:")
        )
        commands = key_bearing(call(conn, "COMMAND", "INFO"))
        docs_raw = call(conn, "COMMAND", "DOCS", *sorted({n.split("|")[0] for n in commands}))
        docs: dict[str, list[dict[str, Any]]] = {}
        for name, doc in pairs(docs_raw).items():
            d = pairs(doc)
            docs[name] = arg_tree(d.get("arguments", []))
            for sub, sub_doc in pairs(d.get("subcommands") or []).items():
                docs[sub] = arg_tree(pairs(sub_doc).get("arguments", []))

        rng = random.Random(SEED)
        cases: list[dict[str, Any]] = []
        for name in sorted(commands):
            gen = Generator(rng)
            shapes: set[tuple[str, ...]] = set()
            prefix = name.split("|")
            modes = [("min", 1), ("max", 2), ("max", 3)] + [("random", 2)] * RANDOM_VARIANTS
            for mode, reps in modes:
                argv_ = prefix + gen.args(docs[name], mode, reps)
                if gen.shape(argv_) not in shapes:
                    shapes.add(gen.shape(argv_))
                    cases.append(record(conn, argv_))
        cases += [dict(record(conn, a), adversarial=True) for a in ADVERSARIAL]
    finally:
        conn.disconnect()

    # One case per line: the file stays greppable and its diffs readable.
    head = json.dumps({"redis_version": version, "generator": "scripts/golden_keys.py"})
    lines = ",\n".join(json.dumps(case) for case in cases)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(head[:-1] + ', "cases": [\n' + lines + "\n]}\n", encoding="utf-8")
    errors = sum("error" in c for c in cases)
    print(f"{args.output}: {len(cases)} cases over {len(commands)} commands, {errors} errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
