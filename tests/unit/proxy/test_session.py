"""Session: commands in, typed decisions (`clients.decisions`) out; no loop, no sockets."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from redisgate.backends import Backend
from redisgate.proxy.backend.pinning import DedicatedTracker
from redisgate.proxy.clients.decisions import (
    FORWARD,
    PIN,
    Answer,
    Authenticate,
    AuthRequest,
    Close,
    Forward,
    Pin,
    Reset,
)
from redisgate.proxy.clients.session import Session, State
from redisgate.proxy.commands import answers
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.keys.principals import Instance, Principal
from redisgate.proxy.wire.requests import Command, RequestFramer
from redisgate.scopes import PRESETS, compile_scope

TABLE = CommandTable.from_snapshot()

OK = b"+OK\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
NOPROTO = b"-NOPROTO unsupported protocol version\r\n"
HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    b"HELLO AUTH <user> <pass> option can be used to authenticate the client and "
    b"select the RESP protocol version at the same time\r\n"
)
BAD_NAME = b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
TOKEN = b"rg_abcdefghijkl_" + b"s" * 43


def wire(*args: bytes | str) -> bytes:
    """A command as a client library sends it (multibulk)."""
    items = [a.encode() if isinstance(a, str) else a for a in args]
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in items)


def cmd(*args: bytes | str) -> Command:
    framer = RequestFramer()
    framer.feed(wire(*args))
    command = framer.next_command()
    assert command is not None
    assert framer.next_command() is None
    return command


def err(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"


def hello_map(*, proto: int, client_id: int, resp3: bool) -> bytes:
    head = b"%7\r\n" if resp3 else b"*14\r\n"
    return head + (
        b"$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
        b"$5\r\nproto\r\n:%d\r\n$2\r\nid\r\n:%d\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
        b"$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n" % (proto, client_id)
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# The full preset with scripting granted: these tests are about routing, not scopes.
SCRIPTS_TOO = compile_scope(PRESETS["full"] + " +@scripting")


def principal(*, shared: bool = False, db: int = 0, key_name: str = "web") -> Principal:
    backend = Backend(host="10.0.0.5", port=6379, db=db, shared=shared)
    return Principal("abcdefghijkl", key_name, Instance("c", "c", backend), SCRIPTS_TOO)


def new_session(table: CommandTable = TABLE, clock: Clock | None = None) -> Session:
    return Session(
        table,
        client_id=42,
        peer="10.0.0.1:5000",
        local="10.0.0.2:6379",
        clock=clock or Clock(100.0),
    )


def ready(
    *, shared: bool = False, db: int = 0, table: CommandTable = TABLE, clock: Clock | None = None
) -> Session:
    session = new_session(table, clock)
    decision = session.handle(cmd("AUTH", TOKEN))
    assert isinstance(decision, Authenticate)
    assert session.auth_result(decision.request, principal(shared=shared, db=db)) == OK
    return session


def pin(session: Session, *commands: tuple[bytes | str, ...]) -> DedicatedTracker:
    """Give the session a dedicated connection (what the transport does) and send commands."""
    tracker = session.tracker = DedicatedTracker(session.protocol)
    for args in commands:
        command = cmd(*args)
        tracker.on_send(command.args[0].lower(), command.args)
    return tracker


def local(session: Session, *args: bytes | str) -> bytes:
    decision = session.handle(cmd(*args))
    assert isinstance(decision, Answer), decision
    return decision.reply


# --- Before AUTH ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("GET", "k"),
        ("set", "k", "v"),
        ("SELECT", "0"),
        ("CLIENT", "ID"),
        ("COMMAND",),
        ("INFO",),
        ("MULTI",),
        ("SUBSCRIBE", "c"),
        ("ACL", "WHOAMI"),
        ("PING",),
        ("ping", "hello"),
        ("PING", "a", "b"),
    ],
)
def test_before_auth_only_a_few_commands_are_served(args: tuple[str, ...]) -> None:
    session = new_session()
    assert session.handle(cmd(*args)) == Answer(NOAUTH)
    assert session.state is State.AUTH
    assert not session.authenticated


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        (
            ("nosuchcommand", "a"),
            b"-ERR unknown command 'nosuchcommand', with args beginning with: 'a' \r\n",
        ),
        (("GET",), b"-ERR wrong number of arguments for 'get' command\r\n"),
        (("CONFIG",), b"-ERR wrong number of arguments for 'config' command\r\n"),
        (("CONFIG", "nope"), b"-ERR unknown subcommand 'nope'. Try CONFIG HELP.\r\n"),
    ],
)
def test_before_auth_unknown_commands_and_arity_are_told_first(
    args: tuple[str, ...], reply: bytes
) -> None:
    """As on Redis: the command's name and arity are checked before authentication."""
    assert new_session().handle(cmd(*args)) == Answer(reply)


def test_quit_before_auth_closes_after_ok() -> None:
    session = new_session()
    assert session.handle(cmd("QUIT")) == Close(OK)
    assert session.state is State.CLOSING


