"""`HttpFrontDoor`'s endpoints driven with a scripted caller in place of the gateway's
command path: what each endpoint asks the caller to run, in which order, and what it answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from redisgate.config.load import load_settings
from redisgate.proxy.clients.http_front_door import HttpFrontDoor

NOPERM_MULTI = b"-NOPERM this user has no permissions to run the 'multi' command\r\n"


class ScriptedCaller:
    """Answers MULTI with `multi_reply`, queues the rest and runs them at EXEC; records what
    it was asked to run."""

    def __init__(self, multi_reply: bytes = b"+OK\r\n") -> None:
        self.multi_reply = multi_reply
        self.ran: list[list[bytes]] = []

    async def call(self, args: Sequence[bytes]) -> bytes:
        return (await self.call_all([args]))[0]

    async def call_all(self, commands: Sequence[Sequence[bytes]]) -> list[bytes]:
        replies = []
        for args in commands:
            self.ran.append(list(args))
            if args[0] == b"MULTI":
                replies.append(self.multi_reply)
            elif args[0] == b"EXEC":
                queued = len(self.ran) - 2 - self.ran.index([b"MULTI"])  # not MULTI, EXEC
                replies.append(b"*%d\r\n" % queued + b"+OK\r\n" * queued)
            else:
                replies.append(b"+QUEUED\r\n")
        return replies


def door() -> HttpFrontDoor:
    return HttpFrontDoor(SimpleNamespace(settings=load_settings(env={})))


def body_of(response: web.Response) -> Any:
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


async def test_a_transaction_runs_its_commands_inside_multi() -> None:
    caller = ScriptedCaller()
    body = b'[["set","a","1"],["set","b","2"]]'
    response = await door()._transaction(caller, body, base64=False)
    assert (response.status, body_of(response)) == (200, [{"result": "OK"}, {"result": "OK"}])
    assert caller.ran == [[b"MULTI"], [b"set", b"a", b"1"], [b"set", b"b", b"2"], [b"EXEC"]]


async def test_a_refused_multi_runs_none_of_the_commands() -> None:
    """MULTI refused (the key's scope, a rate limit): the commands must not run one by one,
    outside any transaction, while the client is told the transaction failed."""
    caller = ScriptedCaller(NOPERM_MULTI)
    body = b'[["set","a","1"],["set","b","2"]]'
    response = await door()._transaction(caller, body, base64=False)
    assert response.status == 400
    assert body_of(response) == {"error": NOPERM_MULTI[1:-2].decode()}
    assert caller.ran == [[b"MULTI"]]
