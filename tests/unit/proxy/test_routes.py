"""Gateway routes: every Redis 7.0 command is classified, and the sample we care about is right."""

from __future__ import annotations

import pytest

from redisgate.proxy.commands.routing import (
    DATA_GROUPS,
    ROUTES,
    classify,
    token,
)
from redisgate.proxy.commands.table import CommandTable, Route, decide, route

TABLE = CommandTable.from_snapshot()
F, P, I, D = Route.FORWARD, Route.PINNED, Route.INTERCEPTED, Route.DENIED  # noqa: E741

# Routes our table names for commands newer than Redis 7.0 (a 7.2+ backend brings them).
NEWER_THAN_7_0 = {"client|setinfo", "client|no-touch", "waitaof"}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("get k", F), ("set k v", F), ("flushdb", F), ("keys *", F), ("scan 0", F),
        ("eval s 0", F), ("publish c m", F), ("ping", F), ("echo x", F), ("time", F),
        ("exec", F), ("discard", F), ("object encoding k", F), ("memory usage k", F),
        ("script load s", F), ("command getkeys get k", F), ("xinfo stream s", F),
        ("xgroup create s g $", F), ("pubsub numsub c", F), ("sort k", F),
        ("multi", P), ("watch k", P), ("subscribe c", P), ("psubscribe c*", P),
        ("ssubscribe c", P), ("unsubscribe", P), ("punsubscribe", P), ("blpop k 0", P),
        ("brpop k 0", P), ("blmove a b left right 0", P), ("blmpop 0 1 k left", P),
        ("brpoplpush a b 0", P), ("bzpopmin z 0", P), ("bzpopmax z 0", P),
        ("bzmpop 0 1 z min", P), ("wait 1 0", P), ("client tracking on", P),
        ("client reply off", P), ("client caching yes", P),
        ("auth k", I), ("hello 3", I), ("select 1", I), ("quit", I), ("reset", I),
        ("client setname n", I), ("client getname", I), ("client id", I), ("client info", I),
        ("info", I), ("command", I), ("command info get", I), ("command docs", I),
        ("command count", I), ("acl whoami", I), ("acl cat", I),
        ("config get x", D), ("config set x y", D), ("debug sleep 0", D), ("shutdown", D),
        ("module list", D), ("replicaof no one", D), ("slaveof no one", D), ("sync", D),
        ("psync x 0", D), ("monitor", D), ("acl setuser x", D), ("acl list", D),
        ("acl genpass", D), ("failover", D), ("save", D), ("bgsave", D), ("bgrewriteaof", D),
        ("lastsave", D), ("client kill id 1", I), ("client list", I), ("client pause 1", D),
        ("client unpause", D), ("client no-evict on", I), ("client unblock 1", I),
        ("cluster info", D), ("cluster keyslot k", D), ("latency latest", D),
        ("slowlog get", D), ("migrate h 1 k 0 1", D), ("move k 1", D), ("swapdb 0 1", D),
        ("flushall", D), ("script kill", D), ("script flush", D), ("function kill", D),
        ("function restore x", D), ("function flush", D), ("function load x", D),
        ("memory stats", D), ("pubsub channels", D), ("restore k 0 x", D), ("role", I),
        ("pfdebug getreg k", D), ("readonly", D), ("asking", D),
        ("client", D), ("client nosuch", D), ("config", D),
    ],
)  # fmt: skip
def test_route_sample(command: str, expected: Route) -> None:
    args = [a.encode() for a in command.split()]
    spec = TABLE.resolve(args)
    assert spec is not None
    assert route(spec, args) is expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("xread streams s 0", F),
        ("xread count 5 streams s 0", F),
        ("xread BLOCK 0 streams s 0", P),
        ("XREAD count 1 block 100 STREAMS s 0", P),
        ("xread streams block 0", F),  # a stream named "block"
        ("xreadgroup group g c streams s >", F),
        ("xreadgroup group block c streams s >", F),  # a group named "block"
        ("xreadgroup group g block streams s >", F),  # a consumer named "block"
        ("xreadgroup group g c count 1 noack block 10 streams s >", P),
        ("copy a b", F),
        ("copy a b replace", F),
        ("copy a b db 3", D),
        ("copy a b REPLACE DB 0", D),
        ("copy db db", F),  # keys named "db"
    ],
)
def test_argument_dependent_routes(command: str, expected: Route) -> None:
    args = [a.encode() for a in command.split()]
    spec = TABLE.resolve(args)
    assert spec is not None
    assert route(spec, args) is expected
    assert decide(spec, args).route is expected


