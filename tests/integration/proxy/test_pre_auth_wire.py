"""Before AUTH, the gateway answers what a password-protected redis-server answers, byte for
byte: the same sequence sent on a fresh connection to each, every byte read until each closes.

Redis checks a command's name and arity first, then refuses all but AUTH, HELLO, QUIT and RESET
with -NOAUTH (`processCommand`); its framing limits for unauthenticated clients are smaller.
Each case ends with QUIT, so both sides close once they have answered everything (a case that
ends in a protocol error is closed earlier, by both).

One known difference is left out: a `POST` or `Host:` line after other commands in the same
read. Both close the connection unanswered, but Redis also drops the replies it owed for the
commands before it (they never left its buffer); the gateway sends those first.
"""

from __future__ import annotations

import socket

import pytest

from redisgate.launcher.redis import RedisServer
from tests.integration.proxy.conftest import RunningGateway
from tests.integration.proxy.test_limits import read_until_closed

CASES: dict[str, bytes] = {
    "ping": b"PING\r\n",
    "ping resp": b"*1\r\n$4\r\nPING\r\n",
    "ping with a message": b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n",
    "ping with too many": b"PING a b\r\n",
    "get": b"GET k\r\n",
    "get without its key": b"GET\r\n",
    "set with options": b"SET k v EX 10\r\n",
    "unknown command": b"FOO bar baz\r\n",
    "unknown command, long args": b"NOPE " + b"x" * 200 + b" y\r\n",
    "container alone": b"CONFIG\r\n",
    "unknown subcommand": b"CONFIG FOO\r\n",
    "known subcommand": b"CONFIG GET maxmemory\r\n",
    "client id": b"CLIENT ID\r\n",
    "client setname": b"CLIENT SETNAME app\r\n",
    "select": b"SELECT 0\r\n",
    "multi": b"MULTI\r\nSET k v\r\nEXEC\r\n",
    "exec alone": b"EXEC\r\n",
    "discard": b"DISCARD\r\n",
    "command": b"COMMAND\r\n",
    "info": b"INFO\r\n",
    "subscribe": b"SUBSCRIBE news\r\n",
    "echo without its message": b"ECHO\r\n",
    "hello": b"HELLO\r\n",
    "hello 3": b"HELLO 3\r\n",
    "hello 2 setname": b"HELLO 2 SETNAME app\r\n",
    "hello 4": b"HELLO 4\r\n",
    "hello not a number": b"HELLO x\r\n",
    "hello auth without its arguments": b"HELLO 3 AUTH\r\n",
    "hello with a wrong password": b"HELLO 3 AUTH default wrong\r\n",
    "hello 2 with a wrong password": b"HELLO 2 AUTH someone wrong SETNAME app\r\n",
    "auth alone": b"AUTH\r\n",
    "auth with a wrong password": b"AUTH wrong\r\n",
    "auth with a user and a wrong password": b"AUTH default wrong\r\n",
    "auth with too many": b"AUTH a b c\r\n",
    "reset": b"RESET\r\n",
    "quit with an argument": b"QUIT x\r\n",
    "empty lines": b"\r\n\r\n",
    "inline with quotes": b'SET "a b" "c"\r\n',
    "unbalanced quotes": b'SET "a b\r\n',
    "bad bulk after a command": b"*1\r\n$4\r\nPING\r\n*2\r\nxx\r\n",
    "unauthenticated multibulk length": b"*11\r\n",
    "unauthenticated multibulk length, at the limit": b"*10\r\n" + b"$1\r\nx\r\n" * 10,
    "unauthenticated bulk length": b"*2\r\n$4\r\nAUTH\r\n$16385\r\n",
    "invalid multibulk length": b"*3000000000\r\n",
    "invalid bulk length": b"*1\r\n$-5\r\n",
    "an HTTP request": b"POST / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "an HTTP request's host line": b"Host: example.com\r\n",
    "several at once": b"PING\r\nGET a\r\nAUTH wrong\r\nHELLO 3\r\nFOO\r\nRESET\r\n",
}


def exchange(port: int, payload: bytes) -> bytes:
    """Send `payload` then QUIT; everything read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload + b"QUIT\r\n")
        return read_until_closed(sock)


@pytest.mark.parametrize("payload", list(CASES.values()), ids=list(CASES))
def test_before_auth_the_gateway_answers_as_redis_does(
    gw: RunningGateway, redis_server: RedisServer, payload: bytes
) -> None:
    assert redis_server.password  # Redis with a password: the server the gateway stands for
    theirs = exchange(redis_server.port, payload)
    ours = exchange(gw.port, payload)
    assert ours == theirs
