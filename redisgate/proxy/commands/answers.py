"""Replies the gateway writes itself, and filters for replies a tenant may only partly see.

Sans-IO helpers for the session: the HELLO reply, ACL CAT, and reply transforms for COMMAND
(only what the gateway allows) and PUBSUB listings; INFO, CONFIG GET, SLOWLOG and ROLE are
`introspection.py`'s, CLIENT LIST/KILL/UNBLOCK `peers.py`'s. Transforms work on the frame's
bytes and keep untouched elements byte for byte: aggregates are split with the same
`ReplyFramer` that frames upstream replies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redisgate.proxy.commands.routing import SERVER_WIDE, Route
from redisgate.proxy.commands.table import CommandSpec, CommandTable
from redisgate.proxy.wire.encode import (
    REPLY_NOPROTO,
    REPLY_OK,
    REPLY_SYNTAX_ERROR,
    encode_array,
    encode_bulk,
    encode_command,
    encode_error,
    encode_int,
    encode_map,
)
from redisgate.proxy.wire.replies import parse_int, scalar_text, split_aggregate
from redisgate.scopes import Scope


def unknown_command(args: list[bytes]) -> bytes:
    """Redis's own wording for a command it does not know."""
    shown = b""
    for arg in args[1:]:
        if len(shown) >= 128:
            break
        shown += b"'" + arg[: 128 - len(shown)] + b"' "
    name = args[0][:128].decode(errors="replace")
    return encode_error(
        "ERR",
        f"unknown command '{name}', with args beginning with: " + shown.decode(errors="replace"),
    )


def wrong_arity(name: str) -> bytes:
    return encode_error("ERR", f"wrong number of arguments for '{name}' command")


def unknown_subcommand(container: CommandSpec, args: list[bytes]) -> bytes:
    """Redis's reply to a container command with a missing or unknown subcommand."""
    if len(args) < 2:
        return wrong_arity(container.name)
    sub = args[1][:128].decode(errors="replace")
    return encode_error("ERR", f"unknown subcommand '{sub}'. Try {container.name.upper()} HELP.")


def denied(spec: CommandSpec, reason: str) -> bytes:
    """-NOPERM for a command the gateway refuses whatever the key allows, saying why."""
    why = reason or "not available through RedisGate"
    return encode_error(
        "NOPERM",
        f"this user has no permissions to run the '{spec.display_name}' command "
        f"through RedisGate: {why}",
    )


def shared_server_refusal(
    base: bytes, scripting: frozenset[bytes], pubsub: frozenset[bytes]
) -> bytes | None:
    """-NOPERM for scripts and pub/sub on a shared server (they cross databases), else None."""
    if base in scripting:
        why = "scripts could reach other databases of this shared server"
    elif base in pubsub:
        why = "pub/sub channels are server-wide and this server is shared"
    else:
        return None
    return encode_error(
        "NOPERM",
        f"'{base.decode()}' is not available on this instance: "
        f"{why}; use an instance with a dedicated server",
    )


def tracking_refusal(args: list[bytes], shared_server: bool, allkeys: bool) -> bytes | None:
    """-NOPERM for CLIENT TRACKING that would name keys the client may not see, else None.

    Redis sends invalidations by key name whatever the db, so on a shared server they would
    name other tenants' keys; in BCAST mode they name every key written under the prefixes,
    so a key limited to patterns may not use it (default tracking only reports keys the
    client itself read, which its scope allowed).
    """
    if shared_server:
        why = "invalidations name keys of every database, and this server is shared"
    elif not allkeys and any(a.lower() == b"bcast" for a in args[3:]):
        why = "broadcast invalidations name keys outside this key's patterns"
    else:
        return None
    return encode_error("NOPERM", f"CLIENT TRACKING is not available here: {why}")


BAD_NAME = encode_error(
    "ERR", "Client names cannot contain spaces, newlines or special characters."
)


@dataclass(frozen=True, slots=True)
class HelloArgs:
    """`HELLO [protover [AUTH username password] [SETNAME clientname]]`, parsed."""

    protocol: int | None
    token: bytes | None
    setname: bytes | None