def test_reset_before_auth() -> None:
    assert new_session().handle(cmd("reset")) == Reset(b"+RESET\r\n")


@pytest.mark.parametrize(
    ("args", "token"),
    [(("AUTH", TOKEN), TOKEN), (("auth", "someuser", TOKEN), TOKEN), (("Auth", ""), b"")],
)
def test_auth_asks_for_a_lookup_of_the_last_argument(
    args: tuple[bytes | str, ...], token: bytes
) -> None:
    decision = new_session().handle(cmd(*args))
    assert decision == Authenticate(AuthRequest(token=token))


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        (("AUTH",), b"-ERR wrong number of arguments for 'auth' command\r\n"),
        (("AUTH", "u", "p", "x"), b"-ERR syntax error\r\n"),
    ],
)
def test_auth_arity(args: tuple[str, ...], reply: bytes) -> None:
    assert new_session().handle(cmd(*args)) == Answer(reply)


@pytest.mark.parametrize("args", [("HELLO",), ("HELLO", "3"), ("hello", "2", "SETNAME", "app")])
def test_hello_without_auth_before_auth_is_refused_and_changes_nothing(
    args: tuple[str, ...],
) -> None:
    session = new_session()
    assert session.handle(cmd(*args)) == Answer(HELLO_NOAUTH)
    assert session.protocol == 2
    assert session.name is None


@pytest.mark.parametrize(
    ("args", "request_"),
    [
        (("HELLO", "3", "AUTH", "default", TOKEN), AuthRequest(TOKEN, 3, None)),
        (("hello", "2", "auth", "u", TOKEN), AuthRequest(TOKEN, 2, None)),
        (
            ("HELLO", "3", "AUTH", "u", TOKEN, "SETNAME", "app-1"),
            AuthRequest(TOKEN, 3, b"app-1"),
        ),
        (
            ("HELLO", "3", "setname", "app-1", "AUTH", "u", TOKEN),
            AuthRequest(TOKEN, 3, b"app-1"),
        ),
    ],
)
def test_hello_auth_is_parsed(args: tuple[bytes | str, ...], request_: AuthRequest) -> None:
    assert new_session().handle(cmd(*args)) == Authenticate(request_)


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        (("HELLO", "4"), NOPROTO),
        (("HELLO", "1"), NOPROTO),
        (("HELLO", "-3"), NOPROTO),
        (("HELLO", "4", "AUTH", "u", TOKEN), NOPROTO),
        (
            ("HELLO", "three"),
            b"-ERR Protocol version is not an integer or out of range\r\n",
        ),
        (
            ("HELLO", "AUTH", "u", TOKEN),
            b"-ERR Protocol version is not an integer or out of range\r\n",
        ),
        (("HELLO", "3", "AUTH", "u"), b"-ERR Syntax error in HELLO option 'AUTH'\r\n"),
        (("HELLO", "3", "SetName"), b"-ERR Syntax error in HELLO option 'SetName'\r\n"),
        (("HELLO", "3", "FOO", "bar"), b"-ERR Syntax error in HELLO option 'FOO'\r\n"),
        (("HELLO", "3", "AUTH", "u", TOKEN, "SETNAME", "a b"), BAD_NAME),
        (("HELLO", "3", "SETNAME", "a\nb", "AUTH", "u", TOKEN), BAD_NAME),
    ],
)
def test_hello_errors(args: tuple[bytes | str, ...], reply: bytes) -> None:
    session = new_session()
    assert session.handle(cmd(*args)) == Answer(reply)
    assert session.protocol == 2


# --- auth_result ---------------------------------------------------------------------------


def test_successful_auth_makes_the_session_ready() -> None:
    session = new_session()
    decision = session.handle(cmd("AUTH", TOKEN))
    assert isinstance(decision, Authenticate)
    request = decision.request
    who = principal()
    assert session.auth_result(request, who) == OK
    assert session.state is State.READY
    assert session.principal is who
    assert session.authenticated
    assert isinstance(session.handle(cmd("GET", "k")), Forward)


def test_failed_auth_replies_wrongpass_and_stays_unauthenticated() -> None:
    session = new_session()
    decision = session.handle(cmd("AUTH", TOKEN))
    assert isinstance(decision, Authenticate)
    request = decision.request
    assert session.auth_result(request, None) == WRONGPASS
    assert session.state is State.AUTH
    assert session.principal is None
    assert session.handle(cmd("GET", "k")) == Answer(NOAUTH)


def test_failed_auth_keeps_the_previous_identity() -> None:
    session = ready()
    before = session.principal
    decision = session.handle(cmd("AUTH", TOKEN))
    assert isinstance(decision, Authenticate)
    request = decision.request
    assert session.auth_result(request, None) == WRONGPASS
    assert session.principal is before
    assert session.state is State.READY


def test_hello_auth_success_switches_protocol_and_names_the_client() -> None:
    session = new_session()
    decision = session.handle(cmd("HELLO", "3", "AUTH", "u", TOKEN, "SETNAME", "app"))
    assert isinstance(decision, Authenticate)
    request = decision.request
    reply = session.auth_result(request, principal())
    assert reply == hello_map(proto=3, client_id=42, resp3=True)
    assert session.protocol == 3
    assert session.name == b"app"
    assert local(session, "CLIENT", "GETNAME") == b"$3\r\napp\r\n"


