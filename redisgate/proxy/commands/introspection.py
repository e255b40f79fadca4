"""What a tenant sees of its server when it asks about it: INFO, CONFIG GET, SLOWLOG GET, ROLE.

Theory of operation
-------------------
These commands are sent to the instance's Redis as the client wrote them (so section
arguments, patterns and errors are Redis's own) and their replies are rewritten here, on the
frame's bytes, by three rules:

1. Nothing that exposes the host or the platform reaches a tenant: paths, executables, process
   ids, listening ports and addresses, other servers' addresses, passwords. Each such field
   is listed once below (`WITHHELD_INFO`, `REPLACED_INFO`, `WITHHELD_CONFIG`), with why;
   `scripts/gen_commands_doc.py` prints those lists in docs/commands.md.
2. Clients are the tenant's own connections to the gateway for this instance (`ClientCounts`,
   taken from the gateway's registry when the command is sent), never the gateway's backend
   connections, which are the gateway's and shared by all of the instance's clients.
3. On a shared server (one db of a server other tenants use) only what is the instance's own
   is shown: its keyspace line (as db0), its clients, and the static facts about the Redis it
   talks to (version, mode, architecture); every figure of the whole server is left out.

This module is sans-IO: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from redisgate.proxy.wire.replies import scalar_text, split_aggregate

# --- INFO ------------------------------------------------------------------------------------

# Fields left out on every instance: section -> field -> why (shown in docs/commands.md).
WITHHELD_INFO: dict[str, dict[str, str]] = {
    "server": {
        "process_id": "the backend's process id on the host",
        "executable": "a host path",
        "config_file": "a host path",
    },
    "memory": {
        "total_system_memory": "the host's memory",
        "total_system_memory_human": "the host's memory",
    },
    "replication": {
        "master_host": "another server's address",
        "master_port": "another server's address",
        "slaveN": "each replica's address (the `slave0`, `slave1` … lines)",
    },
}
# Fields whose value is replaced on every instance: field -> what it shows instead.
REPLACED_INFO: dict[str, str] = {
    "os": "the OS family only (`Linux`), not the host's kernel release",
    "run_id": "a stable id of the instance (SHA-1 of its id), not the backend process's",
    "tcp_port": "the gateway's port the client connected to",
    "connected_clients": "the instance's client connections to this gateway",
    "blocked_clients": "those of them waiting in a blocking command",
    "tracking_clients": "those of them with client-side caching on",
}
# What a shared server shows: section -> fields (keyspace: the instance's own line as db0).
SHARED_INFO: dict[str, frozenset[str]] = {
    "server": frozenset(
        {
            "redis_version",
            "redis_git_sha1",
            "redis_git_dirty",
            "redis_build_id",
            "redis_mode",
            "os",
            "arch_bits",
            "monotonic_clock",
            "multiplexing_api",
            "atomicvar_api",
            "gcc_version",
            "run_id",
            "tcp_port",
            "server_time_usec",
            "uptime_in_seconds",
            "uptime_in_days",
            "hz",
            "configured_hz",
            "lru_clock",
            "io_threads_active",
        }
    ),
    "clients": frozenset({"connected_clients", "blocked_clients", "tracking_clients"}),
    "replication": frozenset({"role"}),
    "cluster": frozenset({"cluster_enabled"}),
    "keyspace": frozenset(),
}
_REPLICA_LINE = re.compile(rb"^slave\d+$")
_WITHHELD_FIELDS = frozenset(
    field.encode() for fields in WITHHELD_INFO.values() for field in fields if field != "slaveN"
)


@dataclass(frozen=True, slots=True)
class ClientCounts:
    """The instance's client connections to this gateway, as INFO's clients section counts."""

    connected: int = 0
    blocked: int = 0
    tracking: int = 0


def instance_run_id(instance_id: str) -> str:
    """INFO's run_id for an instance: 40 hex digits, stable across restarts and gateways."""
    return hashlib.sha1(instance_id.encode()).hexdigest()