def parse_hello(args: list[bytes]) -> HelloArgs | bytes:
    """The parsed arguments, or the error reply Redis would give."""
    protocol: int | None = None
    token: bytes | None = None
    setname: bytes | None = None
    i = 1
    if len(args) > 1:
        protocol = parse_int(args[1])  # strictly, as Redis's string2ll
        if protocol is None:
            return encode_error("ERR", "Protocol version is not an integer or out of range")
        if protocol not in (2, 3):  # checked before the options, as Redis does
            return REPLY_NOPROTO
        i = 2
    while i < len(args):
        option = args[i].lower()
        if option == b"auth" and i + 2 < len(args):
            token = args[i + 2]
            i += 3
        elif option == b"setname" and i + 1 < len(args):
            setname = args[i + 1]
            i += 2
        else:
            opt = args[i].decode(errors="replace")
            return encode_error("ERR", f"Syntax error in HELLO option '{opt}'")
    if setname is not None and not valid_client_name(setname):
        return BAD_NAME
    return HelloArgs(protocol, token, setname)


def hello_reply(*, protocol: int, client_id: int, version: str, resp3: bool) -> bytes:
    """The HELLO reply: a map in RESP3, a flat array in RESP2 (what Redis itself sends)."""
    return encode_map(
        [
            ("server", encode_bulk("redis")),
            ("version", encode_bulk(version)),
            ("proto", encode_int(protocol)),
            ("id", encode_int(client_id)),
            ("mode", encode_bulk("standalone")),
            ("role", encode_bulk("master")),
            ("modules", encode_array([])),
        ],
        resp3=resp3,
    )


def valid_client_name(name: bytes) -> bool:
    """Redis's rule: printable ASCII from '!' to '~' (no spaces or newlines)."""
    return all(33 <= c <= 126 for c in name)


# --- COMMAND -------------------------------------------------------------------------------


def allowed_names(table: CommandTable, shared: bool = True) -> frozenset[bytes]:
    """Names a tenant can run through the gateway: commands, and subcommands by full name
    (`client|id`, as COMMAND LIST shows them); a container counts if any subcommand does.
    Where the instance owns its server (`shared` false) the `SERVER_WIDE` ones count too."""

    def runs(spec: CommandSpec) -> bool:
        return spec.route is not Route.DENIED or (not shared and spec.name in SERVER_WIDE)

    names = {spec.name.encode() for spec in table.walk() if runs(spec)}
    names.update(spec.name.encode() for spec in table if any(map(runs, spec.subcommands.values())))
    return frozenset(names)


def _first_bulk(frame: bytes) -> bytes | None:
    parts = split_aggregate(frame)
    if parts is None or not parts[1]:
        return None
    return scalar_text(parts[1][0])


def filter_command_list(
    allowed: frozenset[bytes], *, keep_positions: bool = False, resp3: bool = False
) -> Callable[[bytes], bytes]:
    """For COMMAND and COMMAND LIST (denied commands left out) and COMMAND INFO name…
    (`keep_positions`: one element per name asked, a null for a denied one, as Redis does for
    a name it does not know)."""
    null = b"_\r\n" if resp3 else b"*-1\r\n"

    def transform(frame: bytes) -> bytes:
        parts = split_aggregate(frame)
        if parts is None:
            return frame
        kind, elements = parts
        kept = []
        for element in elements:
            name = scalar_text(element) if element[:1] in (b"$", b"+") else _first_bulk(element)
            if name is None or name.lower() in allowed:
                kept.append(element)
            elif keep_positions:
                kept.append(null)
        return kind + b"%d\r\n" % len(kept) + b"".join(kept)

    return transform


def filter_command_docs(allowed: frozenset[bytes]) -> Callable[[bytes], bytes]:
    """For COMMAND DOCS: a map (RESP3) or flat array (RESP2) of name -> doc."""

    def transform(frame: bytes) -> bytes:
        parts = split_aggregate(frame)
        if parts is None:
            return frame
        kind, elements = parts
        kept: list[bytes] = []
        for i in range(0, len(elements) - 1, 2):
            name = scalar_text(elements[i])
            if name is None or name.lower() in allowed:
                kept += elements[i : i + 2]
        count = len(kept) // 2 if kind == b"%" else len(kept)
        return kind + b"%d\r\n" % count + b"".join(kept)

    return transform