def test_hello_auth_failure_keeps_resp2() -> None:
    session = new_session()
    decision = session.handle(cmd("HELLO", "3", "AUTH", "u", TOKEN, "SETNAME", "app"))
    assert isinstance(decision, Authenticate)
    request = decision.request
    assert session.auth_result(request, None) == WRONGPASS
    assert session.protocol == 2
    assert session.name is None


# --- HELLO once authenticated --------------------------------------------------------------


def test_hello_when_ready_replies_in_the_negotiated_protocol() -> None:
    session = ready()
    assert local(session, "HELLO") == hello_map(proto=2, client_id=42, resp3=False)
    assert local(session, "HELLO", "3") == hello_map(proto=3, client_id=42, resp3=True)
    assert session.protocol == 3
    assert local(session, "HELLO") == hello_map(proto=3, client_id=42, resp3=True)
    assert local(session, "hello", "2", "SETNAME", "x") == hello_map(
        proto=2, client_id=42, resp3=False
    )
    assert session.protocol == 2
    assert session.name == b"x"


def test_hello_with_another_protocol_is_refused_while_pinned() -> None:
    session = ready()
    pin(session, ("WATCH", "k"))
    refused = err(
        "ERR HELLO with another protocol is not allowed during a transaction, subscription "
        "or tracking on RedisGate; send RESET or finish it first"
    )
    assert local(session, "HELLO", "3") == refused
    assert session.protocol == 2
    assert local(session, "HELLO", "2") == hello_map(proto=2, client_id=42, resp3=False)
    assert local(session, "HELLO") == hello_map(proto=2, client_id=42, resp3=False)


def test_auth_is_refused_while_pinned() -> None:
    session = ready()
    pin(session, ("WATCH", "k"))
    assert local(session, "AUTH", TOKEN) == err(
        "ERR AUTH is not allowed during a transaction, subscription "
        "or tracking on RedisGate; send RESET or finish it first"
    )


# --- Routing once authenticated ------------------------------------------------------------


def test_plain_commands_go_to_a_shared_connection_as_sent() -> None:
    session = ready()
    for args in [("GET", "k"), ("get", "k"), ("Get", "k"), ("SET", "k", "v"), ("EXEC",), ("PING",)]:
        command = cmd(*args)
        decision = session.handle(command)
        assert decision == FORWARD[2]  # the command's own bytes, as sent: raw is None
        assert command.raw == wire(*args)


@pytest.mark.parametrize(
    "args",
    [
        ("MULTI",),
        ("WATCH", "k"),
        ("SUBSCRIBE", "c"),
        ("psubscribe", "c*"),
        ("SSUBSCRIBE", "c"),
        ("UNSUBSCRIBE",),
        ("BLPOP", "k", "0"),
        ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
        ("CLIENT", "TRACKING", "ON"),
        ("client", "tracking", "on", "BCAST", "PREFIX", "a"),
        ("CLIENT", "REPLY", "OFF"),
    ],
)
def test_stateful_commands_go_to_a_dedicated_connection(args: tuple[str, ...]) -> None:
    assert ready().handle(cmd(*args)) == PIN


def test_xread_without_block_stays_shared() -> None:
    args = ("XREAD", "COUNT", "1", "STREAMS", "s", "0")
    assert ready().handle(cmd(*args)) == FORWARD[2]


def test_everything_follows_the_dedicated_connection_while_pinned() -> None:
    session = ready()
    pin(session, ("WATCH", "k"))
    for args in [("GET", "k"), ("SET", "k", "v"), ("EXEC",), ("PUBLISH", "c", "m")]:
        assert session.handle(cmd(*args)) == PIN


def test_client_tracking_redirect_translates_gateway_ids() -> None:
    session = ready()
    unknown = err("ERR The client ID you want redirect to does not exist")
    # with no way to find other clients, every REDIRECT names a client that does not exist
    assert local(session, "CLIENT", "TRACKING", "ON", "REDIRECT", "5") == unknown
    session.redirect_target = {7: 1234}.get  # gateway client 7 holds backend connection 1234
    assert local(session, "client", "tracking", "on", "bcast", "redirect", "5") == unknown
    assert local(session, "CLIENT", "TRACKING", "ON", "REDIRECT", "x") == err(
        "ERR value is not an integer or out of range"
    )
    translated = session.handle(cmd("CLIENT", "TRACKING", "ON", "REDIRECT", "7", "BCAST"))
    assert translated == Pin(wire("CLIENT", "TRACKING", "ON", "REDIRECT", "1234", "BCAST"))
    assert session.tracker is None


