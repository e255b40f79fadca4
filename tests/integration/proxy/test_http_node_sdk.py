"""The official Node SDKs against the HTTP command API: `@upstash/redis` 1.39.0 and
`@upstash/ratelimit` 2.2.0 (pinned in tests/node/package-lock.json, installed by
tests/node/install.py), run by node against a real gateway and redis-server.

Each test runs one script of tests/node, which reads the gateway's URL and a key from
UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (as the SDK's `Redis.fromEnv()` does),
runs many checks through the SDK and prints their results as JSON lines; the assertions are
here. Scripts that need the test mid-way (to publish over RESP, to revoke their key) are
steered through stdin. The SDK's defaults stay on (base64 response encoding, auto-pipelining)
unless a test turns them off; its retries are off, so a dropped connection is a failure.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import select
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from redisgate import api_key_format
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.keys.static import remove_key
from redisgate.scopes import PRESETS, prefix_scope
from tests.integration.proxy.conftest import RunningGateway, run_gateway
from tests.node.install import NodeUnavailable, ensure_installed, node

SCRIPTS = Path(__file__).resolve().parents[2] / "node"
SCOPES = {
    "scripts": PRESETS["full"] + " +@scripting",
    "ratelimit": prefix_scope("rl:") + " +@scripting",  # scripts, on the limiters' keys only
    "reader": PRESETS["read-only"],
    "doomed": PRESETS["full"],  # revoked by its test
    "no_multi": "+get +set allkeys",  # no MULTI (@transaction)
}
LIMITS = {"key:limited": {"ops_per_second": 1, "burst": 3}}
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
RATE_LIMITED = "ERR max requests limit exceeded (limit 1 commands per second, burst 3)"
UNAUTHORIZED = "Unauthorized: the token is not a valid API key (unknown, revoked or expired)"


@pytest.fixture(scope="module")
def node_binary() -> str:
    """node, with the SDKs installed: a test that needs them fails (never skips) without."""
    try:
        ensure_installed()
        return node()
    except NodeUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, node_binary: str) -> Iterator[RunningGateway]:
    with RedisServer(tmp_path_factory.mktemp("node-sdk-redis")) as backend:
        folder = tmp_path_factory.mktemp("node-sdk")
        with run_gateway(
            backend, folder, instances=("main", "limited"), scopes=SCOPES, limits=LIMITS
        ) as running:
            yield running


class NodeScript:
    """A script of tests/node running under node; its stdout read one JSON line at a time."""

    def __init__(self, node_binary: str, gw: RunningGateway, name: str, token: str, **env: str):
        self.name = name
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "NODE_SDK"))},
            "UPSTASH_REDIS_REST_URL": gw.http_url,
            "UPSTASH_REDIS_REST_TOKEN": token,
            **env,
        }
        self.process = subprocess.Popen(
            [node_binary, str(SCRIPTS / name)],
            cwd=SCRIPTS,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._buffer = b""

    def read(self, timeout_s: float = 15.0) -> Any:
        """The next JSON line the script printed."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"printed nothing more within {timeout_s:g} s")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    self.process.wait(5)
                    self._fail(f"ended (exit {self.process.returncode}) before its result")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def finish(self, timeout_s: float = 10.0) -> None:
        """Wait for the script to end; it must end well, having printed nothing more."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        returncode = self.process.wait(timeout_s)
        rest = self._buffer + (self.process.stdout.read() if self.process.stdout else b"")
        if returncode != 0 or rest.strip():
            self._fail(f"ended with exit {returncode}, printing {rest!r} after its results")

    def _fail(self, what: str) -> None:
        self._stderr.seek(0)
        stderr = self._stderr.read().decode("utf-8", "replace")
        pytest.fail(f"tests/node/{self.name} {what}; its stderr:\n{stderr}")

    def __enter__(self) -> NodeScript:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            if stream is not None:
                stream.close()


def run_script(
    node_binary: str, gw: RunningGateway, name: str, token: str | None = None, **env: str
) -> Any:
    """Run a script that prints one JSON result and ends; that result."""
    with NodeScript(node_binary, gw, name, token or gw.tokens["main"], **env) as script:
        result = script.read()
        script.finish()
    return result


def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s: {what}"
        time.sleep(0.02)


def command_stats(gw: RunningGateway) -> dict[str, dict[str, int]]:
    with gw.direct() as direct:
        info = direct.info("commandstats")
    return {name.removeprefix("cmdstat_"): stats for name, stats in info.items()}


# --- Data types ---------------------------------------------------------------------------------

BINARY = {  # written over RESP, read through the SDK
    "bin:nul": b"a\x00b\x00",
    "bin:invalid": b"\xff\xfe\x00ok",  # not UTF-8: each bad byte becomes U+FFFD
    "bin:utf8": "h\u00e9llo \U0001f600".encode(),
    "bin:b64": b"T0s=",  # base64 of OK, itself
}
BINARY_TEXT = ["a\x00b\x00", "\ufffd\ufffd\x00ok", "h\u00e9llo \U0001f600", "T0s="]
DOC = {"name": "ada", "langs": ["en", "fr"], "nested": {"n": 1, "ok": True, "none": None}}


@pytest.mark.parametrize(
    "env",
    [{}, {"NODE_SDK_ENCODING": "off", "NODE_SDK_AUTO_PIPELINE": "off"}],
    ids=["base64-auto-pipelined", "plain-one-request-each"],
)
def test_data_types_round_trip(gw: RunningGateway, node_binary: str, env: dict[str, str]) -> None:
    with gw.direct() as direct:
        direct.flushdb()
    with gw.client() as resp:
        resp.mset(BINARY)
        resp.hset("bin:hash", mapping={b"f\x00": b"\x00v", "k": "\u00e9"})
        resp.rpush("bin:list", "OK", "PONG", b"\xc3")

    r = run_script(node_binary, gw, "data_types.mjs", **env)

    binary = r.pop("binary")
    assert binary == {
        "get": BINARY_TEXT,
        "mget": BINARY_TEXT,
        "hgetall": {"f\x00": "\x00v", "k": "\u00e9"},
        "lrange": ["OK", "PONG", "\ufffd"],
    }
    assert r.pop("ttl") in (99, 100)
    assert r == {
        # strings
        "set": "OK",
        "get": "hello",
        "setNx": None,
        "setGet": "hello",
        "append": 6,
        "strlen": 6,
        "getrange": "wor",
        "setEx": "OK",
        "incr": 1,
        "incrby": 42,
        "incrbyfloat": 1.5,
        "decr": 41,
        "mset": "OK",
        "mget": ["a", "b", None],
        "getMissing": None,
        "getdel": "a",
        "exists": 2,
        "del": 1,
        "type": "string",
        "utf8": "OK",
        "utf8Back": "nul\x00 \u00e9 \U0001f600",
        "leadingZero": "OK",
        "leadingZeroBack": "0123",  # not a number that reads back as itself: kept as text
        "empty": "",
        "okValue": "OK",
        "expire": 1,
        "pttl": True,
        "persist": 1,
        "ttlPersisted": -1,
        # hashes
        "hset": 3,
        "hget": "ada",
        "hgetNumber": 36,
        "hgetJson": ["x", "y"],
        "hgetall": {"name": "ada", "age": 36, "tags": ["x", "y"]},
        "hmget": {"name": "ada", "nope": None},
        "hincrby": 37,
        "hexists": 1,
        "hlen": 3,
        "hkeys": ["age", "name", "tags"],
        "hdel": 1,
        "hgetallMissing": None,
        # lists
        "rpush": 3,
        "lpush": 4,
        "lrange": ["a", "b", "c", "OK"],
        "llen": 4,
        "lindex": "OK",
        "lpop": "a",
        "rpopCount": ["OK", "c"],
        "lrangeAfter": ["b"],
        # sets
        "sadd": 3,
        "saddAgain": 1,
        "smembers": ["a", "b", "c", "d"],
        "sismember": 1,
        "smismember": [1, 0],
        "scard": 4,
        "srem": 1,
        "sinter": ["b", "c", "d"],
        # sorted sets
        "zadd": 2,
        "zaddMore": 1,
        "zrange": ["one", "two", "three"],
        "zrangeWithScores": ["one", 1, "two", 2.5, "three", 3],
        "zrangeRev": ["three", "two"],
        "zscore": 2.5,
        "zincrby": 11,
        "zrank": 2,
        "zcard": 3,
        "zrem": 1,
        "zrangeByScore": ["two", "one"],
        # streams
        "xadd": ["1-1", "string"],
        "xlen": 2,
        "xrange": {"1-1": {"a": 1, "b": "two"}},
        # the keyspace
        "scan": ["0", ["s:empty", "s:zero"]],
        "keys": ["s:zero"],
        "hscan": ["0", ["name", "ada"]],
        # JSON values
        "jsonSet": "OK",
        "jsonGet": DOC,
        "jsonArray": [1, "two", False],
        "jsonNumber": 42,
        "jsonFloat": 1.25,
        "jsonBool": True,
        "jsonMget": [DOC, 42, None],
        "jsonNumberType": "number",
    }
    with gw.direct() as direct:  # what the SDK wrote, byte for byte
        assert direct.get("s:utf8") == "nul\x00 \u00e9 \U0001f600".encode()
        assert json.loads(direct.get("j:doc") or b"") == DOC
        assert direct.get("j:doc") == json.dumps(DOC, separators=(",", ":")).encode()
        assert direct.mget("j:num", "j:float", "j:bool", "s:f") == [b"42", b"1.25", b"true", b"1.5"]
        assert direct.hgetall("h") == {b"name": b"ada", b"age": b"37"}
        assert direct.zrange("z", 0, -1, withscores=True) == [(b"two", 2.5), (b"one", 11.0)]
        assert direct.get("s:ok") == b"OK"
        assert direct.get("s:empty") == b""
        assert direct.xrange("x", "-", "+")[1][1] == {b"c": b'{"d":true}'}


# --- Batches: auto-pipelining, pipelines, transactions ------------------------------------------


def test_pipelines_and_transactions(gw: RunningGateway, node_binary: str) -> None:
    with gw.direct() as direct:
        direct.flushdb()

    r = run_script(node_binary, gw, "batches.mjs")

    # ten commands issued together: one /pipeline request for the reads, one for the writes;
    # the WRONGTYPE among them fails that command alone
    assert r["autoRequests"] == 2
    assert r["auto"] == [
        {"value": "OK"},
        {"value": 1},
        {"value": 2},
        {"value": "one"},
        {"error": "UpstashError", "message": f"Command failed: {WRONGTYPE}"},
        {"value": 1},
        {"value": None},
        {"value": 2},
        {"value": "hi"},
        {"value": "PONG"},
    ]
    assert (r["bulkRequests"], r["bulkAllOk"], r["bulkReadBack"]) == (3, True, True)
    assert (r["largeLength"], r["largeBack"]) == (6 * 128 * 1024, True)
    assert r["pipeline"] == ["OK", 2, 2, 2, ["b", "a"]]
    assert r["pipelineError"] == {
        "error": "UpstashError",
        "message": f"Command 2 [ incr ] failed: {NOT_INTEGER}",
    }
    assert r["pipelineKeepErrors"] == [{"result": 4}, {"error": NOT_INTEGER}, {"result": 4}]
    assert r["afterPipelineError"] == 4  # the failing pipeline's other commands ran

    assert r["multi"] == ["OK", 2, 2, 1]
    assert r["multiError"] == {
        "error": "UpstashError",
        "message": f"Command 2 [ incr ] failed: {NOT_INTEGER}",
    }
    assert r["multiErrorApplied"] == ["x", "y"]  # a runtime error undoes nothing, as in Redis
    assert r["multiKeepErrors"] == [{"result": 3}, {"error": NOT_INTEGER}]

    assert r["wrongType"] == {"error": "UpstashError", "message": f"Command failed: {WRONGTYPE}"}
    assert r["unknownCommand"] == {
        "error": "UpstashError",
        "message": "ERR unknown command 'nosuchcommand', with args beginning with: 'x' , "
        'command was: ["nosuchcommand","x"]',
    }
    assert r["wrongArity"] == {
        "error": "UpstashError",
        "message": "ERR wrong number of arguments for 'get' command, command was: [\"get\"]",
    }
    with gw.direct() as direct:
        assert direct.get("b:large") == 'x\u00e9"\\\n\x00'.encode() * 128 * 1024
        assert direct.get("bulk:2000") == b"2000"
        assert direct.mget("b:m", "b:m2", "b:m3", "b:h") == [b"3", b"x", b"y", None]
        assert direct.hgetall("b:h") == {b"f": b"v"}
    assert gw.call(gw.dedicated_in_use) == 0  # the transactions' connections went back


# --- Scripts ------------------------------------------------------------------------------------


def test_scripts_with_a_key_that_may_run_them(gw: RunningGateway, node_binary: str) -> None:
    nonce = uuid.uuid4().hex
    with gw.direct() as direct:
        direct.flushdb()
        direct.config_resetstat()

    r = run_script(node_binary, gw, "scripts.mjs", gw.scoped["scripts"], NODE_SDK_NONCE=nonce)

    stats = command_stats(gw)
    assert r["eval"] == ["sc:k", "a", 42]
    assert r["evalWrites"] == "v"
    # a table holding a status reply, a nil (false) and an error (redis.pcall)
    assert r["evalNested"] == [1, "a", ["OK", None], NOT_INTEGER]
    assert r["evalError"]["error"] == "UpstashError"
    assert r["evalError"]["message"].startswith(f"Command failed: {NOT_INTEGER} script: ")
    assert r["evalFlagged"] == "flagged"
    # createScript: EVALSHA, NOSCRIPT, EVAL; then EVALSHA finds it
    assert r["plain"] == ["xk", "yk"]
    assert r["flagged"] == [7, 7, 7]
    source = r["flaggedSource"]
    assert source.startswith("#!lua flags=allow-key-locking,no-writes\n")
    theirs = hashlib.sha1(source.encode()).hexdigest()
    ours = hashlib.sha1(source.replace("allow-key-locking,", "").encode()).hexdigest()
    assert r["flaggedSha"] == theirs
    assert r["scriptLoad"] == theirs  # SCRIPT LOAD answers with the client's SHA-1
    assert r["scriptExists"] == [1, 1, 0]
    assert r["evalshaUnknown"] == {
        "error": "UpstashError",
        "message": "Command failed: NOSCRIPT No matching script. Please use EVAL.",
    }
    with gw.direct() as direct:  # Redis holds the script without the flag, never with it
        assert direct.script_exists(ours, theirs) == [True, False]
    # each created script: one EVALSHA refused (NOSCRIPT) and one EVAL; then EVALSHA only
    assert stats["evalsha"]["failed_calls"] == 3  # the two scripts' first, the unknown SHA-1
    assert stats["evalsha"]["calls"] - stats["evalsha"]["failed_calls"] == 1 + 2
    assert stats["eval"]["calls"] == 5 + 2  # redis.eval five times, the two fallbacks


# --- Refusals -----------------------------------------------------------------------------------


def test_refusals_are_upstash_errors_with_the_gateways_words(
    gw: RunningGateway, node_binary: str
) -> None:
    with gw.direct() as direct:
        direct.flushdb()
    r = run_script(
        node_binary,
        gw,
        "errors.mjs",
        NODE_SDK_READER_TOKEN=gw.scoped["reader"],
        NODE_SDK_NO_MULTI_TOKEN=gw.scoped["no_multi"],
        NODE_SDK_LIMITED_TOKEN=gw.tokens["limited"],
    )

    def error(message: str) -> dict[str, str]:
        return {"error": "UpstashError", "message": message}

    no_set = "NOPERM this user has no permissions to run the 'set' command"
    no_eval = (
        "NOPERM this user has no permissions to run the 'eval' command: this API key's scope "
        "does not allow scripting; add +@scripting to its scope (docs/scopes.md)"
    )
    # auto-pipelined: an error entry of /pipeline; alone: a 4xx answer naming the command
    assert r["reader_auto"] == {"get": {"value": None}, "set": error(f"Command failed: {no_set}")}
    assert r["reader_single"] == {
        "get": {"value": None},
        "set": error(f'{no_set}, command was: ["set","e:k","v"]'),
    }
    # a transaction holding a command the key may not run runs none of them (EXECABORT)
    discarded = f'{no_set}, command was: [["get","e:k"],["set","e:k","v"]]'
    assert r["readerMulti_auto"] == r["readerMulti_single"] == error(discarded)
    assert r["noMulti"] == error(
        "NOPERM this user has no permissions to run the 'multi' command, "
        'command was: [["set","e:t1","1"],["set","e:t2","2"]]'
    )
    assert r["noScripting_auto"] == error(f"Command failed: {no_eval}")
    assert r["noScripting_single"] == error(f'{no_eval}, command was: ["eval","return 1",0]')
    # a burst of 3: the first three of one request run, the rest and what follows are refused
    assert (
        r["limitedAuto"]
        == [{"value": n} for n in (1, 2, 3)] + [error(f"Command failed: {RATE_LIMITED}")] * 5
    )
    assert r["limitedSingle"] == [error(f'{RATE_LIMITED}, command was: ["incr","e:n"]')] * 3
    assert r["readerSubscribe"] == error(
        "NOPERM this user has no permissions to run the 'subscribe' command, command was: []"
    )
    assert gw.call(lambda: len(gw.gateway.callers)) == 0
    null = "ERR unsupported arg type: null (send strings, numbers or booleans)"
    assert r["nullArg_auto"] == error(f"Command failed: {null}")
    assert r["nullArg_single"] == error(f'{null}, command was: ["set","e:null",null]')
    with gw.direct() as direct:
        assert direct.exists("e:k", "e:null", "e:t1", "e:t2") == 0
    with gw.direct("limited") as direct:
        assert direct.get("e:n") == b"3"  # refused commands never reached Redis
    assert r["badToken"] == {
        "auto": error(f'{UNAUTHORIZED}, command was: [["get","e:k"]]'),
        "single": error(f'{UNAUTHORIZED}, command was: ["get","e:k"]'),
    }


# --- @upstash/ratelimit -------------------------------------------------------------------------


def test_ratelimit_limits_through_the_gateway(gw: RunningGateway, node_binary: str) -> None:
    prefix = f"rl:{uuid.uuid4().hex[:8]}:"
    with gw.direct() as direct:
        direct.config_resetstat()

    r = run_script(
        node_binary,
        gw,
        "ratelimit.mjs",
        gw.scoped["ratelimit"],
        NODE_SDK_PREFIX=prefix,
        NODE_SDK_RESET_TOKEN=gw.scoped["scripts"],
    )

    stats = command_stats(gw)
    allowed = [(True, 2), (True, 1), (True, 0), (False, 0)]
    refused_scan = "Command failed: ERR The user executing the script can't run this command"
    for name in ("fixedWindow", "slidingWindow", "tokenBucket"):
        result = r[name]
        calls = [(c["success"], c["remaining"]) for c in result["calls"]]
        assert calls == allowed, name
        # every answer came from Redis: none is the library failing open ("timeout")
        assert {(c["limit"], c["reason"]) for c in result["calls"]} == {(3, None)}, name
        assert result["otherUser"] is True, name
        assert result["remaining"] == 0, name
        # resetUsedTokens SCANs in Lua, which a key limited to patterns may not
        assert result["resetRefused"]["message"].startswith(refused_scan), name
        assert result["stillLimited"] is False, name
        assert result["afterReset"] == {"success": True, "remaining": 2}, name
    with gw.direct() as direct:
        assert direct.keys(f"{prefix}*"), "the limiters' state is in Redis"
        assert not direct.keys("@upstash/ratelimit*")
    # Ten EVALSHAs per limiter (six limit(), getRemaining, three resetUsedTokens). Each of
    # the seven scripts (limit and getRemaining of each limiter, and the reset) missed once
    # and was sent with EVAL (the flag taken out); then its hard-coded SHA-1 found it. The
    # other failures are the two resets refused after the first (the first was an EVAL).
    assert (stats["evalsha"]["calls"], stats["evalsha"]["failed_calls"]) == (30, 7 + 2)
    assert (stats["eval"]["calls"], stats["eval"]["failed_calls"]) == (7, 1)


# --- Pub/sub ------------------------------------------------------------------------------------

PUBLISHED = [  # (channel, payload) published over RESP; what the SDK's listeners get
    ("chat", "hello,world", "hello,world"),  # commas in the payload are fine
    ("chat", '{"j":1}', {"j": 1}),  # JSON is parsed
    ("chat", "42", 42),
    ("chat", "h\u00e9llo \U0001f600", "h\u00e9llo \U0001f600"),
    ("chat", "line1\nline2", "line1\\nline2"),  # one event line: the newline is escaped
    ("chat", b"\xff!", "\ufffd!"),  # not UTF-8
    ("caf\u00e9 room", "x", "x"),
    ("50%off", "y", "y"),
    ("news.sport", '{"goal":2}', {"goal": 2}),  # a pmessage payload must be JSON (the SDK)
    ("news.weather", '"sunny"', "sunny"),
]


def subscribers(gw: RunningGateway) -> list[dict[str, Any]]:
    """The backend's connections subscribed to something."""
    with gw.direct() as direct:
        return [c for c in direct.client_list() if c["sub"] != "0" or c["psub"] != "0"]


