"""The HTTP command API through a real gateway and redis-server: the official Python SDK
(`upstash-redis`, sync and asyncio, and `upstash-ratelimit`) unchanged, raw HTTP for what
the SDK never sends (bad input, path style, binary bodies, CORS), server-sent event streams,
and the bounds a hostile caller meets. The JS SDK's tests are in test_http_node_sdk.py."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY, generate_latest
from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow, TokenBucket
from upstash_ratelimit.asyncio import Ratelimit as AsyncRatelimit
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis
from upstash_redis.errors import UpstashError

from redisgate import api_key_format, metrics
from redisgate.api_key_format import key_id_of
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.keys.static import remove_key, store_key
from tests.integration.proxy.conftest import RunningGateway, run_gateway

SCOPES = {
    "reader": "+@read allkeys",
    "scripts": "+@all allkeys allchannels",
    "app": "+@all ~app:* &news",
}
LIMITS = {"key:limited": {"ops_per_second": 5, "burst": 5}}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with RedisServer(tmp_path_factory.mktemp("http-redis")) as backend:
        folder = tmp_path_factory.mktemp("http-gateway")
        with run_gateway(
            backend,
            folder,
            instances=("main", "limited", "other"),
            scopes=SCOPES,
            limits=LIMITS,
            http_timeout_s=1.0,
            http_max_commands=50,
            http_cors_origins="https://app.example.com",
            max_request_bytes=4096,
        ) as running:
            yield running


_OPENED: list[Redis] = []


@pytest.fixture(autouse=True)
def close_sdk_clients() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def sdk(gw: RunningGateway, token: str, **kwargs: Any) -> Redis:
    """An SDK client (closed after the test), failing at once rather than retrying."""
    client = Redis(url=gw.http_url, token=token, rest_retries=0, allow_telemetry=False, **kwargs)
    _OPENED.append(client)
    return client


def call(
    gw: RunningGateway,
    method: str,
    path: str,
    body: bytes | object = None,
    token: str | None = "main",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, http.client.HTTPResponse]:
    """One raw request; the status, the JSON answer and the response. `token` is an instance
    name or label (its key is sent as a bearer token), a raw token, or None."""
    sent = dict(headers or {})
    if token is not None:
        key = gw.tokens.get(token) or gw.scoped.get(token) or token
        sent["Authorization"] = f"Bearer {key}"
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", gw.gateway.http_port, timeout=10)
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    answer = json.loads(raw) if raw else None
    if raw:
        assert response.getheader("Content-Type", "").startswith("application/json")
    return response.status, answer, response


def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# --- The Python SDK, unchanged ----------------------------------------------------------------


def test_the_sync_sdk_covers_the_data_types(gw: RunningGateway) -> None:
    r = sdk(gw, gw.tokens["main"])
    assert r.set("s", "v") is True and r.get("s") == "v"
    assert r.incrby("n", 5) == 5 and r.append("s", "w") == 2
    assert r.hset("h", values={"a": "1", "b": "é"}) == 2 and r.hgetall("h") == {"a": "1", "b": "é"}
    assert r.rpush("l", "a", "b", "c") == 3 and r.lrange("l", 0, -1) == ["a", "b", "c"]
    assert r.sadd("set", "x", "y") == 2 and sorted(r.smembers("set")) == ["x", "y"]
    assert r.zadd("z", {"a": 1.5, "b": 0.5}) == 2
    assert r.zrange("z", 0, -1, withscores=True) == [("b", 0.5), ("a", 1.5)]
    assert r.set("j", json.dumps({"k": [1, '\u0000\n"x']})) and json.loads(r.get("j")) == {
        "k": [1, '\u0000\n"x']
    }
    assert r.expire("s", 100) is True and 0 < r.ttl("s") <= 100
    assert r.ping() == "PONG" and r.echo("OK") == "OK"
    with gw.direct() as direct:  # the same data over RESP, byte for byte
        assert direct.get("j") == json.dumps({"k": [1, '\u0000\n"x']}).encode()
        assert direct.hget("h", "b") == "é".encode()


def test_without_base64_the_sdk_works_too(gw: RunningGateway) -> None:
    r = sdk(gw, gw.tokens["main"], rest_encoding=None)
    assert r.set("plain", "é ok") is True and r.get("plain") == "é ok"
    assert r.mget("plain", "nothing") == ["é ok", None]


def test_pipelines_run_in_order_and_report_each_error(gw: RunningGateway) -> None:
    r = sdk(gw, gw.tokens["main"])
    p = r.pipeline()
    p.set("p", "1")
    p.incr("p")
    p.get("p")
    assert p.exec() == [True, 2, "2"]
    status, answer, _ = call(
        gw, "POST", "/pipeline", [["SET", "p", "x"], ["INCR", "p"], ["GET", "p"]]
    )
    assert status == 200 and answer[0] == {"result": "OK"} and answer[2] == {"result": "x"}
    assert answer[1]["error"].startswith("ERR value is not an integer")
    assert call(gw, "POST", "/pipeline", [])[:2] == (200, [])  # the SDK's empty pipeline


def test_transactions_run_atomically_and_a_queueing_error_discards_all(gw: RunningGateway) -> None:
    r = sdk(gw, gw.tokens["main"])
    t = r.multi()
    t.set("t", "1")
    t.incr("t")
    assert t.exec() == [True, 2]
    status, answer, _ = call(gw, "POST", "/multi-exec", [["SET", "t", "a"], ["INCR", "t"]])
    assert status == 200 and answer[0] == {"result": "OK"}
    assert answer[1]["error"].startswith("ERR value is not an integer")  # ran, and failed
    status, answer, _ = call(gw, "POST", "/multi-exec", [["SET", "t", "b"], ["NOSUCH"]])
    assert status == 400 and "unknown command" in answer["error"]
    assert r.get("t") == "a"  # nothing of the discarded one ran
    status, answer, _ = call(gw, "POST", "/multi-exec", [["SET", "t", "c"], ["GET", None]])
    assert status == 400 and "EXECABORT" in answer["error"] and r.get("t") == "a"
    assert gw.dedicated_in_use() == 0


def test_scripts_run_for_a_key_that_allows_them(gw: RunningGateway) -> None:
    r = sdk(gw, gw.scoped["scripts"])
    assert r.eval("return {1, 'a', redis.status_reply('OK')}", keys=[], args=[]) == [1, "a", "OK"]
    sha = r.script_load("return KEYS[1] .. ARGV[1]")
    assert r.evalsha(sha, keys=["k"], args=["v"]) == "kv"
    with pytest.raises(UpstashError, match=r"NOPERM.*scripting"):
        sdk(gw, gw.tokens["main"]).eval("return 1", keys=[], args=[])


def test_errors_reach_the_sdk_as_redis_says_them(gw: RunningGateway) -> None:
    r = sdk(gw, gw.tokens["main"])
    r.set("str", "x")
    with pytest.raises(UpstashError, match="WRONGTYPE"):
        r.lpush("str", "a")
    with pytest.raises(UpstashError, match="NOPERM"):
        sdk(gw, gw.scoped["reader"]).set("str", "y")
    assert r.get("str") == "x"
    with pytest.raises(UpstashError, match="Unauthorized"):
        sdk(gw, "rg_nosuchkeyid_" + "x" * 43).get("str")


def test_a_rate_limited_key_gets_429_and_per_entry_errors(gw: RunningGateway) -> None:
    statuses = [call(gw, "POST", "/", ["PING"], token="limited")[0] for _ in range(12)]
    assert statuses.count(429) >= 1 and statuses[0] == 200
    time.sleep(1.2)  # the bucket refills
    status, answer, _ = call(gw, "POST", "/pipeline", [["PING"]] * 10, token="limited")
    assert status == 200 and {"result": "PONG"} in answer
    assert any("max requests limit exceeded" in entry.get("error", "") for entry in answer)


@pytest.mark.parametrize(
    "limiter", [FixedWindow(3, 10), SlidingWindow(3, 10), TokenBucket(3, 10, 3)]
)
def test_upstash_ratelimit_limits_through_the_gateway(gw: RunningGateway, limiter: Any) -> None:
    """Its scripts carry Upstash's `allow-key-locking` flag: the gateway takes it out."""
    limit = Ratelimit(
        redis=sdk(gw, gw.scoped["scripts"]), limiter=limiter, prefix=f"rl-{id(limiter)}"
    )
    assert [limit.limit("user").allowed for _ in range(4)] == [True, True, True, False]