# --- Unknown and denied commands -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        (("foo", "a"), b"-ERR unknown command 'foo', with args beginning with: 'a' \r\n"),
        (("FOO",), b"-ERR unknown command 'FOO', with args beginning with: \r\n"),
        (
            ("nope", "a b", "c"),
            b"-ERR unknown command 'nope', with args beginning with: 'a b' 'c' \r\n",
        ),
        (
            ("x", "a" * 100, "b" * 100, "c"),
            b"-ERR unknown command 'x', with args beginning with: '"
            + b"a" * 100
            + b"' '"
            + b"b" * 25
            + b"' \r\n",
        ),
        (
            ("y" * 200, "a" * 300),
            b"-ERR unknown command '"
            + b"y" * 128
            + b"', with args beginning with: '"
            + b"a" * 128
            + b"' \r\n",
        ),
        (
            ("bad", "line\r\nbreak"),
            b"-ERR unknown command 'bad', with args beginning with: 'line  break' \r\n",
        ),
    ],
)
def test_unknown_command_uses_redis_wording(args: tuple[str, ...], reply: bytes) -> None:
    assert ready().handle(cmd(*args)) == Answer(reply)


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        (("CLIENT", "x"), b"-ERR unknown subcommand 'x'. Try CLIENT HELP.\r\n"),
        (("client", "Bogus", "1"), b"-ERR unknown subcommand 'Bogus'. Try CLIENT HELP.\r\n"),
        (("config", "nope"), b"-ERR unknown subcommand 'nope'. Try CONFIG HELP.\r\n"),
        (("OBJECT", "nope", "k"), b"-ERR unknown subcommand 'nope'. Try OBJECT HELP.\r\n"),
        (("acl", "x" * 200), b"-ERR unknown subcommand '" + b"x" * 128 + b"'. Try ACL HELP.\r\n"),
        (("CLIENT",), b"-ERR wrong number of arguments for 'client' command\r\n"),
        (("object",), b"-ERR wrong number of arguments for 'object' command\r\n"),
        (("PUBSUB",), b"-ERR wrong number of arguments for 'pubsub' command\r\n"),
    ],
)
def test_unknown_subcommand_uses_redis_wording(args: tuple[str, ...], reply: bytes) -> None:
    assert ready().handle(cmd(*args)) == Answer(reply)


@pytest.mark.parametrize(
    ("args", "display", "reason"),
    [
        (
            ("CONFIG", "SET", "x", "y"),
            "CONFIG SET",
            "server configuration is the operator's business",
        ),
        (
            ("monitor",),
            "MONITOR",
            "streams every command of the server, other tenants' or the gateway's own, with its "
            "connections' addresses; SLOWLOG and LATENCY answer the same questions",
        ),
        (("SHUTDOWN",), "SHUTDOWN", "stopping and restarting servers is the platform's"),
        (
            ("CLIENT", "PAUSE", "10"),
            "CLIENT PAUSE",
            "pauses the gateway's shared connections too, whose commands would time out",
        ),
        (
            ("acl", "setuser", "x"),
            "ACL SETUSER",
            "ACL users belong to the backend operator; API-key scopes replace them",
        ),
        (
            ("COPY", "a", "b", "DB", "1"),
            "COPY",
            "COPY ... DB writes into another database (another tenant's)",
        ),
        (
            ("MOVE", "k", "1"),
            "MOVE",
            "moves a key into another database, i.e. another tenant's instance",
        ),
    ],
)
@pytest.mark.parametrize("shared", [False, True])
def test_denied_commands_get_noperm_with_the_reason(
    args: tuple[str, ...], display: str, reason: str, shared: bool
) -> None:
    reply = err(
        f"NOPERM this user has no permissions to run the '{display}' command "
        f"through RedisGate: {reason}"
    )
    assert ready(shared=shared).handle(cmd(*args)) == Answer(reply)


# --- Shared backends and server-wide commands ----------------------------------------------

SCRIPT_WHY = "scripts could reach other databases of this shared server"
PUBSUB_WHY = "pub/sub channels are server-wide and this server is shared"


@pytest.mark.parametrize(
    ("args", "base", "why"),
    [
        (("EVAL", "return 1", "0"), "eval", SCRIPT_WHY),
        (("evalsha", "a" * 40, "0"), "evalsha", SCRIPT_WHY),
        (("EVAL_RO", "return 1", "0"), "eval_ro", SCRIPT_WHY),
        (("FCALL", "f", "0"), "fcall", SCRIPT_WHY),
        (("SCRIPT", "LOAD", "return 1"), "script", SCRIPT_WHY),
        (("FUNCTION", "HELP"), "function", SCRIPT_WHY),
        (("SUBSCRIBE", "c"), "subscribe", PUBSUB_WHY),
        (("PSUBSCRIBE", "c*"), "psubscribe", PUBSUB_WHY),
        (("SSUBSCRIBE", "c"), "ssubscribe", PUBSUB_WHY),
        (("UNSUBSCRIBE",), "unsubscribe", PUBSUB_WHY),
        (("PUBLISH", "c", "m"), "publish", PUBSUB_WHY),
        (("SPUBLISH", "c", "m"), "spublish", PUBSUB_WHY),
        (("PUBSUB", "NUMSUB", "c"), "pubsub", PUBSUB_WHY),
    ],
)
def test_shared_backend_refuses_scripts_and_pubsub(
    args: tuple[str, ...], base: str, why: str
) -> None:
    reply = err(
        f"NOPERM '{base}' is not available on this instance: {why}; "
        "use an instance with a dedicated server"
    )
    assert ready(shared=True).handle(cmd(*args)) == Answer(reply)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("EVAL", "return 1", "0"), FORWARD[2]),
        (("FCALL", "f", "0"), FORWARD[2]),
        (("SCRIPT", "LOAD", "return 1"), FORWARD[2]),
        (("PUBLISH", "c", "m"), FORWARD[2]),
        (("PUBSUB", "NUMSUB", "c"), FORWARD[2]),
        (("SUBSCRIBE", "c"), PIN),
    ],
)
def test_dedicated_backend_allows_scripts_and_pubsub(
    args: tuple[str, ...], expected: Forward | Pin
) -> None:
    assert ready(shared=False).handle(cmd(*args)) == expected


