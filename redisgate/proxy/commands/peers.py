"""A tenant's other connections: CLIENT LIST, CLIENT KILL and CLIENT UNBLOCK, as Redis has them.

Theory of operation
-------------------
The clients a tenant sees are its own connections to the gateway for one instance, with the
ids the gateway gave them (CLIENT ID), never the gateway's backend connections (shared by
all of the instance's clients) nor another instance's clients. The session asks a
`PeerRegistry` (the gateway, which knows every connection) for `PeerInfo` snapshots of the
instance's clients, decides with the functions here which ones a command names, Redis's way
(`parse_list`, `parse_kill`, `matches`), and asks the registry to close the ones CLIENT KILL
chose. CLIENT UNBLOCK names a client blocked on its dedicated connection: the gateway sends
Redis `CLIENT UNBLOCK` with that connection's backend id (`PeerInfo.backend_id`).

This module is sans-IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redisgate.proxy.wire.encode import encode_error
from redisgate.proxy.wire.replies import parse_int

CLIENT_TYPES = {b"normal": "normal", b"pubsub": "pubsub", b"master": "master"}
CLIENT_TYPES.update({b"replica": "replica", b"slave": "replica"})


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One client connection as CLIENT LIST shows it (Redis 7.0's fields, in its order)."""

    client_id: int
    addr: str
    laddr: str
    name: str
    age: int
    idle: int
    flags: str
    sub: int
    psub: int
    ssub: int
    multi: int
    cmd: str
    user: str
    resp: int
    lib_name: str = ""
    lib_ver: str = ""
    blocked: bool = False
    tracking: bool = False
    backend_id: int | None = None  # Redis's id of its dedicated connection, if it has one

    @property
    def kind(self) -> str:
        return "pubsub" if self.sub or self.psub or self.ssub else "normal"

    def line(self) -> bytes:
        """Its CLIENT LIST / CLIENT INFO line, `\\n`-terminated. Buffers and memory are the
        gateway's business and show as 0; `fd` as -1 (no file of the backend's)."""
        fields: list[tuple[str, object]] = [
            ("id", self.client_id),
            ("addr", self.addr),
            ("laddr", self.laddr),
            ("fd", -1),
            ("name", self.name),
            ("age", self.age),
            ("idle", self.idle),
            ("flags", self.flags),
            ("db", 0),
            ("sub", self.sub),
            ("psub", self.psub),
            ("ssub", self.ssub),
            ("multi", self.multi),
            ("qbuf", 0),
            ("qbuf-free", 0),
            ("argv-mem", 0),
            ("multi-mem", 0),
            ("rbs", 0),
            ("rbp", 0),
            ("obl", 0),
            ("oll", 0),
            ("omem", 0),
            ("tot-mem", 0),
            ("events", "r"),
            ("cmd", self.cmd),
            ("user", self.user),
            ("redir", -1),
            ("resp", self.resp),
            ("lib-name", self.lib_name),
            ("lib-ver", self.lib_ver),
        ]
        return (" ".join(f"{k}={v}" for k, v in fields) + "\n").encode()


class PeerRegistry(Protocol):
    """What the session may ask of the gateway about the instance's other connections."""

    def peers(self, instance_id: str) -> list[PeerInfo]:
        """Snapshots of every authenticated client connection of the instance, by id."""
        ...

    def kill(self, client_id: int) -> None:
        """Close that client's connection (as CLIENT KILL does: at once, owed replies lost)."""
        ...


def flags_of(
    *, multi: bool, blocked: bool, subscribed: bool, tracking: bool, no_evict: bool
) -> str:
    """Redis's `flags=` letters for a client connection (N when none apply)."""
    flags = ""
    if multi:
        flags += "x"
    if blocked:
        flags += "b"
    if subscribed:
        flags += "P"
    if tracking:
        flags += "t"
    if no_evict:
        flags += "e"
    return flags or "N"


@dataclass(frozen=True, slots=True)
class Filter:
    """What CLIENT LIST or CLIENT KILL selects (None: anything)."""

    ids: frozenset[int] | None = None
    kind: str | None = None
    addr: str | None = None
    laddr: str | None = None
    user: str | None = None
    skipme: bool = True


def matches(peer: PeerInfo, chosen: Filter, me: int) -> bool:
    if chosen.skipme and peer.client_id == me:
        return False
    return (
        (chosen.ids is None or peer.client_id in chosen.ids)
        and (chosen.kind is None or peer.kind == chosen.kind)
        and (chosen.addr is None or peer.addr == chosen.addr)
        and (chosen.laddr is None or peer.laddr == chosen.laddr)
        and (chosen.user is None or peer.user == chosen.user)
    )


_SYNTAX = encode_error("ERR", "syntax error")


def _unknown_type(name: bytes) -> bytes:
    return encode_error("ERR", f"Unknown client type '{name.decode(errors='replace')}'")


def parse_list(args: Sequence[bytes]) -> Filter | bytes:
    """`CLIENT LIST [TYPE type] [ID id …]` as Redis 7.0 parses it (else its error reply)."""
    if len(args) == 2:
        return Filter(skipme=False)
    option = args[2].lower()
    if len(args) == 4 and option == b"type":
        kind = CLIENT_TYPES.get(args[3].lower())
        return _unknown_type(args[3]) if kind is None else Filter(kind=kind, skipme=False)
    if len(args) > 3 and option == b"id":
        ids = set()
        for arg in args[3:]:
            value = parse_int(arg)
            if value is None or value < 1:
                return encode_error("ERR", "Invalid client ID")
            ids.add(value)
        return Filter(ids=frozenset(ids), skipme=False)
    return _SYNTAX


def parse_kill(args: Sequence[bytes]) -> tuple[Filter, bool] | bytes:
    """`CLIENT KILL addr` (old form: `True`, may kill the caller) or `CLIENT KILL <filter
    value> …` (new form: `False`, skips the caller unless SKIPME no), as Redis 7.0 parses."""
    if len(args) == 3:
        return Filter(addr=args[2].decode(errors="replace"), skipme=False), True
    if len(args) < 4:
        return _SYNTAX
    values: dict[str, Any] = {}  # Filter fields, checked as they are parsed
    i = 2
    while i < len(args):
        option = args[i].lower()
        if i + 1 >= len(args):
            return _SYNTAX
        value = args[i + 1]
        if option == b"id":
            number = parse_int(value)
            if number is None or number < 1:
                return encode_error("ERR", "client-id should be greater than 0")
            values["ids"] = frozenset({number})
        elif option == b"type":
            kind = CLIENT_TYPES.get(value.lower())
            if kind is None:
                return _unknown_type(value)
            values["kind"] = kind
        elif option in (b"addr", b"laddr", b"user"):
            values[option.decode()] = value.decode(errors="replace")
        elif option == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                return _SYNTAX
            values["skipme"] = value.lower() == b"yes"
        else:
            return _SYNTAX
        i += 2
    return Filter(**values), False


def parse_unblock(args: Sequence[bytes]) -> tuple[int, bytes] | bytes:
    """`CLIENT UNBLOCK id [TIMEOUT|ERROR]`: (id, mode) or Redis's error reply."""
    client_id = parse_int(args[2])
    if client_id is None:
        return encode_error("ERR", "value is not an integer or out of range")
    mode = args[3].upper() if len(args) == 4 else b"TIMEOUT"
    if mode not in (b"TIMEOUT", b"ERROR"):
        return encode_error("ERR", "CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    return client_id, mode


def render_list(peers: Iterable[PeerInfo]) -> bytes:
    return b"".join(peer.line() for peer in sorted(peers, key=lambda p: p.client_id))
