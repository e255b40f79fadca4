"""The per-client state machine: which commands run where, and what the gateway answers itself.

Theory of operation
-------------------
A session starts in AUTH: as on Redis, an unknown command or a wrong arity is told as such,
AUTH, HELLO, QUIT and RESET are served, and anything else gets `-NOAUTH`. A good key moves it
to READY, bound to one instance. `handle(command)` returns what to do with each command, as
one of the typed decisions of `decisions` (`Forward`, `Pin`, `RunScript`, `Answer`,
`Authenticate`, `Reset`, `Close`), which the transport carries out. A command forwarded as it
is gets `forward`, one shared value per protocol, so the hot path allocates nothing.

A client moves to a dedicated connection for commands the command table routes PINNED
(MULTI, WATCH, SUBSCRIBE, blocking commands, CLIENT TRACKING/REPLY …) and stays there while
`pinning.DedicatedTracker` says the connection holds state; when it is clean again, later
commands go back to shared connections. The transport keeps order across that switch.

Every command is checked against the key's scope (`policy.scope_check.ScopeCheck`: commands, keys,
channels, as Redis ACL does); commands in `_fast` (allowed by name alone) skip straight to a
shared connection. Denied commands get `-NOPERM` (counted in `metrics.COMMANDS_DENIED`), unknown
ones Redis's own `-ERR unknown command` wording. Before all that, every command of an
authenticated client takes a token from `rate` (the key's and the instance's buckets, see
`policy.rates.RateGate`); without one it is refused with `-ERR max requests limit exceeded`. SELECT
is virtualised (db 0 is the instance's db), the client's name and library info live here, and
INFO and COMMAND replies are filtered. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sized
from enum import Enum

from redisgate import metrics
from redisgate.proxy.backend.key_user_rules import runs_as_key_user
from redisgate.proxy.backend.pinning import DedicatedTracker
from redisgate.proxy.clients.decisions import (
    FORWARD,
    PIN,
    Answer,
    Authenticate,
    AuthRequest,
    Close,
    Decision,
    Forward,
    Pin,
    Reset,
    RunScript,
    Transform,
)
from redisgate.proxy.commands import answers, introspection, peers
from redisgate.proxy.commands.peers import PeerInfo, PeerRegistry
from redisgate.proxy.commands.routing import (
    NOT_IN_MULTI,
    PUBSUB,
    RUN_AT_ONCE_IN_MULTI,
    SCRIPTING,
    SERVER_WIDE,
    Route,
)
from redisgate.proxy.commands.table import CommandSpec, CommandTable, arity_ok, decide, fast_forward
from redisgate.proxy.keys.principals import Principal
from redisgate.proxy.policy.rates import RateGate
from redisgate.proxy.policy.scope_check import KeyPlan, ScopeCheck, bind_scope
from redisgate.proxy.wire.encode import (
    REPLY_HELLO_NOAUTH,
    REPLY_NOAUTH,
    REPLY_OK,
    REPLY_RESET,
    REPLY_SYNTAX_ERROR,
    REPLY_WRONGPASS,
    encode_bulk,
    encode_command,
    encode_error,
    encode_int,
)
from redisgate.proxy.wire.requests import Command
from redisgate.proxy.wire.runs import Forwardable
from redisgate.scopes import SCRIPT_RUNNERS


class State(Enum):
    AUTH = "auth"
    READY = "ready"
    CLOSING = "closing"


# Redis 7's `no_auth` commands: the only ones it runs before AUTH.
_PRE_AUTH = frozenset({b"auth", b"hello", b"quit", b"reset"})
# What starts an HTTP request: Redis closes the connection on it, before AUTH or after.
_CROSS_PROTOCOL = frozenset({b"post", b"host:"})
# Redis words a refused EXEC as the transaction's abort, whatever refused it.
REPLY_EXECABORT_NOAUTH = (
    b"-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n"
)


class Session:
    """One client's protocol state; see the module docstring."""

    def __init__(
        self,
        table: CommandTable,
        *,
        client_id: int,
        peer: str = "",
        local: str = "",
        clock: Callable[[], float] = lambda: 0.0,
        server_version: str = "7.0.0",
    ) -> None:
        self.table = table
        self.client_id = client_id
        self.peer = peer
        self.local = local
        self.clock = clock
        self.connected_at = clock()
        self.server_version = server_version
        self.state = State.AUTH
        self.principal: Principal | None = None
        self._protocol = 2
        # The decision for a command forwarded as it is, now (its protocol changes with HELLO):
        # the transport takes runs of commands only while it is the one it uses.
        self.forward = FORWARD[2]
        self.name: bytes | None = None
        self.lib_name = b""
        self.lib_ver = b""
        self.tracker: DedicatedTracker | None = None
        # gateway client id -> backend id of that client's dedicated connection (set by the
        # transport, which knows the other clients); None: REDIRECT is refused
        self.redirect_target: Callable[[int], int | None] | None = None
        # The instance's other client connections (CLIENT LIST/KILL/UNBLOCK, INFO clients),
        # set by the transport; None: this session alone is known.
        self.peers: PeerRegistry | None = None
        self.no_evict = False  # CLIENT NO-EVICT: shown in its flags (see routes.py)
        self._check: ScopeCheck | None = None
        self.denied = self.limited = 0  # -NOPERM and rate-limit replies (usage per key)
        self._fast: frozenset[bytes] = frozenset()
        self._keyed: dict[bytes, KeyPlan] = {}
        self._keys_fit: Callable[[KeyPlan, list[bytes]], bool] = _no_keys_fit
        self._forwardable: Forwardable | None = None
        self.rate: RateGate | None = None  # the key's and instance's buckets (set on AUTH)
        # Commands `rate` let run ahead for the rest of this read (`settle` returns the unused).
        self.credit = 0
        self.queued: Sized = ()  # what the transport parsed ahead (sizes a `rate.take`)

    def __repr__(self) -> str:
        who = self.principal.key_name if self.principal else "-"
        return f"<Session id={self.client_id} {self.state.value} key={who} RESP{self.protocol}>"

    def use_table(self, table: CommandTable) -> None:
        """Judge commands by this table (the instance's backend's own command metadata)."""
        self.table = table
        self._bind()

    def _bind(self) -> None:
        """Bind the principal's scope to the table (shared, cached) after either changes."""
        if self.principal is None:
            self._check, self._fast, self._keyed = None, frozenset(), {}
            self._keys_fit = _no_keys_fit
            self._forwardable = None
        else:
            check = bind_scope(self.principal.scope, self.table, fast_forward(self.table))
            self._check, self._fast, self._keyed = check, check.fast, check.keyed
            self._keys_fit = check.keys_fit
            self._forwardable = _forwardable(check)

    def replace_principal(self, principal: Principal) -> None:
        """The key was changed (re-scoped): the next command is judged by the new principal."""
        self.principal = principal
        self._bind()

    @property
    def protocol(self) -> int:
        """The RESP version the client speaks (HELLO, RESET)."""
        return self._protocol

    @protocol.setter
    def protocol(self, protocol: int) -> None:
        self._protocol = protocol
        self.forward = FORWARD[protocol]

    @property
    def authenticated(self) -> bool:
        return self.principal is not None

    # --- Commands ---------------------------------------------------------------------------

    def handle(self, command: Command) -> Decision:
        """Decide what to do with one command (see the module docstring)."""
        args = command.args
        name = args[0]
        if self.principal is not None:
            rate = self.rate
            if rate is not None:
                if self.credit:
                    self.credit -= 1
                else:
                    granted = rate.take(self.clock(), 1 + len(self.queued))
                    if isinstance(granted, int):
                        self.credit = granted - 1
                    elif name.lower() not in _NEVER_LIMITED:
                        return self._limited(granted)
            if self.tracker is None:
                if name in self._fast:
                    return self.forward
                plan = self._keyed.get(name)
                if plan is not None and self._keys_fit(plan, args):
                    return self.forward
            return self._handle_ready(command, args)
        return self._handle_unauthenticated(command, args)

    def forwardable(self) -> Forwardable | None:
        """The commands this session forwards as they are, checking nothing but the rate
        limits (`take_run`) and keys at fixed places: what the transport may take from a
        read as one `Run`. None in a transaction, subscription or tracking."""
        return self._forwardable if self.tracker is None else None

    def take_run(self, count: int) -> bool:
        """The rate limits let `count` forwardable commands run (a `Run`): True, or False with
        nothing taken (the caller hands them to `handle` one by one, which refuses in order)."""
        rate = self.rate
        if rate is None:
            return True
        granted = rate.take(self.clock(), count, counted=False)
        if granted == count:
            return True
        if granted.__class__ is int:
            rate.refund(granted)
        return False

    def settle(self) -> None:
        """The read is over: give back what the rate limits let run ahead and nothing used."""
        if self.credit:
            if self.rate is not None:
                self.rate.refund(self.credit)
            self.credit = 0

    def _limited(self, reply: bytes) -> Decision:
        """Over the rate limit: refused at once, never queued; inside MULTI that dooms the
        transaction, as any error while queueing does on Redis."""
        self.limited += 1
        if self.tracker is not None and self.tracker.in_multi:
            self.tracker.queue_error = True
        return Answer(reply)

    def _handle_unauthenticated(self, command: Command, args: list[bytes]) -> Decision:
        """In Redis's order: an unknown command or subcommand and a wrong arity are told
        as such, then anything but AUTH, HELLO, QUIT and RESET gets -NOAUTH."""
        spec = self.table.resolve(args)
        if spec is None:
            return self._unknown(args)
        if spec.subcommands and (len(args) > 1 or not arity_ok(spec, 1)):
            return Answer(answers.unknown_subcommand(spec, args))
        if not arity_ok(spec, len(args)):
            return Answer(answers.wrong_arity(spec.name))
        lowered = args[0].lower()
        if lowered not in _PRE_AUTH:
            return Answer(REPLY_EXECABORT_NOAUTH if lowered == b"exec" else REPLY_NOAUTH)
        return self._intercept(lowered, args)

    def _unknown(self, args: list[bytes]) -> Decision:
        if args[0].lower() in _CROSS_PROTOCOL:
            # Redis's guard against cross-protocol scripting (a web page made to send an HTTP
            # request to Redis): the connection is closed at once, unanswered.
            self.state = State.CLOSING
            return Close(b"")
        return Answer(answers.unknown_command(args))

    def _handle_ready(self, command: Command, args: list[bytes]) -> Decision:
        tracker = self.tracker
        if tracker is None or not tracker.in_multi:
            return self._route(command, args)
        # Inside MULTI: Redis queues commands and answers them in EXEC's array. A command the
        # gateway refuses (or would answer itself) cannot be queued, so, as with any error
        # while queueing on Redis, the transaction is doomed: EXEC answers -EXECABORT.
        decision = self._route(command, args)
        lowered = args[0].lower()
        if lowered == b"exec" and tracker.queue_error and isinstance(decision, Pin):
            return Pin(encode_command(["DISCARD"]), _execabort)
        if lowered in RUN_AT_ONCE_IN_MULTI:
            return decision
        if isinstance(decision, Answer):
            if decision.reply[:1] != b"-":
                name = args[0].decode(errors="replace")
                reply = encode_error("ERR", f"'{name}' cannot be queued in MULTI on RedisGate")
                decision = Answer(reply)
            tracker.queue_error = True
        return decision

    def _route(self, command: Command, args: list[bytes]) -> Decision:
        spec = self.table.resolve(args)
        if spec is None:
            return self._unknown(args)
        if spec.subcommands and (len(args) > 1 or not arity_ok(spec, 1)):
            # resolve() fell back to the container: the subcommand is unknown or missing
            return Answer(answers.unknown_subcommand(spec, args))
        assert self.principal is not None and self._check is not None
        decision = decide(spec, args)
        route = decision.route
        shared_server = self.principal.instance.backend.shared
        if route is Route.DENIED and spec.name in SERVER_WIDE and not shared_server:
            route = SERVER_WIDE[spec.name][0]
        elif route is Route.DENIED or not decision.classified:
            metrics.COMMANDS_DENIED["gateway"] += 1
            self.denied += 1
            return Answer(answers.denied(spec, decision.reason))
        base = spec.container or spec.name
        base_b = base.encode()
        if shared_server:
            refused = answers.shared_server_refusal(base_b, SCRIPTING, PUBSUB)
            if refused is not None:
                return Answer(refused)
        key_user = spec.name in SCRIPT_RUNNERS and runs_as_key_user(
            self._check.scope, shared=shared_server
        )
        denial = self._check.check(spec, args, key_user=key_user)
        if denial is not None:
            metrics.COMMANDS_DENIED[denial[0]] += 1
            self.denied += 1
            return Answer(denial[1])
        if key_user:
            if self.tracker is not None:  # a dedicated connection runs as the gateway's user
                return Answer(_script_not_while_pinned(spec.display_name))
            return RunScript(command.raw)
        if self.tracker is not None and self.tracker.in_multi and base_b in NOT_IN_MULTI:
            return Answer(
                encode_error(
                    "ERR", f"'{spec.display_name}' is not allowed inside MULTI on RedisGate"
                )
            )
        if route is Route.INTERCEPTED:
            if not arity_ok(spec, len(args)):
                return Answer(answers.wrong_arity(spec.name))
            return self._intercept(base_b, args, spec)
        if spec.name == "client|tracking":
            refused = answers.tracking_refusal(args, shared_server, self._check.scope.allkeys)
            if refused is not None:
                return Answer(refused)
            redirected = answers.translate_redirect(args, self.redirect_target)
            if isinstance(redirected, bytes):
                return Answer(redirected)
            if redirected is not None:
                return Pin(encode_command(redirected), None)
        if spec.name in _CHANNEL_LISTINGS and not self._check.scope.allchannels:
            raw, transform = answers.visible_channels(spec, args, self._check.scope)
            return self._send(raw, transform)
        if route is Route.PINNED or self.tracker is not None:
            return PIN
        return self.forward

    def _send(self, raw: bytes, transform: Transform | None) -> Forward | Pin:
        """A command the gateway sends itself (or rewrites), on the connection the client's
        commands go to now: a shared one, or its own while it holds one."""
        if self.tracker is None:
            return Forward(raw, transform, self.protocol)
        return Pin(raw, transform)

    # --- Intercepted commands ---------------------------------------------------------------

    def _intercept(
        self, base: bytes, args: list[bytes], spec: CommandSpec | None = None
    ) -> Decision:
        if base == b"auth":
            return self._auth(args)
        if base == b"hello":
            return self._hello(args)
        if base == b"quit":
            self.state = State.CLOSING
            return Close(REPLY_OK)
        if base == b"reset":
            return self._reset()
        if base == b"select":
            return Answer(answers.select_reply(args))
        if base == b"client":
            sub = args[1].lower()
            if sub == b"list":
                return self._client_list(args)
            if sub == b"kill":
                return self._client_kill(args)
            if sub == b"unblock":
                return self._client_unblock(args)
            return Answer(self._client(args))
        if base == b"info":
            return self._send(encode_command(args), self._info_transform())
        if base == b"config":  # CONFIG GET, on an instance owning its server
            return self._send(encode_command(args), introspection.config_get_transform)
        if base == b"slowlog":  # SLOWLOG GET, likewise
            return self._send(encode_command(args), introspection.slowlog_transform)
        if base == b"role":
            return self._send(encode_command(args), introspection.role_transform)
        if base == b"command":
            return self._command(args)
        if base == b"acl":
            assert self.principal is not None
            return Answer(answers.acl_reply(args, self.principal.key_id, self.table))
        name = spec.display_name if spec is not None else base.decode()
        return Answer(encode_error("ERR", f"'{name}' is not supported yet"))

    def _auth(self, args: list[bytes]) -> Decision:
        if len(args) < 2:
            return Answer(answers.wrong_arity("auth"))
        if len(args) > 3:
            return Answer(REPLY_SYNTAX_ERROR)
        if self.tracker is not None:
            return Answer(self._not_while_pinned("AUTH"))
        return Authenticate(AuthRequest(token=args[-1]))

    def _hello(self, args: list[bytes]) -> Decision:
        hello = answers.parse_hello(args)
        if isinstance(hello, bytes):
            return Answer(hello)
        if self.tracker is not None and hello.token is not None:
            return Answer(self._not_while_pinned("AUTH"))
        if self.tracker is not None and hello.protocol not in (None, self.protocol):
            return Answer(self._not_while_pinned("HELLO with another protocol"))
        protocol = hello.protocol or self.protocol
        if hello.token is not None:
            return Authenticate(AuthRequest(hello.token, protocol, hello.setname))
        if self.principal is None:
            return Answer(REPLY_HELLO_NOAUTH)
        self._apply_hello(protocol, hello.setname)
        return Answer(self.hello_reply())

    def _apply_hello(self, protocol: int, setname: bytes | None) -> None:
        self.protocol = protocol
        if setname is not None:
            self.name = setname

    def hello_reply(self) -> bytes:
        return answers.hello_reply(
            protocol=self.protocol,
            client_id=self.client_id,
            version=self.server_version,
            resp3=self.protocol == 3,
        )

    def auth_result(self, request: AuthRequest, principal: Principal | None) -> bytes:
        """The reply once the key lookup is done (a failed AUTH keeps the previous identity)."""
        if principal is None:
            return REPLY_WRONGPASS
        self.principal = principal
        self.state = State.READY
        self._bind()
        if request.hello_protocol is not None:
            self._apply_hello(request.hello_protocol, request.setname)
            return self.hello_reply()
        return REPLY_OK

    def _reset(self) -> Decision:
        """RESET: as on Redis, back to a fresh, unauthenticated RESP2 connection."""
        self.settle()
        self.principal, self.rate = None, None
        self._bind()
        self.state = State.AUTH
        self.protocol = 2
        self.name = None
        self.lib_name = self.lib_ver = b""
        self.no_evict = False
        return Reset(REPLY_RESET)

    def _not_while_pinned(self, what: str) -> bytes:
        return encode_error(
            "ERR",
            f"{what} is not allowed during a transaction, subscription "
            f"or tracking on RedisGate; send RESET or finish it first",
        )

    def _client(self, args: list[bytes]) -> bytes:
        sub = args[1].lower()
        if sub == b"id":
            return encode_int(self.client_id)
        if sub == b"getname":
            return encode_bulk(self.name or None, resp3=self.protocol == 3)
        if sub == b"setname":
            if len(args) != 3:
                return answers.wrong_arity("client|setname")
            if not answers.valid_client_name(args[2]):
                return answers.BAD_NAME
            self.name = args[2] or None
            return REPLY_OK
        if sub == b"no-evict":
            mode = args[2].lower()
            if mode not in (b"on", b"off"):
                return encode_error("ERR", "syntax error")
            self.no_evict = mode == b"on"
            return REPLY_OK
        if sub == b"setinfo":
            if len(args) != 4:
                return answers.wrong_arity("client|setinfo")
            attr, value = args[2].lower(), args[3]
            if attr not in (b"lib-name", b"lib-ver"):
                option = args[2].decode(errors="replace")
                return encode_error("ERR", f"Unrecognized option '{option}'")
            if not answers.valid_client_name(value):
                return encode_error(
                    "ERR",
                    f"{args[2].decode(errors='replace')} cannot contain spaces, "
                    "newlines or special characters.",
                )
            if attr == b"lib-name":
                self.lib_name = value
            else:
                self.lib_ver = value
            return REPLY_OK
        info = self.client_info()  # CLIENT INFO: a verbatim string in RESP3, as Redis sends
        if self.protocol == 3:
            return b"=%d\r\ntxt:%s\r\n" % (len(info) + 4, info)
        return encode_bulk(info)

    def client_info(self) -> bytes:
        return self.peer_info(0, None, cmd="client|info").line()

    def peer_info(self, idle: int, backend_id: int | None, cmd: str = "NULL") -> PeerInfo:
        """This connection as CLIENT LIST shows it (`idle` and the backend id of its dedicated
        connection come from the transport; `cmd`: the last command, when known)."""
        tracker = self.tracker
        subs = tracker.subscriptions if tracker else {"channels": (), "patterns": (), "shard": ()}
        in_multi = tracker is not None and tracker.in_multi
        blocked = tracker is not None and tracker.blocked
        tracking = tracker is not None and tracker.tracking
        return PeerInfo(
            client_id=self.client_id,
            addr=self.peer,
            laddr=self.local,
            name=(self.name or b"").decode(errors="replace"),
            age=int(self.clock() - self.connected_at),
            idle=idle,
            flags=peers.flags_of(
                multi=in_multi,
                blocked=blocked,
                subscribed=tracker is not None and tracker.subscribed,
                tracking=tracking,
                no_evict=self.no_evict,
            ),
            sub=len(subs["channels"]),
            psub=len(subs["patterns"]),
            ssub=len(subs["shard"]),
            multi=0 if in_multi else -1,
            cmd=cmd,
            user=self.principal.key_id if self.principal else "default",  # as ACL WHOAMI
            resp=self.protocol,
            lib_name=self.lib_name.decode(errors="replace"),
            lib_ver=self.lib_ver.decode(errors="replace"),
            blocked=blocked,
            tracking=tracking,
            backend_id=backend_id,
        )

    # --- The instance's other connections -------------------------------------------------

    def _peers(self) -> list[PeerInfo]:
        """Every client connection of this instance (this one included), from the registry."""
        assert self.principal is not None
        if self.peers is None:
            return [self.peer_info(0, None)]
        return self.peers.peers(self.principal.instance.id)

    def _verbatim(self, text: bytes) -> bytes:
        """A text reply as Redis sends CLIENT LIST/INFO: verbatim in RESP3, bulk in RESP2."""
        if self.protocol == 3:
            return b"=%d\r\ntxt:%s\r\n" % (len(text) + 4, text)
        return encode_bulk(text)

    def _client_list(self, args: list[bytes]) -> Decision:
        chosen = peers.parse_list(args)
        if isinstance(chosen, bytes):
            return Answer(chosen)
        shown = []
        for peer in self._peers():
            if peer.client_id == self.client_id:
                peer = self.peer_info(0, peer.backend_id, cmd="client|list")
            if peers.matches(peer, chosen, self.client_id):
                shown.append(peer)
        return Answer(self._verbatim(peers.render_list(shown)))

    def _client_kill(self, args: list[bytes]) -> Decision:
        parsed = peers.parse_kill(args)
        if isinstance(parsed, bytes):
            return Answer(parsed)
        chosen, old_form = parsed
        killed, myself = 0, False
        for peer in self._peers():
            if not peers.matches(peer, chosen, self.client_id):
                continue
            killed += 1
            if peer.client_id == self.client_id:
                myself = True
            elif self.peers is not None:
                self.peers.kill(peer.client_id)
        if old_form:
            reply = REPLY_OK if killed else encode_error("ERR", "No such client")
        else:
            reply = encode_int(killed)
        if myself:  # as Redis: the reply is written, then the connection closes
            self.state = State.CLOSING
            return Close(reply)
        return Answer(reply)

    def _client_unblock(self, args: list[bytes]) -> Decision:
        """Redis unblocks the blocked client's dedicated connection, named by its backend id;
        `:0` for a client of another instance, unknown, or not blocked, as Redis answers."""
        parsed = peers.parse_unblock(args)
        if isinstance(parsed, bytes):
            return Answer(parsed)
        wanted, mode = parsed
        for peer in self._peers():
            if peer.client_id == wanted and peer.blocked and peer.backend_id is not None:
                command = encode_command([b"CLIENT", b"UNBLOCK", b"%d" % peer.backend_id, mode])
                return self._send(command, None)
        return Answer(encode_int(0))

    def _info_transform(self) -> Transform:
        assert self.principal is not None
        instance = self.principal.instance
        found = self._peers()
        counts = introspection.ClientCounts(
            connected=len(found),
            blocked=sum(1 for peer in found if peer.blocked),
            tracking=sum(1 for peer in found if peer.tracking),
        )
        port = self.local.rpartition(":")[2]
        return introspection.info_transform(
            db=instance.backend.db,
            shared=instance.backend.shared,
            clients=counts,
            run_id=introspection.instance_run_id(instance.id),
            port=int(port) if port.isdigit() else 0,
        )

    def _command(self, args: list[bytes]) -> Decision:
        assert self.principal is not None
        allowed = answers.allowed_names(self.table, self.principal.instance.backend.shared)
        sub = args[1].lower() if len(args) > 1 else b""
        raw = encode_command(args)
        if sub == b"count":
            return Answer(answers.command_count_reply(allowed))
        if sub == b"docs":
            return self._send(raw, answers.filter_command_docs(allowed))
        by_name = sub == b"info" and len(args) > 2
        transform = answers.filter_command_list(
            allowed, keep_positions=by_name, resp3=self.protocol == 3
        )
        return self._send(raw, transform)  # COMMAND, COMMAND INFO, COMMAND LIST


def _no_keys_fit(plan: KeyPlan, args: list[bytes]) -> bool:
    return False


@functools.lru_cache(maxsize=1024)  # as `bind_scope`'s: one per shared ScopeCheck
def _forwardable(check: ScopeCheck) -> Forwardable:
    return Forwardable(check.fast, check.keyed, check.keys_fit)


def _script_not_while_pinned(display_name: str) -> bytes:
    return encode_error(
        "ERR",
        f"'{display_name}' of a key limited to key or channel patterns runs as the key's own "
        "backend user, so not inside MULTI, WATCH, a subscription or tracking on RedisGate; "
        "send it outside them",
    )


_CHANNEL_LISTINGS = frozenset(
    {"pubsub|channels", "pubsub|shardchannels", "pubsub|numsub", "pubsub|shardnumsub"}
)
# Never refused by the rate limit: they end a transaction or the connection.
_NEVER_LIMITED = frozenset({b"exec", b"discard", b"quit", b"reset"})
_EXECABORT = encode_error("EXECABORT", "Transaction discarded because of previous errors.")


def _execabort(frame: bytes) -> bytes:
    """EXEC of a doomed transaction is sent as DISCARD; its +OK becomes Redis's EXECABORT."""
    return _EXECABORT