SERVER_WIDE_SAMPLES = [
    (("FLUSHALL",), "FLUSHALL", "empties every database of the server (use FLUSHDB)"),
    (
        ("FUNCTION", "LOAD", "#!lua name=x"),
        "FUNCTION LOAD",
        "functions live server-wide, not per database: this touches other tenants' libraries",
    ),
    (("script", "flush"), "SCRIPT FLUSH", "empties the script cache every tenant shares"),
    (
        ("PUBSUB", "CHANNELS"),
        "PUBSUB CHANNELS",
        "pub/sub is server-wide, not per database: this lists other tenants' channels",
    ),
    (("MEMORY", "STATS"), "MEMORY STATS", "server-wide memory report"),
]


@pytest.mark.parametrize(("args", "display", "reason"), SERVER_WIDE_SAMPLES)
def test_server_wide_commands_run_on_a_dedicated_backend(
    args: tuple[str, ...], display: str, reason: str
) -> None:
    assert ready(shared=False).handle(cmd(*args)) == FORWARD[2]


@pytest.mark.parametrize(("args", "display", "reason"), SERVER_WIDE_SAMPLES)
def test_server_wide_commands_are_denied_on_a_shared_backend(
    args: tuple[str, ...], display: str, reason: str
) -> None:
    reply = err(
        f"NOPERM this user has no permissions to run the '{display}' command "
        f"through RedisGate: {reason}"
    )
    assert ready(shared=True).handle(cmd(*args)) == Answer(reply)


# --- Inside MULTI --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "display"),
    [
        (("SUBSCRIBE", "c"), "SUBSCRIBE"),
        (("punsubscribe",), "PUNSUBSCRIBE"),
        (("SSUBSCRIBE", "c"), "SSUBSCRIBE"),
        (("INFO",), "INFO"),
        (("HELLO", "2"), "HELLO"),
        (("AUTH", TOKEN), "AUTH"),
        (("COMMAND", "COUNT"), "COMMAND COUNT"),
        (("command", "info", "get"), "COMMAND INFO"),
    ],
)
def test_commands_not_allowed_inside_multi(args: tuple[bytes | str, ...], display: str) -> None:
    session = ready()
    pin(session, ("MULTI",))
    assert local(session, *args) == err(f"ERR '{display}' is not allowed inside MULTI on RedisGate")


def test_inside_multi_other_commands_are_queued_on_the_dedicated_connection() -> None:
    session = ready()
    pin(session, ("MULTI",))
    for args in [("SET", "k", "v"), ("PUBLISH", "c", "m"), ("EXEC",)]:
        assert session.handle(cmd(*args)) == PIN


@pytest.mark.parametrize(
    "args", [("SELECT", "0"), ("CLIENT", "ID"), ("CLIENT", "SETNAME", "x"), ("ACL", "WHOAMI")]
)
def test_locally_answered_commands_inside_multi_are_queued_or_refused(
    args: tuple[str, ...],
) -> None:
    session = ready()
    pin(session, ("MULTI",))
    reply = local(session, *args)
    assert reply == b"+QUEUED\r\n" or reply.startswith(b"-")


@pytest.mark.parametrize(
    "refused", [("INCRR", "n"), ("CONFIG", "SET", "x", "y"), ("INFO",), ("SUBSCRIBE", "c")]
)
def test_a_command_refused_inside_multi_aborts_the_transaction(refused: tuple[str, ...]) -> None:
    session = ready()
    pin(session, ("MULTI",), ("SET", "k", "v"))
    assert local(session, *refused).startswith(b"-")
    decision = session.handle(cmd("EXEC"))
    assert isinstance(decision, Pin)
    assert decision.raw not in (None, wire("EXEC"))  # DISCARD upstream, -EXECABORT to the client


def test_hello_auth_is_refused_while_pinned_like_auth() -> None:
    session = ready()
    pin(session, ("WATCH", "k"))
    assert local(session, "HELLO", "2", "AUTH", "u", TOKEN) == err(
        "ERR AUTH is not allowed during a transaction, subscription "
        "or tracking on RedisGate; send RESET or finish it first"
    )