def visible_channels(
    spec: CommandSpec, args: list[bytes], scope: Scope
) -> tuple[bytes, Callable[[bytes], bytes] | None]:
    """PUBSUB CHANNELS/NUMSUB and their shard forms show only the channels the key may see:
    listings are filtered (the transform), NUMSUB is asked only about allowed channels."""
    if spec.name.endswith("numsub"):
        return encode_command([*args[:2], *filter(scope.channel_allowed, args[2:])]), None
    return encode_command(args), filter_channel_list(scope.channel_allowed)


def filter_channel_list(allowed: Callable[[bytes], bool]) -> Callable[[bytes], bytes]:
    """For PUBSUB CHANNELS/SHARDCHANNELS: only the channels `allowed` accepts."""

    def transform(frame: bytes) -> bytes:
        parts = split_aggregate(frame)
        if parts is None:
            return frame
        kind, elements = parts
        kept = [e for e in elements if (name := scalar_text(e)) is not None and allowed(name)]
        return kind + b"%d\r\n" % len(kept) + b"".join(kept)

    return transform


def command_count_reply(allowed: frozenset[bytes]) -> bytes:
    """COMMAND COUNT counts top-level commands, as Redis does."""
    return encode_int(sum(1 for name in allowed if b"|" not in name))


def select_reply(args: list[bytes]) -> bytes:
    """SELECT: db 0 is the instance's own db; there is no other."""
    if len(args) != 2:
        return wrong_arity("select")
    index = parse_int(args[1])
    if index is None:
        return encode_error("ERR", "value is not an integer or out of range")
    if index != 0:
        return encode_error("ERR", "DB index is out of range")
    return REPLY_OK


def acl_reply(args: list[bytes], key_id: str, table: CommandTable) -> bytes:
    """ACL WHOAMI (the key's public id: what the dashboard and the audit log show), ACL CAT."""
    if args[1].lower() == b"whoami":
        return encode_bulk(key_id)
    if len(args) > 3:
        return wrong_arity("acl|cat")
    reply = acl_cat_reply(table, args[2] if len(args) == 3 else None)
    if reply is None:
        category = args[2].decode(errors="replace")
        return encode_error("ERR", f"Unknown category '{category}'")
    return reply


def acl_cat_reply(table: CommandTable, category: bytes | None) -> bytes | None:
    """ACL CAT [category]: categories, or the allowed commands in one (None: unknown category)."""
    if category is None:
        cats = sorted({c for spec in table.walk() for c in spec.acl_categories})
        return encode_array([encode_bulk(c) for c in cats])
    wanted = category.decode(errors="replace").lower().lstrip("@")
    names = sorted(
        spec.name
        for spec in table.walk()
        if wanted in spec.acl_categories and spec.route is not Route.DENIED
    )
    known = any(wanted in spec.acl_categories for spec in table.walk())
    if not known:
        return None
    return encode_array([encode_bulk(n) for n in names])


def translate_redirect(
    args: list[bytes], redirect_target: Callable[[int], int | None] | None
) -> list[bytes] | bytes | None:
    """CLIENT TRACKING … REDIRECT <id>: the id the client knows is a gateway client id;
    the backend needs the id of that client's own upstream connection. None: no
    REDIRECT; bytes: the error reply."""
    lowered = [a.lower() for a in args]
    if b"redirect" not in lowered[3:]:
        return None
    at = lowered.index(b"redirect", 3) + 1
    if at >= len(args):
        return REPLY_SYNTAX_ERROR
    wanted = parse_int(args[at])  # strictly, as Redis's string2ll
    if wanted is None:
        return encode_error("ERR", "value is not an integer or out of range")
    backend_id = redirect_target(wanted) if redirect_target else None
    if backend_id is None:
        return encode_error("ERR", "The client ID you want redirect to does not exist")
    return [*args[:at], b"%d" % backend_id, *args[at + 1 :]]