def _bulk_payload(frame: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, text) of a `$` bulk or `=` verbatim frame; the prefix is `txt:` for verbatim."""
    first = frame[:1]
    if first not in (b"$", b"="):
        return None
    header_end = frame.index(b"\r\n")
    if frame[1:header_end] == b"-1":
        return None
    body = frame[header_end + 2 : -2]
    if first == b"=":
        return body[:4], body[4:]
    return b"", body


def _bulk_frame(kind: bytes, prefix: bytes, text: bytes) -> bytes:
    body = prefix + text
    return kind + b"%d\r\n" % len(body) + body + b"\r\n"


def info_transform(
    *, db: int, shared: bool, clients: ClientCounts, run_id: str, port: int | None
) -> Callable[[bytes], bytes]:
    """A transform for an INFO reply (whatever sections were asked): see the module rules."""
    own_db = b"db%d" % db
    replaced = {
        b"run_id": run_id.encode(),
        b"connected_clients": b"%d" % clients.connected,
        b"blocked_clients": b"%d" % clients.blocked,
        b"tracking_clients": b"%d" % clients.tracking,
    }
    if port is not None:
        replaced[b"tcp_port"] = b"%d" % port
    shared_fields = {
        name.encode(): frozenset(f.encode() for f in fields) for name, fields in SHARED_INFO.items()
    }

    def line_out(section: bytes, line: bytes) -> bytes | None:
        name, _, value = line.partition(b":")
        if section == b"keyspace":
            return b"db0:" + value if name == own_db else None
        if shared and name not in shared_fields.get(section, ()):
            return None
        if name in _WITHHELD_FIELDS or (section == b"replication" and _REPLICA_LINE.match(name)):
            return None
        if name == b"os":
            return b"os:" + value.split(b" ", 1)[0]
        new = replaced.get(name)
        return line if new is None else name + b":" + new

    def transform(frame: bytes) -> bytes:
        payload = _bulk_payload(frame)
        if payload is None:
            return frame  # an error (or anything unexpected) goes through as it is
        prefix, text = payload
        sections: list[bytes] = []
        header: bytes | None = None
        kept: list[bytes] = []

        def close() -> None:
            if header is None:
                return
            if shared and not kept and header[1:].strip().lower() != b"keyspace":
                return  # a shared server's section with nothing of the instance's own
            sections.append(b"".join(x + b"\r\n" for x in [header, *kept]))

        for line in text.split(b"\r\n"):
            if line.startswith(b"#"):
                close()
                header, kept = line, []
            elif line and header is not None and b":" in line:
                out = line_out(header[1:].strip().lower(), line)
                if out is not None:
                    kept.append(out)
        close()
        return _bulk_frame(frame[:1], prefix, b"\r\n".join(sections))

    return transform


# --- CONFIG GET ------------------------------------------------------------------------------

_PATH = "a host path"
_ADDRESS = "a host address or port (clients know the gateway's)"
_SECRET = "a backend password"
# Parameters CONFIG GET leaves out: name -> why (shown in docs/commands.md).
WITHHELD_CONFIG: dict[str, str] = {
    "dir": _PATH,
    "logfile": _PATH,
    "pidfile": _PATH,
    "dbfilename": "a file name under the data folder, which is the operator's",
    "appendfilename": "a file name under the data folder, which is the operator's",
    "appenddirname": "a file name under the data folder, which is the operator's",
    "aclfile": _PATH,
    "unixsocket": _PATH,
    "unixsocketperm": "the permissions of a host socket file",
    "cluster-config-file": _PATH,
    "tls-cert-file": _PATH,
    "tls-key-file": _PATH,
    "tls-client-cert-file": _PATH,
    "tls-client-key-file": _PATH,
    "tls-ca-cert-file": _PATH,
    "tls-ca-cert-dir": _PATH,
    "tls-dh-params-file": _PATH,
    "tls-key-file-pass": _SECRET,
    "tls-client-key-file-pass": _SECRET,
    "requirepass": _SECRET,
    "masterauth": _SECRET,
    "masteruser": "the backend's replication user",
    "bind": _ADDRESS,
    "bind-source-addr": _ADDRESS,
    "port": _ADDRESS,
    "tls-port": _ADDRESS,
    "cluster-port": _ADDRESS,
    "cluster-announce-ip": _ADDRESS,
    "cluster-announce-hostname": _ADDRESS,
    "cluster-announce-port": _ADDRESS,
    "cluster-announce-tls-port": _ADDRESS,
    "cluster-announce-bus-port": _ADDRESS,
    "replica-announce-ip": _ADDRESS,
    "replica-announce-port": _ADDRESS,
    "slave-announce-ip": _ADDRESS,
    "slave-announce-port": _ADDRESS,
    "replicaof": "another server's address",
    "slaveof": "another server's address",
    "syslog-ident": "the operator's logging setup",
    "proc-title-template": "the process title, which names host paths",
    "server_cpulist": "the host's CPU layout",
    "bio_cpulist": "the host's CPU layout",
    "aof_rewrite_cpulist": "the host's CPU layout",
    "bgsave_cpulist": "the host's CPU layout",
}
_WITHHELD_CONFIG = frozenset(name.encode() for name in WITHHELD_CONFIG)


def config_get_transform(frame: bytes) -> bytes:
    """CONFIG GET's reply (a flat name/value array in RESP2, a map in RESP3) without the
    withheld parameters."""
    parts = split_aggregate(frame)
    if parts is None:
        return frame
    kind, elements = parts
    kept: list[bytes] = []
    for i in range(0, len(elements) - 1, 2):
        name = scalar_text(elements[i])
        if name is None or name.lower() not in _WITHHELD_CONFIG:
            kept += elements[i : i + 2]
    count = len(kept) // 2 if kind == b"%" else len(kept)
    return kind + b"%d\r\n" % count + b"".join(kept)


# --- SLOWLOG GET -----------------------------------------------------------------------------

_EMPTY_BULK = b"$0\r\n\r\n"


def slowlog_transform(frame: bytes) -> bytes:
    """SLOWLOG GET's entries (id, time, duration, arguments, client address, client name)
    with the client address and name blanked: the client there is the gateway's backend
    connection, shared by the instance's clients, and its address is the gateway's."""
    parts = split_aggregate(frame)
    if parts is None:
        return frame
    kind, entries = parts
    out = []
    for entry in entries:
        fields = split_aggregate(entry)
        if fields is None or len(fields[1]) != 6:
            out.append(entry)
            continue
        ekind, values = fields
        out.append(ekind + b"6\r\n" + b"".join(values[:4]) + _EMPTY_BULK + _EMPTY_BULK)
    return kind + b"%d\r\n" % len(out) + b"".join(out)


# --- ROLE ------------------------------------------------------------------------------------


def role_transform(frame: bytes) -> bytes:
    """ROLE without other servers' addresses: a master's replica list is emptied (its
    replicas are the operator's), a replica's master shows as "?" port 0."""
    parts = split_aggregate(frame)
    if parts is None or not parts[1]:
        return frame
    kind, elements = parts
    role = scalar_text(elements[0])
    if role == b"master" and len(elements) == 3:
        return kind + b"3\r\n" + elements[0] + elements[1] + kind + b"0\r\n"
    if role == b"slave" and len(elements) >= 3:
        rest = elements[3:]
        return (
            kind + b"%d\r\n" % len(elements) + elements[0] + b"$1\r\n?\r\n:0\r\n" + b"".join(rest)
        )
    return frame