# --- SELECT --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        (("SELECT", "0"), OK),
        (("select", "0"), OK),
        (("SELECT", "1"), b"-ERR DB index is out of range\r\n"),
        (("SELECT", "-1"), b"-ERR DB index is out of range\r\n"),
        (("SELECT", "15"), b"-ERR DB index is out of range\r\n"),
        (("SELECT", "abc"), b"-ERR value is not an integer or out of range\r\n"),
        (("SELECT", ""), b"-ERR value is not an integer or out of range\r\n"),
        (("SELECT",), b"-ERR wrong number of arguments for 'select' command\r\n"),
        (("SELECT", "0", "1"), b"-ERR wrong number of arguments for 'select' command\r\n"),
    ],
)
def test_select_is_virtualised(args: tuple[str, ...], reply: bytes) -> None:
    # db 3 on the backend is db 0 to the tenant: the only one there is.
    assert local(ready(db=3), *args) == reply


# --- CLIENT --------------------------------------------------------------------------------


def test_client_id_is_the_gateway_connection_id() -> None:
    assert local(ready(), "CLIENT", "ID") == b":42\r\n"
    assert local(ready(), "client", "id") == b":42\r\n"


def test_client_setname_getname() -> None:
    session = ready()
    assert local(session, "CLIENT", "GETNAME") == b"$-1\r\n"
    assert local(session, "CLIENT", "SETNAME", "worker-1") == OK
    assert local(session, "client", "getname") == b"$8\r\nworker-1\r\n"
    assert local(session, "CLIENT", "SETNAME", "a b") == BAD_NAME
    assert local(session, "CLIENT", "SETNAME", "caf\xe9") == BAD_NAME
    assert local(session, "CLIENT", "GETNAME") == b"$8\r\nworker-1\r\n"
    assert local(session, "CLIENT", "SETNAME", "") == OK  # an empty name clears it
    assert local(session, "CLIENT", "GETNAME") == b"$-1\r\n"
    assert session.name is None


def test_client_getname_null_is_resp3_null_in_resp3() -> None:
    session = ready()
    local(session, "HELLO", "3")
    assert local(session, "CLIENT", "GETNAME") == b"_\r\n"


@pytest.mark.parametrize("args", [("CLIENT", "SETNAME"), ("CLIENT", "SETNAME", "a", "b")])
def test_client_setname_arity(args: tuple[str, ...]) -> None:
    reply = b"-ERR wrong number of arguments for 'client|setname' command\r\n"
    assert local(ready(), *args) == reply


def test_client_info_describes_the_gateway_connection() -> None:
    clock = Clock(100.0)
    session = ready(clock=clock)
    local(session, "CLIENT", "SETNAME", "app")
    clock.now = 112.9
    line = (
        b"id=42 addr=10.0.0.1:5000 laddr=10.0.0.2:6379 fd=-1 name=app age=12 idle=0 flags=N "
        b"db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 "
        b"rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info user=abcdefghijkl "
        b"redir=-1 resp=2 lib-name= lib-ver=\n"
    )
    assert local(session, "CLIENT", "INFO") == b"$%d\r\n%s\r\n" % (len(line), line)


def test_client_info_counts_subscriptions_and_multi() -> None:
    session = ready()
    tracker = pin(session, ("SUBSCRIBE", "a", "b"), ("PSUBSCRIBE", "p*"))
    for frame in [
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n",
    ]:
        tracker.on_frame(frame)
    info = local(session, "CLIENT", "INFO")
    assert b" sub=2 psub=1 ssub=0 multi=-1 " in info
    session.tracker = DedicatedTracker(2)
    session.tracker.on_send(b"multi", [b"multi"])
    assert b" sub=0 psub=0 ssub=0 multi=0 " in session.client_info()  # CLIENT INFO can't queue


def _table_with_setinfo() -> CommandTable:
    """The 7.0 snapshot plus CLIENT SETINFO, as a Redis 7.2 backend describes it."""
    text = resources.files("redisgate").joinpath("data", "redis-7.0.json").read_text()
    commands = json.loads(text)["commands"]
    subs = commands["client"]["subcommands"]
    setinfo = copy.deepcopy(subs["client|setname"])
    setinfo.update(arity=4, summary="Set client or connection specific info", since="7.2.0")
    subs["client|setinfo"] = setinfo
    return CommandTable(commands, "7.2.0")


TABLE_72 = _table_with_setinfo()


def test_client_setinfo_is_unknown_to_a_7_0_table() -> None:
    reply = b"-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n"
    assert local(ready(), "CLIENT", "SETINFO", "LIB-NAME", "redis-py") == reply