def test_the_asyncio_sdk_and_ratelimit(gw: RunningGateway) -> None:
    async def run() -> list[Any]:
        async with AsyncRedis(
            url=gw.http_url, token=gw.scoped["scripts"], rest_retries=0, allow_telemetry=False
        ) as r:
            await r.set("a", "1")
            pipe = r.pipeline()
            pipe.incr("a")
            pipe.get("a")
            limit = AsyncRatelimit(redis=r, limiter=FixedWindow(2, 10), prefix="async-rl")
            allowed = [(await limit.limit("u")).allowed for _ in range(3)]
            return [await r.get("a"), await pipe.exec(), allowed]

    assert asyncio.run(run()) == ["1", [2, "2"], [True, True, False]]


# --- Raw HTTP: what the SDK never sends -------------------------------------------------------


def test_path_style_with_a_binary_body_round_trips_in_base64(gw: RunningGateway) -> None:
    value = bytes(range(256))
    status, answer, _ = call(gw, "POST", "/set/bin%2Fkey?EX=100", value)
    assert (status, answer) == (200, {"result": "OK"})
    status, answer, _ = call(gw, "GET", "/get/bin%2Fkey", headers={"Upstash-Encoding": "base64"})
    assert status == 200 and base64.b64decode(answer["result"]) == value
    with gw.direct() as direct:
        assert direct.get("bin/key") == value and 0 < direct.ttl("bin/key") <= 100
    assert call(gw, "GET", f"/get/bin%2Fkey?_token={gw.tokens['main']}", token=None)[0] == 200
    assert call(gw, "POST", "//pipeline", [["PING"]])[1] == [{"result": "PONG"}]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/", b"{bad", 400, "not valid JSON"),
        ("POST", "/", b'{"a":1}', 400, "JSON array"),
        ("POST", "/", b"[]", 400, "empty command"),
        ("POST", "/", b'["SET","k",null]', 400, "unsupported arg type: null"),
        ("POST", "/", b'["SET","k","\xff"]', 400, "not valid UTF-8"),
        ("POST", "/", b"", 400, "empty"),
        ("GET", "/", None, 400, "no command"),
        ("POST", "/pipeline", b'["GET","k"]', 400, "array of commands"),
        ("POST", "/pipeline", json.dumps([["PING"]] * 51).encode(), 413, "too many commands"),
        ("POST", "/", b'["NOSUCH","k"]', 400, "unknown command"),
        ("POST", "/", b'["MULTI"]', 400, "/multi-exec"),
        ("POST", "/", b'["SUBSCRIBE","c"]', 400, "/subscribe"),
        ("POST", "/", b'["CLIENT","REPLY","OFF"]', 400, "not available over HTTP"),
        ("POST", "/", b'["SET","k","' + b"x" * 70_000 + b'"]', 413, "too large"),
        ("POST", "/", b'["SET","k","' + b"x" * 5000 + b'"]', 400, "max request size exceeded"),
        ("DELETE", "/", None, 405, "not allowed"),
    ],
)
def test_bad_requests_get_a_clear_json_error_and_forward_nothing(
    gw: RunningGateway, method: str, path: str, body: bytes | None, status: int, words: str
) -> None:
    with gw.direct() as direct:
        direct.delete("k")
    got, answer, _ = call(gw, method, path, body)
    assert got == status and words in answer["error"], answer
    with gw.direct() as direct:
        assert not direct.exists("k")


