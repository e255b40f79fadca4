"""The command table: parsing Redis's replies, the snapshot, and lookups."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from redisgate.proxy.commands import table
from redisgate.proxy.commands.table import (
    CommandTable,
    KeyAccess,
    Route,
    SearchKind,
    arity_ok,
    normalize,
)

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = ROOT / "redisgate" / "data" / "redis-7.0.json"
TABLE = CommandTable.from_snapshot()

# Verbatim from redis-server 7.0.15 through redis-py with no response callback.
RAW_INFO: list[Any] = [
    [b"get", 2, [b"readonly", b"fast"], 1, 1, 1, [b"@read", b"@string", b"@fast"], [],
     [[b"flags", [b"RO", b"access"], b"begin_search",
       [b"type", b"index", b"spec", [b"index", 1]], b"find_keys",
       [b"type", b"range", b"spec", [b"lastkey", 0, b"keystep", 1, b"limit", 0]]]], []],
    [b"xread", -4, [b"readonly", b"blocking", b"movablekeys"], 0, 0, 0,
     [b"@read", b"@stream", b"@slow", b"@blocking"], [],
     [[b"flags", [b"RO", b"access"], b"begin_search",
       [b"type", b"keyword", b"spec", [b"keyword", b"STREAMS", b"startfrom", 1]], b"find_keys",
       [b"type", b"range", b"spec", [b"lastkey", -1, b"keystep", 1, b"limit", 2]]]], []],
    [b"config", -2, [], 0, 0, 0, [b"@slow"], [], [],
     [[b"config|get", -3, [b"admin", b"noscript", b"loading", b"stale"], 0, 0, 0,
       [b"@admin", b"@slow", b"@dangerous"], [], [], []],
      [b"config|set", -4, [b"admin", b"noscript", b"loading", b"stale"], 0, 0, 0,
       [b"@admin", b"@slow", b"@dangerous"],
       [b"request_policy:all_nodes", b"response_policy:all_succeeded"], [], []]]],
    None,  # COMMAND INFO of an unknown name
]  # fmt: skip
RAW_DOCS: list[Any] = [
    b"get", [b"summary", b"Get the value of a key", b"since", b"1.0.0", b"group", b"string",
             b"complexity", b"O(1)", b"arguments", [[b"name", b"key", b"type", b"key"]]],
    b"config", [b"summary", b"A container for server configuration commands", b"since",
                b"2.0.0", b"group", b"server", b"complexity", b"Depends on subcommand.",
                b"subcommands", [b"config|get", [b"summary", b"Get the values of parameters",
                                                 b"since", b"2.0.0", b"group", b"server"]]],
]  # fmt: skip


# --- Lookups ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [b"get", b"GET", b"Get", b"gEt"])
def test_get_is_case_insensitive(name: bytes) -> None:
    spec = TABLE.get(name)
    assert spec is not None and spec.name == "get"


@pytest.mark.parametrize("name", [b"nosuchcommand", b"", b"config|get", b"get\x00", b"GET "])
def test_unknown_names_are_none(name: bytes) -> None:
    assert TABLE.get(name) is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([b"config", b"get", b"maxmemory"], "config|get"),
        ([b"CONFIG", b"GeT", b"maxmemory"], "config|get"),
        ([b"client", b"SETNAME", b"x"], "client|setname"),
        ([b"object", b"encoding", b"k"], "object|encoding"),
        ([b"MEMORY", b"USAGE", b"k"], "memory|usage"),
        ([b"xinfo", b"stream", b"s"], "xinfo|stream"),
        ([b"command"], "command"),
        ([b"config"], "config"),  # missing subcommand: the container itself
        ([b"config", b"nosuch"], "config"),  # unknown subcommand: the container itself
        ([b"get", b"get"], "get"),  # not a container: arguments are not subcommands
        ([b"set", b"k", b"v"], "set"),
    ],
)
def test_resolve_picks_the_subcommand(args: list[bytes], expected: str) -> None:
    spec = TABLE.resolve(args)
    assert spec is not None and spec.name == expected


def test_resolve_unknown_or_empty_is_none() -> None:
    assert TABLE.resolve([]) is None
    assert TABLE.resolve([b"nosuch", b"get"]) is None


def test_subcommand_spec_fields() -> None:
    spec = TABLE["config|get"]
    assert spec.container == "config"
    assert spec.display_name == "CONFIG GET"
    assert spec.arity == -3
    assert "admin" in spec.flags
    assert spec.acl_categories == {"admin", "slow", "dangerous"}
    assert TABLE["config"].subcommands["get"] is spec
    assert spec.route is Route.DENIED


def test_spec_fields_from_snapshot() -> None:
    spec = TABLE["get"]
    assert (spec.arity, spec.group, spec.since) == (2, "string", "1.0.0")
    assert spec.summary == "Get the value of a key"
    assert spec.flags == {"readonly", "fast"}
    assert spec.acl_categories == {"read", "string", "fast"}
    assert (spec.first_key, spec.last_key, spec.step) == (1, 1, 1)
    (ks,) = spec.key_specs
    assert ks.access == KeyAccess.RO | KeyAccess.ACCESS
    assert (ks.begin.kind, ks.begin.index) == (SearchKind.INDEX, 1)
    assert (ks.find.kind, ks.find.lastkey, ks.find.keystep) == (SearchKind.RANGE, 0, 1)
    xread = TABLE["xread"].key_specs[0]
    assert (xread.begin.kind, xread.begin.keyword, xread.begin.startfrom) == (
        SearchKind.KEYWORD,
        b"streams",
        1,
    )
    assert (xread.find.lastkey, xread.find.limit) == (-1, 2)
    eval_ks = TABLE["eval"].key_specs[0]
    assert (eval_ks.find.kind, eval_ks.find.keynumidx, eval_ks.find.firstkey) == (
        SearchKind.KEYNUM,
        0,
        1,
    )
    assert "assume the worst" in eval_ks.notes


def test_snapshot_size_and_version() -> None:
    assert len(TABLE) == 240
    assert sum(1 for _ in TABLE.walk()) == 366
    assert TABLE.redis_version == "7.0.15"
    assert "GET" in TABLE and "nosuch" not in TABLE
    assert repr(TABLE) == "<CommandTable [240 commands redis 7.0.15]>"


@pytest.mark.parametrize(
    ("name", "argc", "ok"),
    [("get", 2, True), ("get", 3, False), ("get", 1, False), ("mget", 2, True),
     ("mget", 9, True), ("mget", 1, False), ("config|get", 3, True), ("config|get", 2, False)],
)  # fmt: skip
def test_arity(name: str, argc: int, ok: bool) -> None:
    assert arity_ok(TABLE[name], argc) is ok


# --- Parsing raw replies -------------------------------------------------------------------


def test_from_command_info_parses_plain_resp2_replies() -> None:
    table = CommandTable.from_command_info(RAW_INFO, RAW_DOCS)
    assert len(table) == 3
    assert table["get"] == TABLE["get"]
    assert table["xread"].key_specs == TABLE["xread"].key_specs
    config_get = table["config|get"]
    assert config_get.summary == "Get the values of parameters"
    assert config_get.group == "server"
    assert table["config|set"].tips == (
        "request_policy:all_nodes",
        "response_policy:all_succeeded",
    )
    assert table["config|set"].summary == ""  # not in the docs reply
    assert table.resolve([b"CONFIG", b"SET", b"a", b"b"]) is table["config|set"]


def test_docs_are_optional_and_resp3_maps_accepted() -> None:
    table = CommandTable.from_command_info(RAW_INFO)
    assert table["get"].summary == "" and table["get"].group == ""
    resp3_docs = {b"get": {b"summary": b"Get it", b"group": b"string", b"since": b"1.0.0"}}
    assert CommandTable.from_command_info(RAW_INFO, resp3_docs)["get"].summary == "Get it"


def test_redis6_short_replies_parse() -> None:
    """Redis 6 stops after the ACL categories: no tips, key specs or subcommands."""
    table = CommandTable.from_command_info([[b"get", 2, [b"readonly"], 1, 1, 1, [b"@read"]]])
    assert table["get"].key_specs == () and table["get"].acl_categories == {"read"}


def test_unknown_search_types_and_flags_are_tolerated() -> None:
    spec = [b"flags", [b"RW", b"future_flag"], b"begin_search",
            [b"type", b"someday", b"spec", [b"x", 1]], b"find_keys",
            [b"type", b"range", b"spec", [b"lastkey", 0, b"keystep", 1, b"limit", 0]]]  # fmt: skip
    table = CommandTable.from_command_info([[b"newcmd", -2, [], 1, 1, 1, [], [], [spec], []]])
    (ks,) = table["newcmd"].key_specs
    assert ks.access == KeyAccess.RW
    assert ks.begin.kind is SearchKind.UNKNOWN and not ks.interpretable


def test_malformed_reply_raises_value_error() -> None:
    with pytest.raises(ValueError, match="expected an array"):
        normalize([b"get"])


def _raw_key_spec(ks: dict[str, Any]) -> list[Any]:
    def step(d: dict[str, Any]) -> list[Any]:
        body = [x for k, v in d.items() if k != "type" for x in (k.encode(), _raw(v))]
        return [b"type", d["type"].encode(), b"spec", body]

    notes = [b"notes", ks["notes"].encode()] if "notes" in ks else []
    return [*notes, b"flags", _raw(ks["flags"]), b"begin_search", step(ks["begin_search"]),
            b"find_keys", step(ks["find_keys"])]  # fmt: skip


def _raw(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):
        return [_raw(v) for v in value]
    return value


def _raw_info(name: str, c: dict[str, Any]) -> list[Any]:
    subs = [_raw_info(n, s) for n, s in c.get("subcommands", {}).items()]
    return [name.encode(), c["arity"], _raw(c["flags"]), c["first_key"], c["last_key"],
            c["step"], [b"@" + a.encode() for a in c["acl_categories"]], _raw(c["tips"]),
            [_raw_key_spec(k) for k in c["key_specs"]], subs]  # fmt: skip


def _raw_docs(commands_: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for name, c in commands_.items():
        doc: list[Any] = []
        for field in ("summary", "since", "group", "deprecated_since", "replaced_by", "doc_flags"):
            if field in c:
                doc += [field.encode(), _raw(c[field])]
        if "subcommands" in c:
            doc += [b"subcommands", _raw_docs(c["subcommands"])]
        out += [name.encode(), doc]
    return out


def test_normalize_round_trips_the_whole_snapshot() -> None:
    """The snapshot, turned back into RESP2 reply shapes, normalises to itself."""
    snapshot = json.loads(SNAPSHOT.read_text())["commands"]
    info = [_raw_info(name, c) for name, c in reversed(snapshot.items())]
    assert normalize(info, _raw_docs(snapshot)) == snapshot


def test_from_snapshot_path_and_format_check(tmp_path: Path) -> None:
    assert len(CommandTable.from_snapshot(SNAPSHOT)) == 240
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 99, "commands": {}}))
    with pytest.raises(ValueError, match="format"):
        CommandTable.from_snapshot(bad)


# --- KeyAccess -----------------------------------------------------------------------------------


def test_key_access_names_round_trip_in_redis_order() -> None:
    names = ["RW", "access", "delete", "incomplete"]
    access = KeyAccess.from_names(["incomplete", "delete", "RW", "access", "unknown_future"])
    assert access.names() == names


@pytest.mark.parametrize(
    ("names", "reads", "writes"),
    [(["RO", "access"], True, False), (["RO"], False, False), (["OW", "update"], False, True),
     (["RW", "access", "delete"], True, True), (["RM", "delete"], False, True),
     (["RW", "insert"], False, True)],
)  # fmt: skip
def test_key_access_read_write_sense(names: list[str], reads: bool, writes: bool) -> None:
    access = KeyAccess.from_names(names)
    assert (access.reads, access.writes) == (reads, writes)


# --- Layering ------------------------------------------------------------------------------------

FORBIDDEN = {"asyncio", "socket", "time", "asyncpg", "redis", "hiredis", "uvloop", "selectors"}


@pytest.mark.parametrize("module", ["table", "keyspecs", "routing"])
def test_modules_are_sans_io(module: str) -> None:
    tree = ast.parse((Path(table.__file__).parent / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN


def test_specs_are_hashable_values() -> None:
    assert len({TABLE["get"], TABLE["config|get"], TABLE["config"]}) == 3
    assert CommandTable.from_snapshot()["config"] == TABLE["config"]