def test_client_setinfo_is_kept_in_the_session() -> None:
    session = ready(table=TABLE_72)
    assert local(session, "CLIENT", "SETINFO", "LIB-NAME", "redis-py") == OK
    assert local(session, "client", "setinfo", "lib-ver", "5.0.1") == OK
    assert (session.lib_name, session.lib_ver) == (b"redis-py", b"5.0.1")
    assert local(session, "CLIENT", "SETINFO", "LIB-NAME", "bad name") == err(
        "ERR LIB-NAME cannot contain spaces, newlines or special characters."
    )
    assert local(session, "CLIENT", "SETINFO", "color", "red") == err(
        "ERR Unrecognized option 'color'"
    )
    assert local(session, "CLIENT", "SETINFO", "LIB-NAME") == err(
        "ERR wrong number of arguments for 'client|setinfo' command"
    )
    assert (session.lib_name, session.lib_ver) == (b"redis-py", b"5.0.1")
    assert local(session, "CLIENT", "INFO").endswith(b" lib-name=redis-py lib-ver=5.0.1\n\r\n")


def test_use_table_switches_to_the_backend_table() -> None:
    session = ready()
    unknown = b"-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n"
    assert local(session, "CLIENT", "SETINFO", "LIB-NAME", "x") == unknown
    session.use_table(TABLE_72)
    assert local(session, "CLIENT", "SETINFO", "LIB-NAME", "x") == OK
    assert isinstance(session.handle(cmd("GET", "k")), Forward)  # fast path rebuilt


def test_client_setinfo_error_echoes_the_attribute_as_sent() -> None:
    session = ready(table=TABLE_72)
    assert local(session, "CLIENT", "SETINFO", "lib-ver", "1 0") == err(
        "ERR lib-ver cannot contain spaces, newlines or special characters."
    )


def test_client_id_with_extra_arguments_is_an_arity_error() -> None:
    assert local(ready(), "CLIENT", "ID", "x") == err(
        "ERR wrong number of arguments for 'client|id' command"
    )


def test_client_info_is_a_verbatim_string_in_resp3() -> None:
    session = ready()
    local(session, "HELLO", "3")
    assert local(session, "CLIENT", "INFO").startswith(b"=")


# --- ACL -----------------------------------------------------------------------------------

REDIS_CATEGORIES = sorted(
    [
        "keyspace",
        "read",
        "write",
        "set",
        "sortedset",
        "list",
        "hash",
        "string",
        "bitmap",
        "hyperloglog",
        "geo",
        "stream",
        "pubsub",
        "admin",
        "fast",
        "slow",
        "blocking",
        "dangerous",
        "connection",
        "transaction",
        "scripting",
    ]
)


def bulk_array(items: list[str]) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(
        b"$%d\r\n%s\r\n" % (len(i), i.encode()) for i in items
    )


def test_acl_whoami_is_the_key_public_id() -> None:
    assert local(ready(), "ACL", "WHOAMI") == b"$12\r\nabcdefghijkl\r\n"


def test_acl_cat_lists_redis_categories() -> None:
    assert local(ready(), "ACL", "CAT") == bulk_array(REDIS_CATEGORIES)


def test_acl_cat_category_lists_only_allowed_commands() -> None:
    reply = local(ready(), "acl", "cat", "dangerous")
    assert b"\r\nflushdb\r\n" in reply.lower()
    assert b"flushall" not in reply.lower()
    assert b"shutdown" not in reply.lower()
    assert reply.startswith(b"*")


def test_acl_cat_unknown_category() -> None:
    assert local(ready(), "ACL", "CAT", "nope") == b"-ERR Unknown category 'nope'\r\n"


def test_acl_cat_lists_redis_full_names() -> None:
    reply = local(ready(), "ACL", "CAT", "connection")
    assert b"$9\r\nclient|id\r\n" in reply
    assert b"$4\r\nping\r\n" in reply


# --- INFO and COMMAND ----------------------------------------------------------------------


def test_info_is_forwarded_with_a_filter_for_the_instance_db() -> None:
    session = ready(db=3)
    decision = session.handle(cmd("INFO", "keyspace"))
    assert isinstance(decision, Forward) and decision.raw == wire("INFO", "keyspace")
    transform = decision.transform
    assert transform is not None
    text = b"# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\ndb3:keys=7,expires=2,avg_ttl=0\r\n"
    out = b"# Keyspace\r\ndb0:keys=7,expires=2,avg_ttl=0\r\n"
    frame = b"$%d\r\n%s\r\n" % (len(text), text)
    assert transform(frame) == b"$%d\r\n%s\r\n" % (len(out), out)


def test_info_goes_to_the_dedicated_connection_while_pinned() -> None:
    session = ready()
    pin(session, ("WATCH", "k"))
    decision = session.handle(cmd("info"))
    assert isinstance(decision, Pin) and decision.raw == wire("info")
    transform = decision.transform
    assert transform is not None


ALLOWED = answers.allowed_names(TABLE)


def entry(name: str) -> bytes:
    """A minimal COMMAND INFO entry: name, arity, flags, first, last, step."""
    return b"*6\r\n$%d\r\n%s\r\n:-1\r\n*0\r\n:0\r\n:0\r\n:0\r\n" % (len(name), name.encode())