def test_subscribe_gets_what_resp_clients_publish(gw: RunningGateway, node_binary: str) -> None:
    env = {"NODE_SDK_EXPECT": str(len(PUBLISHED))}
    with NodeScript(node_binary, gw, "subscribe.mjs", gw.tokens["main"], **env) as script:
        assert script.read() == {"ready": {"subscribe": [1, 1, 1], "psubscribe": [1]}}
        # each stream is a caller of the gateway, on a dedicated connection subscribed in Redis
        assert gw.call(lambda: len(gw.gateway.callers)) == 4
        assert (
            sorted((c["sub"], c["psub"]) for c in subscribers(gw))
            == [("0", "1")] + [("1", "0")] * 3
        )
        with gw.client() as resp:
            receivers = [resp.publish(channel, payload) for channel, payload, _ in PUBLISHED]
        assert receivers == [1] * len(PUBLISHED)

        got = script.read()
        assert got["error"] == []
        by_channel = operator.itemgetter("channel")  # one stream each: they may interleave
        assert sorted(got["message"], key=by_channel) == sorted(
            (
                {"channel": channel, "message": message}
                for channel, _, message in PUBLISHED
                if not channel.startswith("news.")
            ),
            key=by_channel,
        )
        assert got["pmessage"] == [
            {"pattern": "news.*", "channel": channel, "message": message}
            for channel, _, message in PUBLISHED
            if channel.startswith("news.")
        ]

        # unsubscribe() aborts the streams' requests, and the process lives on: the gateway
        # notices the clients left and lets go of everything the streams held
        assert script.read() == {"unsubscribed": True}
        eventually(lambda: gw.call(lambda: len(gw.gateway.callers)) == 0, "callers closed")
        eventually(lambda: not subscribers(gw), "no subscriber left in Redis")
        assert gw.call(gw.dedicated_in_use) == 0
        with gw.client() as resp:
            assert resp.pubsub_numsub("chat", "caf\u00e9 room") == [
                (b"chat", 0),
                ("caf\u00e9 room".encode(), 0),
            ]
            assert resp.pubsub_numpat() == 0
        script.send("exit")
        script.finish()


