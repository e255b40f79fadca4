"""The session applies the key's scope: denials as -NOPERM (counted), pub/sub listings
filtered, and the fast path only for commands the scope allows by name alone."""

from __future__ import annotations

from prometheus_client import REGISTRY

from redisgate.backends import Backend
from redisgate.proxy.clients.decisions import FORWARD, Answer, Authenticate, Forward, Pin, Reset
from redisgate.proxy.clients.session import Session
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.keys.principals import Instance, Principal
from redisgate.proxy.wire.encode import encode_command
from redisgate.proxy.wire.requests import Command, RequestFramer
from redisgate.scopes import compile_scope

TABLE = CommandTable.from_snapshot()
TOKEN = b"rg_abcdefghijkl_" + b"s" * 43


def cmd(*args: bytes | str) -> Command:
    framer = RequestFramer()
    framer.feed(encode_command([a.encode() if isinstance(a, str) else a for a in args]))
    command = framer.next_command()
    assert command is not None
    return command


def session_with(scope: str) -> Session:
    session = Session(TABLE, client_id=1)
    decision = session.handle(cmd("AUTH", TOKEN))
    assert isinstance(decision, Authenticate)
    request = decision.request
    backend = Backend(host="10.0.0.5", port=6379)
    principal = Principal("abcdefghijkl", "web", Instance("c", "c", backend), compile_scope(scope))
    assert session.auth_result(request, principal) == b"+OK\r\n"
    return session


def denied_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("redisgate_commands_denied_total", {"reason": reason})
    return value or 0.0


def test_denials_are_noperm_and_counted() -> None:
    session = session_with("+@read ~app:*")
    before = denied_count("key"), denied_count("command")
    assert session.handle(cmd("GET", "other")) == Answer(
        b"-NOPERM No permissions to access a key\r\n"
    )
    assert session.handle(cmd("SET", "app:1", "v")) == Answer(
        b"-NOPERM this user has no permissions to run the 'set' command\r\n"
    )
    assert (denied_count("key"), denied_count("command")) == (before[0] + 1, before[1] + 1)
    assert isinstance(session.handle(cmd("GET", "app:1")), Forward)  # it goes on after a denial


def test_the_gateways_own_denials_keep_their_reason() -> None:
    session = session_with("+@all allkeys")
    before = denied_count("gateway")
    decision = session.handle(cmd("CONFIG", "SET", "maxmemory", "1"))
    assert isinstance(decision, Answer) and b"through RedisGate: " in decision.reply
    assert denied_count("gateway") == before + 1


def test_fast_path_respects_the_scope() -> None:
    restricted = session_with("+@all ~app:*")
    # GET has a key: not on the fast path for a restricted key
    assert isinstance(restricted.handle(cmd("GET", "other")), Answer)
    full = session_with("+@all allkeys allchannels")
    assert isinstance(full.handle(cmd("GET", "other")), Forward)


def test_denied_inside_multi_aborts_the_transaction() -> None:
    from redisgate.proxy.backend.pinning import DedicatedTracker

    session = session_with("+@all ~app:*")
    session.tracker = tracker = DedicatedTracker(2)
    tracker.on_send(b"multi", [b"MULTI"])
    assert session.handle(cmd("GET", "other")) == Answer(
        b"-NOPERM No permissions to access a key\r\n"
    )
    decision = session.handle(cmd("EXEC"))
    assert isinstance(decision, Pin) and decision.raw == encode_command([b"DISCARD"])
    transform = decision.transform
    assert transform is not None and transform(b"+OK\r\n").startswith(b"-EXECABORT")


def test_pubsub_listings_show_only_allowed_channels() -> None:
    session = session_with("+@all allkeys &news.*")
    decision = session.handle(cmd("PUBSUB", "CHANNELS"))
    assert isinstance(decision, Forward) and decision.transform is not None
    transform = decision.transform
    reply = b"*3\r\n$7\r\nnews.uk\r\n$5\r\nsport\r\n$7\r\nnews.fr\r\n"
    assert transform(reply) == b"*2\r\n$7\r\nnews.uk\r\n$7\r\nnews.fr\r\n"
    assert transform(b"*0\r\n") == b"*0\r\n"
    assert session.handle(cmd("PUBSUB", "NUMSUB", "news.uk", "sport")) == Forward(
        encode_command([b"PUBSUB", b"NUMSUB", b"news.uk"])
    )
    assert session.handle(cmd("PUBSUB", "SHARDNUMSUB", "sport")) == Forward(
        encode_command([b"PUBSUB", b"SHARDNUMSUB"])  # Redis answers *0
    )
    # with allchannels nothing is rewritten
    everything = session_with("+@all allkeys allchannels")
    command = cmd("PUBSUB", "NUMSUB", "sport")
    assert everything.handle(command) == FORWARD[2]  # the command's own bytes


def test_reset_forgets_the_scope() -> None:
    session = session_with("+@all allkeys")
    assert session.handle(cmd("RESET")) == Reset(b"+RESET\r\n")
    decision = session.handle(cmd("GET", "k"))
    assert isinstance(decision, Answer) and decision.reply.startswith(b"-NOAUTH")


def test_client_tracking_is_refused_where_invalidations_would_leak_key_names() -> None:
    restricted = session_with("+@all ~app:*")
    decision = restricted.handle(cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "app:"))
    assert isinstance(decision, Answer)
    assert decision.reply.startswith(b"-NOPERM CLIENT TRACKING")
    assert b"outside this key's patterns" in decision.reply
    assert isinstance(restricted.handle(cmd("CLIENT", "TRACKING", "ON")), Pin)  # keys it read
    everything = session_with("+@all allkeys")
    assert isinstance(everything.handle(cmd("CLIENT", "TRACKING", "ON", "BCAST")), Pin)
    shared = Session(TABLE, client_id=2)
    decision = shared.handle(cmd("AUTH", TOKEN))
    assert isinstance(decision, Authenticate)
    request = decision.request
    backend = Backend(host="10.0.0.5", port=6379, db=3, shared=True)
    principal = Principal("abcdefghijkl", "web", Instance("c", "c", backend))
    shared.auth_result(request, principal)
    decision = shared.handle(cmd("CLIENT", "TRACKING", "ON"))
    assert isinstance(decision, Answer) and b"this server is shared" in decision.reply