def test_block_with_a_nul_suffix_still_pins() -> None:
    """Redis compares options with strcasecmp, which stops at NUL: `BLOCK\\0x` is BLOCK."""
    args = [b"XREAD", b"BLOCK\x00x", b"0", b"STREAMS", b"s", b"0"]
    assert route(TABLE["xread"], args) is P
    assert token(b"BLOCK\x00x") == b"block"


def test_copy_db_reason() -> None:
    decision = decide(TABLE["copy"], [b"copy", b"a", b"b", b"db", b"1"])
    assert decision.route is D and "another database" in decision.reason


def test_every_snapshot_command_is_classified() -> None:
    unclassified = [s.name for s in TABLE.walk() if not s.decision.classified]
    assert unclassified == []


def test_commands_outside_data_groups_have_explicit_routes() -> None:
    """Only data-type commands may take the group default; the rest are reviewed one by one."""
    missing = []
    for spec in TABLE.walk():
        family = spec.container + "|*" if spec.container else ""
        if spec.name not in ROUTES and family not in ROUTES and spec.group not in DATA_GROUPS:
            missing.append(spec.name)
    assert missing == []


def test_blocking_and_admin_commands_are_listed_explicitly() -> None:
    implicit = [
        s.name
        for s in TABLE.walk()
        if s.flags & {"blocking", "admin", "pubsub", "noscript"}
        and s.name not in ROUTES
        and s.container + "|*" not in ROUTES
    ]
    assert implicit == []


def test_route_table_names_only_real_commands() -> None:
    names = {s.name for s in TABLE.walk()}
    families = {n.removesuffix("|*") for n in ROUTES if n.endswith("|*")}
    assert families <= names
    extra = {n for n in ROUTES if not n.endswith("|*")} - names
    assert extra == NEWER_THAN_7_0


def test_non_forward_routes_give_a_reason() -> None:
    silent = [s.name for s in TABLE.walk() if s.route is not F and not s.decision.reason]
    assert silent == []


# Admin commands the gateway answers over its own connections of the instance, never the
# server's clients (docs/commands.md, "What inspection withholds").
OWN_CONNECTIONS = {"client|kill", "client|list", "client|unblock", "client|no-evict"}


def test_admin_flag_implies_denied() -> None:
    """Redis's `admin` flag is a guide we follow in 7.0, but for the CLIENT subcommands the
    gateway answers about the tenant's own connections (SERVER_WIDE ones are DENIED here,
    as they are on shared servers)."""
    admin = {s.name for s in TABLE.walk() if "admin" in s.flags and s.route is not D}
    assert admin == OWN_CONNECTIONS


@pytest.mark.parametrize(
    ("name", "flags", "group", "expected", "classified"),
    [
        ("hgetex", frozenset({"write"}), "hash", F, True),  # a new data-type command
        ("bnewpop", frozenset({"write", "blocking"}), "list", P, True),
        ("newadmin", frozenset({"admin"}), "server", D, False),
        ("newconn", frozenset({"noscript"}), "connection", F, False),
        ("newblock", frozenset({"blocking"}), "generic", P, False),
        ("client|newthing", frozenset(), "connection", D, True),  # the CLIENT family default
        ("config|newthing", frozenset(), "server", D, True),
        ("object|newthing", frozenset({"readonly"}), "generic", F, True),
    ],
)
def test_defaults_for_commands_newer_than_the_table(
    name: str, flags: frozenset[str], group: str, expected: Route, classified: bool
) -> None:
    decision = classify(name, flags, group)
    assert (decision.route, decision.classified) == (expected, classified)


def test_route_counts() -> None:
    counts = {r: sum(1 for s in TABLE.walk() if s.route is r) for r in Route}
    assert counts == {F: 208, P: 22, I: 22, D: 114}
