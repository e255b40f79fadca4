"""Stateful sessions through the gateway: transactions, pub/sub, blocking, scripts, tracking."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import redis

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.wire.replies import ReplyFramer
from redisgate.scopes import PRESETS
from tests.integration.proxy.conftest import RunningGateway, run_gateway
from tests.integration.proxy.test_basics import gateway_and_redis, raw_exchange


def wait_for(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_transaction(gw: RunningGateway) -> None:
    r = gw.client()
    pipe = r.pipeline(transaction=True)
    pipe.set("t1", "a").incr("t2").get("t1")
    assert pipe.execute() == [True, 1, b"a"]
    wait_for(lambda: gw.dedicated_in_use() == 0)  # the dedicated connection went back


def test_watch_conflict_aborts_the_transaction(gw: RunningGateway) -> None:
    r, other = gw.client(), gw.client()
    r.set("balance", 10)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        assert int(pipe.get("balance")) == 10
        other.set("balance", 99)  # someone else changes it between WATCH and EXEC
        pipe.multi()
        pipe.set("balance", 11)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("balance") == b"99"
    with r.pipeline() as pipe:  # and without interference it commits
        pipe.watch("balance")
        pipe.multi()
        pipe.incr("balance")
        assert pipe.execute() == [100]


def test_exec_without_multi_and_errors_inside(gw: RunningGateway) -> None:
    r = gw.client()
    with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
        r.execute_command("EXEC")
    pipe = r.pipeline()
    pipe.set("x", 1).lpush("x", "oops")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        pipe.execute()
    assert r.get("x") == b"1" and r.ping()


@pytest.mark.parametrize("protocol", [2, 3])
def test_pubsub_channels_patterns_and_unsubscribe(gw: RunningGateway, protocol: int) -> None:
    sub = gw.client(protocol=protocol)
    pub = gw.client()
    ps = sub.pubsub()
    ps.subscribe("news")
    ps.psubscribe("sport.*")
    ps.ssubscribe("shard-news")
    confirmations = [ps.get_message(timeout=2) for _ in range(3)]
    assert [m["type"] for m in confirmations] == ["subscribe", "psubscribe", "ssubscribe"]
    assert pub.publish("news", "hello") == 1
    assert pub.publish("sport.tennis", "ace") == 1
    assert pub.spublish("shard-news", "sharded") == 1
    got = [ps.get_message(timeout=2) for _ in range(3)]
    assert [(m["type"], m["data"]) for m in got] == [
        ("message", b"hello"),
        ("pmessage", b"ace"),
        ("smessage", b"sharded"),
    ]
    ps.unsubscribe()
    ps.punsubscribe()
    ps.sunsubscribe()
    leaving = [ps.get_message(timeout=2) for _ in range(3)]
    assert {m["type"] for m in leaving} == {"unsubscribe", "punsubscribe", "sunsubscribe"}
    assert pub.publish("news", "nobody") == 0
    ps.close()
    wait_for(lambda: gw.dedicated_in_use() == 0)


def test_resp3_push_mixed_with_replies(gw: RunningGateway) -> None:
    token = gw.tokens["main"].encode()
    reply = raw_exchange(
        gw.port,
        b"HELLO 3 AUTH default " + token + b"\r\nSUBSCRIBE c\r\nPING\r\nGET nothing\r\n"
        b"UNSUBSCRIBE c\r\nSET k v\r\nGET k\r\nQUIT\r\n",
    )
    assert reply.startswith(b"%7\r\n")  # the HELLO map
    rest = reply[reply.index(b"$7\r\nmodules\r\n*0\r\n") + len(b"$7\r\nmodules\r\n*0\r\n") :]
    assert rest == (
        b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
        b"+PONG\r\n_\r\n"
        b">3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n"
        b"+OK\r\n$1\r\nv\r\n+OK\r\n"
    )


def test_resp2_subscriber_mode_rules(gw: RunningGateway) -> None:
    ours, redis_own = gateway_and_redis(
        gw,
        b"SUBSCRIBE a b\r\nPING\r\nGET x\r\nPSUBSCRIBE p*\r\nUNSUBSCRIBE\r\nPING\r\n"
        b"PUNSUBSCRIBE\r\nUNSUBSCRIBE\r\nGET x\r\nQUIT\r\n",
    )
    assert b"Can't execute 'get'" in ours and ours.endswith(b"$-1\r\n+OK\r\n")
    assert ours == redis_own


def test_blocking_pop_released_by_another_client(gw: RunningGateway) -> None:
    waiter, pusher = gw.client(), gw.client()
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(waiter.blpop(["jobs"], timeout=10)))
    thread.start()
    wait_for(lambda: gw.dedicated_in_use() == 1)
    assert pusher.get("unrelated") is None  # shared traffic flows while one client blocks
    pusher.rpush("jobs", "job-1")
    thread.join(10)
    assert result == [(b"jobs", b"job-1")]
    assert waiter.set("after", 1) and waiter.get("after") == b"1"
    wait_for(lambda: gw.dedicated_in_use() == 0)
    assert waiter.blpop(["empty"], timeout=0.1) is None  # a timeout answers too


def test_eval_and_functions_on_a_dedicated_server(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    scripts = {"scripts": PRESETS["full"] + " +@scripting"}  # scripting is opt-in
    with run_gateway(redis_server, tmp_path, scopes=scripts) as gw:
        _eval_and_functions(gw.scoped_client("scripts"))
        with pytest.raises(redis.exceptions.NoPermissionError, match="'eval' command"):
            gw.client().eval("return 1", 0)  # the full preset alone grants no scripting


def _eval_and_functions(r: redis.Redis) -> None:
    assert r.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "ek", "ev") == b"OK"
    sha = r.script_load("return redis.call('GET', KEYS[1])")
    assert r.evalsha(sha, 1, "ek") == b"ev"
    library = (
        "#!lua name=gwlib\nredis.register_function('twice', function(keys, args) "
        "return tonumber(args[1]) * 2 end)"
    )
    assert r.function_load(library, replace=True) == b"gwlib"
    assert r.fcall("twice", 0, 21) == 42
    r.function_delete("gwlib")


def test_client_tracking_with_resp3(gw: RunningGateway) -> None:
    ours, redis_own = gateway_and_redis(
        gw,
        b"CLIENT TRACKING ON\r\nGET tracked\r\nSET tracked new\r\nGET tracked\r\n"
        b"CLIENT TRACKING OFF\r\nQUIT\r\n",
        resp3=True,
    )
    assert b">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n" in ours
    assert ours == redis_own


def test_client_tracking_bcast(gw: RunningGateway) -> None:
    # BCAST invalidations are sent from Redis's event loop, after the replies: read until both
    # have arrived rather than relying on their order relative to the replies.
    token = gw.tokens["main"].encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(
            b"HELLO 3 AUTH default " + token + b"\r\nCLIENT TRACKING ON BCAST PREFIX "
            b"user:\r\nSET user:1 a\r\nSET other b\r\nSET user:2 c\r\n"
        )
        framer, frames = ReplyFramer(), []
        deadline = time.monotonic() + 5
        pushed = b""
        while b"user:2" not in pushed and time.monotonic() < deadline:
            frames += framer.feed(sock.recv(65536))
            pushed = b"".join(f for f in frames if f.startswith(b">"))
    assert b"invalidate" in pushed and b"user:1" in pushed and b"other" not in pushed
    assert [f for f in frames if not f.startswith(b">")][1:] == [b"+OK\r\n"] * 4


def test_client_reply_off_and_skip(gw: RunningGateway) -> None:
    token = gw.tokens["main"].encode()
    reply = raw_exchange(
        gw.port,
        b"AUTH " + token + b"\r\nCLIENT REPLY OFF\r\nSET a 1\r\nCLIENT REPLY ON\r\n"
        b"CLIENT REPLY SKIP\r\nGET a\r\nGET a\r\nQUIT\r\n",
    )
    assert reply == b"+OK\r\n+OK\r\n$1\r\n1\r\n+OK\r\n"


def test_reset_leaves_a_fresh_unauthenticated_connection(gw: RunningGateway) -> None:
    token = gw.tokens["main"].encode()
    reply = raw_exchange(
        gw.port,
        b"AUTH "
        + token
        + b"\r\nMULTI\r\nSET r 1\r\nRESET\r\nGET r\r\nAUTH "
        + token
        + b"\r\nGET r\r\nQUIT\r\n",
    )
    assert reply == (
        b"+OK\r\n+OK\r\n+QUEUED\r\n+RESET\r\n-NOAUTH Authentication required.\r\n"
        b"+OK\r\n$-1\r\n+OK\r\n"
    )


def test_hello_switching_protocol_mid_pipeline_keeps_order(gw: RunningGateway) -> None:
    # RESP2 and RESP3 commands travel on different upstream connections: the switch must not
    # let a later command overtake an earlier one.
    body = b"".join(b"SET k%d v%d\r\n" % (i, i) for i in range(200))
    body += b"HELLO 3\r\n" + b"".join(b"GET k%d\r\n" % i for i in range(200)) + b"QUIT\r\n"
    ours, redis_own = gateway_and_redis(gw, body)
    hello_at = ours.index(b"%7\r\n")
    assert ours[:hello_at] == b"+OK\r\n" * 200
    gets = ours[ours.index(b"$7\r\nmodules\r\n*0\r\n") + 17 :]
    assert (
        gets == b"".join(b"$%d\r\nv%d\r\n" % (len(str(i)) + 1, i) for i in range(200)) + b"+OK\r\n"
    )
    assert redis_own.endswith(gets)


def test_a_refused_command_inside_multi_aborts_the_transaction(gw: RunningGateway) -> None:
    r = gw.client()
    r.set("k", "before")
    pipe = r.pipeline()
    pipe.set("k", "after").execute_command("CONFIG", "SET", "maxmemory", "0")
    with pytest.raises(redis.ResponseError, match=r"EXECABORT|no permissions"):
        pipe.execute()
    assert r.get("k") == b"before"  # as on Redis: nothing of the transaction ran
    wait_for(lambda: gw.dedicated_in_use() == 0)


def test_client_tracking_redirect_to_the_clients_own_other_connection(gw: RunningGateway) -> None:
    # RESP2 client-side caching: invalidations go to another connection of the same client,
    # subscribed to __redis__:invalidate; the gateway translates its client id.
    listener = gw.client(protocol=2).pubsub()
    listener.subscribe("__redis__:invalidate")
    assert listener.get_message(timeout=2)["type"] == "subscribe"
    tracker, writer = gw.client(protocol=2, single_connection_client=True), gw.client()
    target = next(c for c in gw.gateway.clients if c.dedicated is not None)
    assert target.session is not None
    tracker.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", target.session.client_id)
    assert tracker.get("cached") is None  # now tracked
    writer.set("cached", "new")
    message = None
    for _ in range(50):
        message = listener.get_message(timeout=0.1)
        if message and message["type"] == "message":
            break
    assert message is not None and message["channel"] == b"__redis__:invalidate"
    assert message["data"] == [b"cached"]
    with pytest.raises(redis.ResponseError, match="redirect to does not exist"):
        writer.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", 999_999)
    listener.close()
    tracker.close()