def test_a_missing_re_scoped_or_revoked_token_takes_effect_on_the_next_request(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, http_port=0) as gw:
        assert call(gw, "POST", "/", ["PING"], token=None)[:2] == (
            401,
            {"error": "Unauthorized: send the API key as Authorization: Bearer <key>"},
        )
        r = sdk(gw, gw.tokens["main"])
        assert r.set("k", "1") is True
        key_id = key_id_of(gw.tokens["main"].encode())
        assert key_id is not None
        token = gw.tokens["main"]
        minted = api_key_format.MintedKey(key_id, token, api_key_format.digest(token))
        store_key(gw.keys_file, "main", "main-key", minted, "+@read allkeys")  # re-scoped
        wait_for(lambda: call(gw, "POST", "/", ["SET", "probe", "x"])[0] == 400)
        with pytest.raises(UpstashError, match="NOPERM"):
            r.set("k", "3")
        assert r.get("k") == "1"
        remove_key(gw.keys_file, key_id)  # revoked
        wait_for(lambda: call(gw, "POST", "/", ["PING"])[0] == 401)
        with pytest.raises(UpstashError, match="Unauthorized"):
            r.get("k")


def test_a_blocking_command_is_cut_off_at_the_request_timeout(
    gw: RunningGateway, redis_server: RedisServer
) -> None:
    started = time.monotonic()
    status, answer, _ = call(gw, "POST", "/", ["BLPOP", "nothing-comes", "0"])
    assert status == 504 and "http_timeout_s" in answer["error"]
    assert time.monotonic() - started < 5
    with redis.Redis(port=redis_server.port, password=redis_server.password) as direct:
        wait_for(lambda: int(direct.info("clients")["blocked_clients"]) == 0)
    wait_for(lambda: gw.dedicated_in_use() == 0)
    with gw.direct() as direct:
        direct.rpush("queue", "x")
    assert call(gw, "POST", "/", ["BLPOP", "queue", "0"])[1] == {"result": ["queue", "x"]}


