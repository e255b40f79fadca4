"""Our key extraction against Redis's own `COMMAND GETKEYSANDFLAGS`, recorded without a server.

The corpus is `data/golden_keys.json`, written by `scripts/golden_keys.py` against redis-server
7.0.15: a few argument shapes per key-bearing command from `COMMAND DOCS`, plus adversarial
cases. Re-run the script against a newer Redis to see what changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from redisgate.proxy.commands.keyspecs import keys
from redisgate.proxy.commands.table import CommandTable, KeyAccess

TABLE = CommandTable.from_snapshot()
CORPUS = json.loads((Path(__file__).parent / "data" / "golden_keys.json").read_text())
CASES: list[dict[str, Any]] = CORPUS["cases"]

# Where we knowingly differ from Redis, and why. Each differs only on a command Redis rejects
# when it runs it, so no key is ever accessed unchecked.
KNOWN_DIFFERENCES = {
    # Redis's keynum parse fails (strict string2ll), so GETKEYS falls back to the EVAL-specific
    # function, which uses atoi and finds a key; EVAL itself parses numkeys strictly and fails.
    ("eval", "return 1", "01", "key:e1"): "lenient atoi fallback in Redis",
    ("eval", "return 1", "+1", "key:e2"): "lenient atoi fallback in Redis",
    ("eval", "return 1", "1abc", "key:e3"): "lenient atoi fallback in Redis",
    # numkeys 0: Redis drops every key (invalid spec, then "no keys"); we keep the destination,
    # checking one key more. ZUNIONSTORE itself refuses numkeys 0.
    ("zunionstore", "key:z1", "0", "key:z2"): "we keep the well-defined destination key",
}


def encode(args: list[str]) -> list[bytes]:
    return [a.encode("utf-8") for a in args]


def ours(case: dict[str, Any]) -> list[list[Any]]:
    args = encode(case["args"])
    spec = TABLE.resolve(args)
    assert spec is not None, case["args"]
    return [[case["args"][i], access.names()] for i, access in keys(spec, args)]


def test_extraction_matches_redis() -> None:
    mismatches = [
        (case["args"], ours(case), case.get("keys", case.get("error")))
        for case in CASES
        if tuple(case["args"]) not in KNOWN_DIFFERENCES and ours(case) != case.get("keys", [])
    ]
    assert mismatches == []


def test_known_differences_still_differ() -> None:
    """Keeps the list honest: a difference that went away must leave the list."""
    by_args = {tuple(c["args"]): c for c in CASES}
    assert set(KNOWN_DIFFERENCES) <= set(by_args)
    for args in KNOWN_DIFFERENCES:
        assert ours(by_args[args]) != by_args[args].get("keys", [])


def test_corpus_covers_every_key_bearing_command() -> None:
    covered = {spec.name for c in CASES if (spec := TABLE.resolve(encode(c["args"])))}
    bearing = {
        s.name
        for s in TABLE.walk()
        if any(KeyAccess.NOT_KEY not in ks.access for ks in s.key_specs)
    }
    assert bearing <= covered
    assert len(CASES) > 500
