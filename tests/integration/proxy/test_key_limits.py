"""Per-key and per-instance limits through a real gateway (static keys file), with redis-py
and raw sockets: commands per second, concurrent connections, request size (docs/limits.md).

Rates are small and bursts exact; recovery is awaited by polling, never timed.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis
from redis.maint_notifications import MaintNotificationsConfig

from redisgate import metrics
from redisgate.launcher.redis import RedisServer
from tests.integration.proxy.conftest import run_gateway
from tests.integration.proxy.test_limits import (
    NO_RETRY,
    raw_client,
    read_until_closed,
    recv_exactly,
    wait_for,
)

RATE_LIMITED = "max requests limit exceeded"
# redis-py sends CLIENT SETINFO (twice) and a maintenance-notifications handshake on connect,
# and every command after AUTH counts: these tests turn those off so that a burst is exactly
# the commands written here.
QUIET = {
    "driver_info": None,
    "maint_notifications_config": MaintNotificationsConfig(enabled=False),
}


def test_key_burst_passes_then_is_refused_then_recovers(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = {"key:main": {"ops_per_second": 5, "burst": 3}}
    with (
        run_gateway(redis_server, tmp_path, limits=limits) as gw,
        gw.client(retry=NO_RETRY, **QUIET) as r,
    ):
        before = metrics.LIMITED["ops_per_second"]
        # The AUTH itself was not counted (nobody is known before it); PING is, as every command.
        assert r.set("k", "v") and r.get("k") == b"v" and r.ping()
        with pytest.raises(redis.ResponseError, match=RATE_LIMITED) as refused:
            r.get("k")
        assert "limit 5 commands per second, burst 3" in str(refused.value)
        assert metrics.LIMITED["ops_per_second"] == before + 1

        def served() -> bool:
            try:
                return r.get("k") == b"v"
            except redis.ResponseError:
                return False

        wait_for(served, "a token after the refill")


def test_pipeline_beyond_the_burst_gets_its_replies_then_errors_in_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = {"key:main": {"ops_per_second": 1, "burst": 10}}
    with run_gateway(redis_server, tmp_path, limits=limits) as gw, gw.client(**QUIET) as r:
        pipe = r.pipeline(transaction=False)
        for i in range(100):
            pipe.set(f"k{i}", i)
        replies = pipe.execute(raise_on_error=False)
        assert replies[:10] == [True] * 10
        assert all(
            isinstance(e, redis.ResponseError) and RATE_LIMITED in str(e) for e in replies[10:]
        )
        with gw.direct() as direct:
            assert direct.dbsize() == 10 and direct.get("k9") == b"9" and not direct.get("k10")


def test_instance_bucket_is_shared_by_its_keys_and_the_stricter_limit_wins(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = {"main": {"ops_per_second": 1, "burst": 4}, "key:main": {"ops_per_second": 1000}}
    with (
        run_gateway(redis_server, tmp_path, scopes={"other": "+@all ~*"}, limits=limits) as gw,
        gw.client(retry=NO_RETRY, **QUIET) as a,
        gw.scoped_client("other", retry=NO_RETRY, **QUIET) as b,
    ):
        assert a.get("x") is None and b.get("x") is None and a.get("x") is None
        assert b.get("x") is None
        for client in (a, b):
            with pytest.raises(redis.ResponseError, match=RATE_LIMITED):
                client.get("x")


def auth_reply(port: int, token: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"AUTH " + token.encode() + b"\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        assert chunk
        reply += chunk
    return sock, reply


def test_connections_beyond_the_key_cap_are_refused_at_auth_until_one_closes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = {"key:main": {"max_connections": 2}}
    with run_gateway(redis_server, tmp_path, limits=limits) as gw:
        token = gw.tokens["main"]
        first, second = auth_reply(gw.port, token), auth_reply(gw.port, token)
        assert first[1] == second[1] == b"+OK\r\n"
        third, reply = auth_reply(gw.port, token)
        assert reply == b"-ERR max concurrent connections exceeded (limit 2)\r\n"
        third.sendall(b"GET k\r\n")  # still open, still unauthenticated
        assert recv_exactly(third, 34) == b"-NOAUTH Authentication required.\r\n"
        first[0].close()
        second[0].sendall(b"PING\r\n")
        assert recv_exactly(second[0], 7) == b"+PONG\r\n"

        def admitted() -> bool:
            third.sendall(b"AUTH " + token.encode() + b"\r\n")
            line = b""
            while not line.endswith(b"\r\n"):
                line += third.recv(4096)
            return line == b"+OK\r\n"

        wait_for(admitted, "the closed connection to be forgotten")
        second[0].close()
        third.close()
        with gw.client() as r:  # a client library sees the refusal as an error, too
            assert r.ping()


def test_request_over_the_key_size_limit_is_refused_from_its_header(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = {"key:main": {"max_request_bytes": 1024}}
    with run_gateway(redis_server, tmp_path, limits=limits) as gw:
        with gw.client() as r:
            assert r.set("k", b"x" * 900)
        before = metrics.LIMITED["max_request_bytes"]
        with raw_client(gw.port, gw.tokens["main"]) as sock:
            # A header announcing 100 MB and a few bytes of it: the rest is never sent.
            sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\nxxxx")
            assert read_until_closed(sock) == (
                b"-ERR max request size exceeded (limit 1024 bytes)\r\n"
            )
        assert metrics.LIMITED["max_request_bytes"] == before + 1
        with gw.direct() as direct:
            assert direct.strlen("k") == 900


def test_a_command_refused_inside_multi_aborts_the_transaction(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = {"key:main": {"ops_per_second": 1, "burst": 3}}
    with run_gateway(redis_server, tmp_path, limits=limits) as gw:
        with raw_client(gw.port, gw.tokens["main"]) as sock:
            sock.sendall(b"MULTI\r\nSET a 1\r\nSET a 2\r\nSET a 3\r\nEXEC\r\n")
            expected = (
                b"+OK\r\n+QUEUED\r\n+QUEUED\r\n"
                b"-ERR max requests limit exceeded (limit 1 commands per second, burst 3)\r\n"
                b"-EXECABORT Transaction discarded because of previous errors.\r\n"
            )
            assert recv_exactly(sock, len(expected)) == expected
        with gw.direct() as direct:
            assert direct.get("a") is None  # nothing ran


def test_reset_frees_the_connection_for_another_client(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = {"main": {"max_connections": 1}}
    with run_gateway(redis_server, tmp_path, limits=limits) as gw:
        token = gw.tokens["main"]
        with raw_client(gw.port, token) as first:
            second, reply = auth_reply(gw.port, token)
            with second:
                assert reply == b"-ERR max concurrent connections exceeded (limit 1)\r\n"
                first.sendall(b"RESET\r\n")
                assert recv_exactly(first, 8) == b"+RESET\r\n"
                second.sendall(b"HELLO 3 AUTH default " + token.encode() + b"\r\n")
                assert recv_exactly(second, 1) == b"%"  # the HELLO map: admitted


def test_refusals_are_exported_to_prometheus(redis_server: RedisServer, tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    limits = {"key:main": {"ops_per_second": 0}}
    with run_gateway(redis_server, tmp_path, limits=limits) as gw:
        before = REGISTRY.get_sample_value(
            "redisgate_limit_rejections_total", {"kind": "ops_per_second"}
        )
        with raw_client(gw.port, gw.tokens["main"]) as sock:
            sock.sendall(b"PING\r\n")
            assert recv_exactly(sock, 5) == b"-ERR "
        after = REGISTRY.get_sample_value(
            "redisgate_limit_rejections_total", {"kind": "ops_per_second"}
        )
        assert before is not None and after == before + 1
