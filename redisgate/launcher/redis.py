"""Run a real redis-server on loopback: for `redisgate dev`, for tests, for local instances."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from redisgate.errors import ServiceError
from redisgate.launcher.binaries import find_redis_server
from redisgate.launcher.process import ManagedProcess, free_port

# Ports picked by free_port() can be taken before redis-server binds them; retry that race.
_BIND_RETRIES = 3


class RedisServer:
    """One redis-server with its own folder, config file, password and log.

    `persistent=False` (tests) turns RDB and AOF off; `persistent=True` (the dev stack)
    snapshots to the folder so a restart keeps the data.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        password: str | None = None,
        binary: str = "redis-server",
        persistent: bool = False,
        host: str = "127.0.0.1",
        extra_config: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.requested_port = port
        self.port = port
        self.host = host
        self.password = password if password is not None else secrets.token_urlsafe(24)
        self.binary = binary
        self.persistent = persistent
        self.extra_config = extra_config or {}
        self.process: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"<RedisServer {self.host}:{self.port} {self.process!r}>"

    @property
    def url(self) -> str:
        return f"redis://default:{self.password}@{self.host}:{self.port}/0"

    def _write_config(self) -> Path:
        lines = {
            "bind": self.host,
            "port": str(self.port),
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": str(self.data_dir),
            "requirepass": self.password,
            "save": '"3600 1 300 100 60 10000"' if self.persistent else '""',
            "appendonly": "no",
            "logfile": '""',
            "sanitize-dump-payload": "yes",  # as the local provisioner's servers
            **self.extra_config,
        }
        path = self.data_dir / "redis.conf"
        path.write_text("".join(f"{k} {v}\n" for k, v in lines.items()))
        path.chmod(0o600)
        return path

    def start(self, timeout_s: float = 30.0) -> RedisServer:
        """Start and wait until it answers PING; raise ServiceError quoting its log if not."""
        binary = find_redis_server(self.binary)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = _BIND_RETRIES if self.requested_port == 0 else 1
        for attempt in range(attempts):
            self.port = self.requested_port or free_port(self.host)
            config = self._write_config()
            self.process = ManagedProcess(
                "redis-server", [str(binary), str(config)], self.data_dir / "redis.log"
            )
            self.process.start()
            try:
                self.process.wait_ready(self.ping, timeout_s, f"answering PING on port {self.port}")
                return self
            except ServiceError as exc:
                self.process.stop()
                if "Address already in use" not in str(exc) or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> bool:
        """True when the server answers AUTH + PING with +PONG (not -LOADING)."""
        auth = f"AUTH {self.password}\r\nPING\r\n".encode()
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(auth)
                data = b""
                while data.count(b"\r\n") < 2:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return False
                    data += chunk
        except OSError:
            return False
        return data.endswith(b"+PONG\r\n")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