# --- A revoked key ------------------------------------------------------------------------------


def test_a_revoked_key_is_refused_at_its_next_request(gw: RunningGateway, node_binary: str) -> None:
    token = gw.scoped["doomed"]
    key_id = api_key_format.key_id_of(token.encode())
    assert key_id is not None
    with NodeScript(node_binary, gw, "revoked.mjs", token) as script:
        assert script.read() == {
            "ready": {
                "before": {"auto": {"value": "OK"}, "single": {"value": "v"}},
                "subscribed": [1],
            }
        }
        assert gw.call(lambda: len(gw.gateway.callers)) == 1  # the subscription
        remove_key(gw.keys_file, key_id)
        # the gateway rereads the keys file every second; then the key is gone from its
        # cache, and its open subscription ends
        eventually(
            lambda: gw.call_async(gw.gateway.source.get_key(key_id)) is None, "keys file reread"
        )
        eventually(lambda: gw.call(lambda: len(gw.gateway.callers)) == 0, "stream closed")
        assert not subscribers(gw)
        script.send("go")
        after = script.read()["after"]
        script.finish()

    def refused(command: str) -> dict[str, str]:
        return {"error": "UpstashError", "message": f"{UNAUTHORIZED}, command was: {command}"}

    assert after == {
        "auto": refused('[["get","r:k"]]'),
        "single": refused('["get","r:k"]'),
        "pipeline": refused('[["get","r:k"],["incr","r:n"]]'),
        "publish": refused('["publish","revoked-chat","x"]'),
    }
    with gw.direct() as direct:
        assert direct.get("r:n") is None
