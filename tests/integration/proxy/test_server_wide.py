"""Server-wide state on an instance that owns its server: what one key changes there, every
other key's commands run with (issue 13, item 4).

A private redis-server (functions and the script cache are server-wide, so the session's
shared one is left alone) behind one gateway with two instances on it: `own` (the instance
owns its server) and `shared` (marked as one db of a server other tenants share).
"""

# redis-py leaves execute_command untyped.
# mypy: allow-untyped-calls

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from redisgate.launcher.redis import RedisServer
from tests.integration.proxy.conftest import RunningGateway, run_gateway

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