def test_cors_is_answered_for_configured_origins_only(gw: RunningGateway) -> None:
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    status, _, response = call(gw, "OPTIONS", "/", token=None, headers=preflight)
    assert status == 204
    assert response.getheader("Access-Control-Allow-Origin") == "https://app.example.com"
    assert response.getheader("Access-Control-Allow-Headers") == "authorization, content-type"
    status, _, response = call(
        gw, "POST", "/", ["PING"], headers={"Origin": "https://app.example.com"}
    )
    assert response.getheader("Access-Control-Allow-Origin") == "https://app.example.com"
    evil = {**preflight, "Origin": "https://evil.example.com"}
    status, _, response = call(gw, "OPTIONS", "/", token=None, headers=evil)
    assert status == 403 and response.getheader("Access-Control-Allow-Origin") is None


# --- Server-sent events -----------------------------------------------------------------------


def read_events(sock: socket.socket, count: int) -> list[str]:
    """The next `count` `data:` lines of a stream (none is split over two calls: each
    call's events are read whole, and the test asks for exactly those)."""
    found: list[str] = []
    data = b""
    sock.settimeout(5)
    while len(found) < count:
        chunk = sock.recv(65536)
        assert chunk, f"the stream ended after {found}"
        data += chunk
        found = [
            line[6:]
            for line in data.decode("utf-8", "replace").split("\n")
            if line.startswith("data: ")
        ]
    return found


def open_stream(gw: RunningGateway, path: str, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.gateway.http_port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\nContent-Length: 2\r\n\r\n[]".encode()
    )
    return sock


def test_subscriptions_stream_messages_and_end_when_the_client_leaves(
    gw: RunningGateway, redis_server: RedisServer
) -> None:
    sock = open_stream(gw, "/subscribe/news", gw.scoped["app"])
    assert read_events(sock, 1) == ["subscribe,news,1"]
    with gw.scoped_client("app") as publisher:
        assert publisher.publish("news", "hello, world") == 1
        publisher.publish("news", "two\nlines")
    assert read_events(sock, 2) == ["message,news,hello, world", "message,news,two\\nlines"]
    patterns = open_stream(gw, "/psubscribe/n*", gw.scoped["scripts"])
    assert read_events(patterns, 1) == ["psubscribe,n*,1"]
    with gw.client() as other:
        other.publish("news", "p")
    assert read_events(patterns, 1) == ["pmessage,n*,news,p"]
    sock.close()
    patterns.close()
    with redis.Redis(port=redis_server.port, password=redis_server.password) as direct:
        wait_for(lambda: direct.pubsub_numsub("news")[0][1] == 0 and direct.pubsub_numpat() == 0)
    wait_for(lambda: gw.call(lambda: len(gw.gateway.callers)) == 0)
    wait_for(lambda: gw.dedicated_in_use() == 0)


def test_a_channel_outside_the_scope_is_refused_before_streaming(gw: RunningGateway) -> None:
    status, answer, _ = call(gw, "POST", "/subscribe/sports", b"[]", token="app")
    assert status == 400 and answer["error"].startswith("NOPERM")


def test_a_revoked_key_ends_its_stream(redis_server: RedisServer, tmp_path: Path) -> None:
    with run_gateway(redis_server, tmp_path) as gw:
        sock = open_stream(gw, "/subscribe/c", gw.tokens["main"])
        assert read_events(sock, 1) == ["subscribe,c,1"]
        key_id = key_id_of(gw.tokens["main"].encode())
        assert key_id is not None
        remove_key(gw.keys_file, key_id)
        sock.settimeout(10)
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):  # the chunked stream's last chunk
            chunk = sock.recv(65536)
            assert chunk, rest
            rest += chunk
        wait_for(lambda: gw.dedicated_in_use() == 0)
        sock.close()


