"""SIGTERM in the middle of a load loses no counted usage: every command a client got an
answer to is in `usage_daily` once the `redisgate proxy` process has exited, and nothing else.

Real process, real PostgreSQL and redis-server; clients on raw sockets keep pipelines of INCR
going until the gateway closes them, counting the replies they read.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable

import redis

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.wire.encode import encode_command
from redisgate.store import db
from tests.e2e.test_proxy_process import Proxy, start_proxy, wait_for
from tests.integration.proxy.test_pg_source import DB_INDEX, backend_of, new_instance, new_key

__all__ = ["start_proxy"]  # a fixture

CLIENTS = 6
DEPTH = 8  # commands per pipeline


class Loader(threading.Thread):
    """AUTH, then pipelines of INCR until the connection ends; counts whole replies."""

    def __init__(self, port: int, token: str, key: bytes) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.key = port, token, key
        self.answered = 0
        self.started_load = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=20) as sock:
            reader = sock.makefile("rb")
            sock.sendall(encode_command([b"AUTH", self.token.encode()]))
            assert reader.readline() == b"+OK\r\n"
            pipeline = encode_command([b"INCR", self.key]) * DEPTH
            while True:
                try:
                    sock.sendall(pipeline)
                except OSError:
                    return  # closed by the gateway
                for _ in range(DEPTH):
                    line = reader.readline()
                    if not line.endswith(b"\r\n"):
                        return  # the gateway closed the connection
                    assert line.startswith(b":"), line
                    self.answered += 1
                    self.started_load.set()


async def test_sigterm_mid_load_keeps_every_answered_command_in_usage(
    database_url: str, redis_server: RedisServer, start_proxy: Callable[..., Proxy]
) -> None:
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance)
        proxy = start_proxy("--database-url", database_url, "--port", "0")
        port = proxy.port()
        names = [b"e2e:sigterm:%d" % i for i in range(CLIENTS)]
        loaders = [Loader(port, key.token, name) for name in names]
        for loader in loaders:
            loader.start()
        wait_for(lambda: all(x.started_load.is_set() for x in loaders), "the load to start")
        wait_for(lambda: sum(x.answered for x in loaders) > 2_000, "some load")
        proxy.proc.send_signal(signal.SIGTERM)  # while every client has a pipeline going
        assert proxy.wait(30) == 0
        for loader in loaders:
            loader.join(20)
            assert not loader.is_alive()
        counted = await conn.fetchval(
            "SELECT coalesce(sum(commands), 0) FROM usage_daily WHERE key_id = $1", key.key_id
        )
    answered = sum(x.answered for x in loaders)
    with redis.Redis(port=redis_server.port, password=redis_server.password, db=DB_INDEX) as direct:
        ran = sum(int(direct.get(name) or 0) for name in names)
        direct.delete(*names)
    assert ran == answered  # every command that ran was answered (graceful drain)
    assert counted == answered  # and counted: nothing lost at SIGTERM, nothing extra
    print(f"\n{answered} commands answered and counted across SIGTERM")
