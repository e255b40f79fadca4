"""Server-wide state on an instance that owns its server: what one key changes there, every
other key's commands run with (issue 13, item 4).

A private redis-server (functions and the script cache are server-wide, so the session's
shared one is left alone) behind one gateway with two instances on it: `own` (the instance
owns its server) and `shared` (marked as one db of a server other tenants share).
"""

# redis-py leaves execute_command untyped.
# mypy: allow-untyped-calls

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.commands.table import CommandTable
from tests.integration.proxy.conftest import RunningGateway, run_gateway
from tests.unit.proxy.test_commands_doc import load_generator

SCOPES: dict[str, str | tuple[str, str]] = {
    "app": "+@all ~app:*",  # the reported key
    "app_channels": "+@all ~app:* allchannels",  # every channel, but keys limited
    "news": "+@all allkeys &news.*",  # every key, but channels limited
    "all": "+@all allkeys allchannels",
    "shared_all": ("shared", "+@all allkeys allchannels"),
}

LIBRARY = """#!lua name=lib
redis.register_function('get', function(keys, args) return redis.call('GET', keys[1]) end)
"""
# The same library, replaced by a key limited to app:*: whoever calls `get` now copies
# other:1 into app:exfil, which the limited key may read.
EXFILTRATING = """#!lua name=lib
redis.register_function('get', function(keys, args)
  redis.call('SET', 'app:exfil', redis.call('GET', 'other:1') or '')
  return redis.call('GET', keys[1])
end)
"""


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("own-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def gw(
    own_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    with run_gateway(
        own_server,
        tmp_path_factory.mktemp("server-wide"),
        instances=("own", "shared"),
        shared=("shared",),
        scopes=SCOPES,
    ) as running:
        yield running


def test_a_key_limited_to_patterns_cannot_replace_a_function_other_keys_call(
    gw: RunningGateway,
) -> None:
    with gw.direct("own") as direct:
        direct.function_flush()
        direct.function_load(LIBRARY)
        direct.set("other:1", "secret")
        direct.set("app:1", "mine")
        with gw.scoped_client("app") as limited, gw.scoped_client("all") as everything:
            with pytest.raises(redis.exceptions.NoPermissionError, match="FUNCTION LOAD"):
                limited.function_load(EXFILTRATING, replace=True)
            assert everything.fcall("get", 1, "app:1") == b"mine"
            assert direct.exists("app:exfil") == 0
            assert limited.get("app:exfil") is None
        direct.function_flush()


def test_a_key_limited_to_patterns_runs_scripts_under_them(gw: RunningGateway) -> None:
    """Scripts need patterns only (docs/commands.md): they run as the key's backend user."""
    with gw.direct("own") as direct:
        direct.function_load(SAMPLE_LIBRARY, replace=True)
        direct.script_load(SCRIPT)
        direct.set("app:1", "mine")
        direct.set("other:1", "secret")
        with gw.scoped_client("app") as limited:
            assert limited.eval(SCRIPT, 0) == 1
            assert limited.evalsha(SCRIPT_SHA, 0) == 1
            assert limited.evalsha_ro(SCRIPT_SHA, 0) == 1
            assert limited.fcall("get", 1, "app:1") == b"mine"
            assert limited.fcall_ro("get", 1, "app:1") == b"mine"
            with pytest.raises(redis.exceptions.NoPermissionError):
                limited.fcall("get", 1, "other:1")
            with pytest.raises(redis.ResponseError, match="can't access"):
                limited.eval("return redis.call('GET', 'other:1')", 0)
        direct.function_flush()


# --- docs/commands.md, row by row ---------------------------------------------------------------
#
# The doc's claims come from the command table (`gen_commands_doc.claims`, which renders the
# doc); each is checked here against the gateway: a denied command is refused to a key with
# every permission, one needing allkeys (and allchannels) is refused to a key lacking either
# and runs for a key with both, and a shared server refuses what the doc says it refuses.

GENERATOR = load_generator()
CLAIMS = GENERATOR.claims(CommandTable.from_snapshot())
Need = GENERATOR.Need
SAMPLE_LIBRARY = """#!lua name=samples
redis.register_function{function_name='get', flags={'no-writes'},
  callback=function(keys, args) return redis.call('GET', keys[1]) end}
"""
SCRIPT = "return 1"
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
Args = list[bytes | str]


def _with_library(args: Args) -> Callable[[redis.Redis], Args]:
    def setup(direct: redis.Redis) -> Args:
        direct.function_load(SAMPLE_LIBRARY, replace=True)
        return args

    return setup


def _restore(direct: redis.Redis) -> Args:
    direct.function_load(SAMPLE_LIBRARY, replace=True)
    return ["FUNCTION", "RESTORE", direct.function_dump(), "REPLACE"]


# Valid arguments (made by a setup on the backend where they need state) for every command
# that needs more than patterns, so that a key allowed to run it really runs it.
SAMPLES: dict[str, Callable[[redis.Redis], Args]] = {
    "function|load": lambda _: ["FUNCTION", "LOAD", "REPLACE", SAMPLE_LIBRARY],
    "function|delete": _with_library(["FUNCTION", "DELETE", "samples"]),
    "function|flush": lambda _: ["FUNCTION", "FLUSH"],
    "function|restore": _restore,
    "function|kill": lambda _: ["FUNCTION", "KILL"],
    "function|stats": lambda _: ["FUNCTION", "STATS"],
    "script|flush": lambda _: ["SCRIPT", "FLUSH"],
    "script|kill": lambda _: ["SCRIPT", "KILL"],
    "keys": lambda _: ["KEYS", "*"],
    "scan": lambda _: ["SCAN", "0"],
    "randomkey": lambda _: ["RANDOMKEY"],
    "dbsize": lambda _: ["DBSIZE"],
    "flushdb": lambda _: ["FLUSHDB"],
    "flushall": lambda _: ["FLUSHALL"],
    "memory|stats": lambda _: ["MEMORY", "STATS"],
    "slowlog|get": lambda _: ["SLOWLOG", "GET", "1"],
}
# What Redis answers a KILL when nothing runs: the command ran.
RAN = re.compile(r"^(NOTBUSY )?No scripts in execution right now\.$")
# Bare names not sent: QUIT and RESET end or reset the session; redis-py's reader takes an
# unsubscribe confirmation for a pub/sub message and waits on (direct to Redis too).
NOT_SENT_BARE = {"quit", "reset", "unsubscribe", "punsubscribe", "sunsubscribe"}


def send(client: redis.Redis, args: Args) -> object:
    """The reply, raw (no redis-py callbacks), or the error as an exception object."""
    conn = client.connection
    assert conn is not None
    conn.send_command(*args)
    try:
        return conn.read_response()
    except redis.ResponseError as exc:
        return exc


def is_noperm(reply: object) -> bool:
    return isinstance(reply, redis.exceptions.NoPermissionError)


@pytest.fixture(scope="module")
def keys(gw: RunningGateway) -> Iterator[dict[str, redis.Redis]]:
    """One connection per key, for every claim."""
    made = {
        label: gw.scoped_client(label, single_connection_client=True, socket_timeout=5)
        for label in SCOPES
    }
    try:
        yield made
    finally:
        for client in made.values():
            client.close()


def bare(claim: Any) -> Args:
    return [str(part) for part in claim.spec.display_name.split()]


def test_the_claims_cover_the_table() -> None:
    assert len(CLAIMS) > 300
    needing_more = {c.spec.name for c in CLAIMS if c.own in (Need.ALL_KEYS, Need.WHOLE_INSTANCE)}
    assert needing_more == set(SAMPLES)  # every such claim is run with valid arguments


def test_denied_commands_are_refused_to_a_key_with_every_permission(
    keys: dict[str, redis.Redis],
) -> None:
    wrong = []
    for claim in CLAIMS:
        for label, expected in (("all", claim.own), ("shared_all", claim.shared)):
            if expected is Need.DENIED and not is_noperm(send(keys[label], bare(claim))):
                wrong.append((label, claim.spec.display_name))
    assert wrong == []


def test_commands_needing_more_than_patterns(
    gw: RunningGateway, keys: dict[str, redis.Redis]
) -> None:
    """`allkeys`: refused to a key limited to patterns, run by one with every key. `allkeys
    allchannels`: refused to a key lacking either, run by one with both. On the shared server
    as the doc says (denied, or run by a key with every permission)."""
    wrong = []
    with gw.direct("own") as own, gw.direct("shared") as shared:
        for claim in CLAIMS:
            if claim.own not in (Need.ALL_KEYS, Need.WHOLE_INSTANCE):
                continue
            sample = SAMPLES[claim.spec.name]
            lacking = ["app_channels"] + (["news"] if claim.own is Need.WHOLE_INSTANCE else [])
            for label in lacking:
                if not is_noperm(send(keys[label], sample(own))):
                    wrong.append((label, claim.spec.display_name, "not refused"))
            allowed = ["all"] + (["news"] if claim.own is Need.ALL_KEYS else [])
            for label in allowed:
                reply = send(keys[label], sample(own))
                if isinstance(reply, redis.ResponseError) and not RAN.match(str(reply)):
                    wrong.append((label, claim.spec.display_name, str(reply)))
            reply = send(keys["shared_all"], sample(shared))
            if claim.shared is Need.DENIED:
                if not is_noperm(reply):
                    wrong.append(("shared_all", claim.spec.display_name, "not refused"))
            elif isinstance(reply, redis.ResponseError):
                wrong.append(("shared_all", claim.spec.display_name, str(reply)))
        own.function_flush()
    assert wrong == []


def test_commands_needing_patterns_only_are_not_refused_by_the_gateway(
    keys: dict[str, redis.Redis],
) -> None:
    """Sent bare (Redis answers most with an arity error): never refused to a key with every
    permission, and never refused to a key limited to patterns for want of allkeys."""
    wrong = []
    for claim in CLAIMS:
        if claim.own is not Need.PATTERNS or claim.spec.name in NOT_SENT_BARE:
            continue
        args = bare(claim)
        replies = {"all": send(keys["all"], args), "app_channels": send(keys["app_channels"], args)}
        if claim.spec.name == "multi":
            for label in replies:
                send(keys[label], ["DISCARD"])
        if claim.shared is not Need.DENIED:
            replies["shared_all"] = send(keys["shared_all"], args)
            if claim.spec.name == "multi":
                send(keys["shared_all"], ["DISCARD"])
        for label, reply in replies.items():
            if label == "app_channels" and str(reply) == "No permissions to access a key":
                continue  # a key argument is missing: no pattern can match it
            if is_noperm(reply):
                wrong.append((label, claim.spec.display_name, str(reply)))
    assert wrong == []