def test_shutdown_ends_streams_and_requests_within_its_time(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, http_timeout_s=30) as gw:
        stream = open_stream(gw, "/subscribe/c", gw.tokens["main"])
        assert read_events(stream, 1) == ["subscribe,c,1"]
        blocked: list[Any] = []
        waiter = threading.Thread(
            target=lambda: blocked.append(call(gw, "POST", "/", ["BLPOP", "never", "0"])[0])
        )
        waiter.start()
        wait_for(lambda: gw.dedicated_in_use() == 2)
        started = time.monotonic()
        gw.call_async(gw.gateway.shutdown(timeout_s=1.0))
        assert time.monotonic() - started < 3
        rest = b""
        stream.settimeout(5)
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = stream.recv(65536)
            assert chunk, rest
            rest += chunk
        stream.close()
        waiter.join(10)
        assert blocked in ([503], [])  # told to retry, or its connection closed unanswered
        assert gw.call(lambda: len(gw.gateway.callers)) == 0


# --- Bounds against a hostile caller ----------------------------------------------------------


def test_connections_over_the_cap_are_refused_with_json(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, http_max_connections=2) as gw:
        held = [socket.create_connection(("127.0.0.1", gw.gateway.http_port)) for _ in range(2)]
        wait_for(lambda: gw.call(lambda: len(gw.gateway.http.server.connections)) == 2)
        status, answer, _ = call(gw, "POST", "/", ["PING"])
        assert status == 503 and "too many HTTP connections" in answer["error"]
        for sock in held:
            sock.close()
        wait_for(lambda: call(gw, "POST", "/", ["PING"])[0] == 200)


def test_a_connection_without_a_whole_request_in_auth_timeout_is_closed(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, auth_timeout_s=0.3) as gw:
        silent = socket.create_connection(("127.0.0.1", gw.gateway.http_port))
        slow = socket.create_connection(("127.0.0.1", gw.gateway.http_port))
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # and never the rest of its headers
        for sock in (silent, slow):
            sock.settimeout(5)
            assert sock.recv(100) == b""  # closed by the gateway
            sock.close()
        assert call(gw, "POST", "/", ["PING"])[1] == {"result": "PONG"}
        wait_for(lambda: gw.call(lambda: len(gw.gateway.http.server.connections)) == 0)
        assert metrics.REST_REQUESTS[("command", 200)] >= 1
        scraped = generate_latest(REGISTRY).decode()
        assert 'redisgate_rest_requests_total{endpoint="command",status="200"}' in scraped


def test_a_flooding_tenant_is_limited_while_another_is_served(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Tenant `flood` sends big pipelines on many connections as fast as it can, over its
    rate limit; tenant `main` keeps getting every answer, and the flood's refused commands
    are counted as limited and never reach Redis."""
    limits = {"key:flood": {"ops_per_second": 2000, "burst": 2000}}
    with run_gateway(redis_server, tmp_path, instances=("main", "flood"), limits=limits) as gw:
        stop = threading.Event()
        sent, refused = [0], [0]

        def flood() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", gw.gateway.http_port, timeout=30)
            body = json.dumps([["INCR", "n"]] * 500).encode()
            headers = {"Authorization": f"Bearer {gw.tokens['flood']}"}
            while not stop.is_set():
                conn.request("POST", "/pipeline", body=body, headers=headers)
                answer = json.loads(conn.getresponse().read())
                sent[0] += len(answer)
                refused[0] += sum(1 for entry in answer if "error" in entry)
            conn.close()

        threads = [threading.Thread(target=flood) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            for i in range(30):
                assert call(gw, "POST", "/", ["SET", "mine", str(i)])[1] == {"result": "OK"}
                assert call(gw, "POST", "/", ["GET", "mine"])[1] == {"result": str(i)}
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert refused[0] > 0
        with gw.direct("flood") as direct:  # each command ran once or was refused: none lost
            assert int(direct.get("n") or 0) == sent[0] - refused[0]
        assert gw.call(lambda: len(gw.gateway.callers)) == 0
