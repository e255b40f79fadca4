"""The static keys file, changed under live sessions: a removed key's sessions close, a
re-scoped key's next command is judged by its new scope (as with the control plane's NOTIFY)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redisgate import api_key_format
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.keys.static import _dump, _load_raw, remove_key
from tests.integration.proxy.conftest import run_gateway


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s}s"
        time.sleep(0.05)


@pytest.mark.slow
def test_removed_and_rescoped_keys_apply_to_live_sessions(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with run_gateway(redis_server, tmp_path, scopes={"app": "+@all ~app:*"}) as gw:
        scoped = gw.scoped_client("app", retry=Retry(NoBackoff(), 0))
        main = gw.client(retry=Retry(NoBackoff(), 0))
        assert scoped.set("app:1", "v") and main.ping()
        # re-scope "app" to read-only by editing the file (as an operator would)
        data = _load_raw(gw.keys_file)
        app_id = api_key_format.key_id_of(gw.scoped["app"].encode())
        data["keys"][app_id]["scopes"] = "+@read ~app:* resetchannels"
        time.sleep(1.1)  # the file's mtime must differ for the reload to notice
        _dump(gw.keys_file, data)

        def denied() -> bool:
            try:
                scoped.set("app:1", "w")
            except redis.exceptions.NoPermissionError:
                return True
            return False

        eventually(denied)
        assert scoped.get("app:1") in (b"v", b"w")  # the same connection, reads allowed
        # remove the main key: its live session closes
        main_id = api_key_format.key_id_of(gw.tokens["main"].encode())
        assert main_id is not None
        remove_key(gw.keys_file, main_id)

        def closed() -> bool:
            try:
                main.ping()
            except (redis.ConnectionError, redis.AuthenticationError):
                return True
            return False

        eventually(closed)
        assert scoped.get("app:1") is not None  # other keys carry on