def test_command_count_is_answered_locally() -> None:
    top_level = [name for name in ALLOWED if b"|" not in name]
    assert local(ready(shared=True), "COMMAND", "COUNT") == b":%d\r\n" % len(top_level)
    owned = [name for name in answers.allowed_names(TABLE, False) if b"|" not in name]
    assert local(ready(), "COMMAND", "COUNT") == b":%d\r\n" % len(owned)
    assert set(owned) > set(top_level)
    assert b"get" in ALLOWED and b"flushall" not in ALLOWED and b"monitor" not in ALLOWED


@pytest.mark.parametrize(
    "args", [("COMMAND", "INFO", "get", "monitor"), ("command", "list"), ("COMMAND", "INFO")]
)
def test_command_info_and_list_are_filtered(args: tuple[str, ...]) -> None:
    decision = ready().handle(cmd(*args))
    assert isinstance(decision, Forward) and decision.raw == wire(*args)
    transform = decision.transform
    assert transform is not None
    reply = b"*3\r\n" + entry("get") + entry("monitor") + entry("set")
    if len(args) > 2:  # COMMAND INFO name…: one element per name asked, null if denied
        assert transform(reply) == b"*3\r\n" + entry("get") + b"*-1\r\n" + entry("set")
    else:
        assert transform(reply) == b"*2\r\n" + entry("get") + entry("set")


def test_command_docs_is_filtered() -> None:
    decision = ready().handle(cmd("COMMAND", "DOCS"))
    assert isinstance(decision, Forward) and decision.raw == wire("COMMAND", "DOCS")
    transform = decision.transform
    assert transform is not None
    doc = b"*2\r\n$7\r\nsummary\r\n$1\r\nx\r\n"
    reply = b"*4\r\n$7\r\nmonitor\r\n" + doc + b"$3\r\nget\r\n" + doc
    assert transform(reply) == b"*2\r\n$3\r\nget\r\n" + doc


def test_command_goes_to_the_dedicated_connection_while_pinned() -> None:
    session = ready()
    pin(session, ("WATCH", "k"))
    decision = session.handle(cmd("COMMAND", "DOCS", "get"))
    assert isinstance(decision, Pin) and decision.raw == wire("COMMAND", "DOCS", "get")
    transform = decision.transform
    assert transform is not None


def test_command_getkeys_is_forwarded_as_is() -> None:
    args = ("COMMAND", "GETKEYS", "GET", "k")
    assert ready().handle(cmd(*args)) == FORWARD[2]


def test_bare_command_is_forwarded_with_a_filter() -> None:
    decision = ready().handle(cmd("COMMAND"))
    assert isinstance(decision, Forward) and decision.raw == wire("COMMAND")
    transform = decision.transform
    assert transform is not None


# --- QUIT and RESET ------------------------------------------------------------------------


def test_quit_when_ready() -> None:
    session = ready()
    assert session.handle(cmd("quit")) == Close(OK)
    assert session.state is State.CLOSING


def test_reset_goes_back_to_a_fresh_unauthenticated_resp2_session() -> None:
    session = ready(table=TABLE_72)
    local(session, "HELLO", "3", "SETNAME", "app")
    local(session, "CLIENT", "SETINFO", "LIB-NAME", "redis-py")
    assert session.handle(cmd("RESET")) == Reset(b"+RESET\r\n")
    assert session.principal is None
    assert session.state is State.AUTH
    assert session.protocol == 2
    assert session.name is None
    assert (session.lib_name, session.lib_ver) == (b"", b"")
    assert session.handle(cmd("GET", "k")) == Answer(NOAUTH)
    assert session.handle(cmd("PING")) == Answer(NOAUTH)


def test_repr() -> None:
    assert repr(new_session()) == "<Session id=42 auth key=- RESP2>"
    assert repr(ready()) == "<Session id=42 ready key=web RESP2>"


@pytest.mark.parametrize("text", [" 0", "00", "+0", "0x0", "1_0", "0.0", ""])
def test_select_parses_integers_as_strictly_as_redis(text: str) -> None:
    assert local(ready(), "SELECT", text) == err("ERR value is not an integer or out of range")


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        (("HELLO", "4", "FOO"), b"-NOPROTO unsupported protocol version\r\n"),
        (("HELLO", " 3"), err("ERR Protocol version is not an integer or out of range")),
        (("HELLO", "03"), err("ERR Protocol version is not an integer or out of range")),
    ],
)
def test_hello_checks_the_version_first_and_strictly(args: tuple[str, ...], reply: bytes) -> None:
    assert local(ready(), *args) == reply


@pytest.mark.parametrize("name", ["POST", "post", "Host:"])
def test_an_http_request_closes_the_connection_unanswered(name: str) -> None:
    """Redis's guard against cross-protocol scripting, before AUTH and after."""
    for session in (new_session(), ready()):
        assert session.handle(cmd(name, "/", "HTTP/1.1")) == Close(b"")
        assert session.state is State.CLOSING


def test_exec_before_auth_is_refused_as_redis_words_it() -> None:
    reply = b"-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n"
    assert new_session().handle(cmd("EXEC")) == Answer(reply)
