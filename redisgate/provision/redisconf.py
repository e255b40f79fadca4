"""The files of a local instance: its redis.conf, its state file, and reasons read from its log.

Everything here is pure or plain file I/O, so it is tested without starting a process. The
folder of an instance holds::

    redis.conf   0600: requirepass, maxmemory, policy, persistence (rewritten on every change)
    state.json   0600: port, password and pid, so a restarted control plane can re-adopt it
    redis.pid    written by redis-server itself
    redis.log    redis-server's output, appended across restarts (over 10 MiB: redis.log.1)
    dump.rdb, appendonlydir/   when persistence is on (removed before a start without it)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from redisgate.errors import ProvisionError
from redisgate.provision.base import InstanceSpec

CONFIG_FILE = "redis.conf"
STATE_FILE = "state.json"
PID_FILE = "redis.pid"
LOG_FILE = "redis.log"
# Redis's default file names (dbfilename, appenddirname), which render_config keeps.
SAVED_DATA = ("dump.rdb", "appendonlydir")

# Redis 7's default snapshot points, used when persistence is on (with AOF, fsync every second;
# docs/durability.md says why both).
SAVE_POINTS = "3600 1 300 100 60 10000"
# `ps` then shows which instance a redis-server belongs to; adoption checks it too.
PROC_TITLE = "{title} {listen-addr} {server-mode} {config-file}"

_READY_LINE = "Ready to accept connections"
_LOG_TAIL_BYTES = 64 * 1024
_LOG_ROTATE_BYTES = 10 * 1024 * 1024
# "1234:M 25 Nov 2026 10:00:00.123 # message": keep the message.
_LOG_PREFIX = re.compile(r"^\d+:[A-Z] \d{1,2} \w{3} \d{4} [\d:.]+ ([.\-*#]) ")


def live_settings(spec: InstanceSpec) -> dict[str, str]:
    """The settings a spec controls, as CONFIG SET takes them (also written to redis.conf).

    `client-output-buffer-limit normal`: Redis buffers replies for a client without bound
    by default, outside maxmemory. The gateway bounds what it asks a connection for
    (upstream_max_inflight_bytes), so this is the backstop: a connection whose unread
    replies pass twice the instance's memory (64 MB at least) is closed by Redis."""
    return {
        "maxmemory": f"{spec.memory_mb}mb",
        "maxmemory-policy": spec.eviction_policy,
        "save": SAVE_POINTS if spec.persistence else "",
        "appendonly": "yes" if spec.persistence else "no",
        "client-output-buffer-limit": f"normal {max(64, 2 * spec.memory_mb)}mb 0 0",
    }


def quote(value: str) -> str:
    """A redis.conf argument: bare when safe, else double-quoted with Redis's escapes."""
    if value and re.fullmatch(r"[A-Za-z0-9_.,:/@+=-]+", value):
        return value
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


DISABLED_COMMANDS = ("MIGRATE", "RESTORE-ASKING")


def render_config(spec: InstanceSpec, *, host: str, port: int, password: str, folder: Path) -> str:
    """The whole redis.conf of an instance."""
    lines = {
        "bind": host,
        "port": str(port),
        "protected-mode": "yes",
        "daemonize": "no",
        "dir": str(folder),
        "pidfile": str(folder / PID_FILE),
        "logfile": "",  # stdout, which the launcher appends to redis.log
        "requirepass": password,
        # RESTORE (and a script's redis.call('RESTORE')) checks every payload in depth: a
        # crafted DUMP payload is refused instead of loaded (docs/commands.md).
        "sanitize-dump-payload": "yes",
        **live_settings(spec),
        "appendfsync": "everysec",
        "proc-title-template": PROC_TITLE,
    }
    header = (
        f"# redis.conf of RedisGate instance {spec.instance_id}, written by the local\n"
        "# provisioner and rewritten on every change: edits here are lost.\n"
    )
    # The gateway refuses these, but a Lua script's redis.call() reaches the server directly:
    # MIGRATE would connect anywhere from this host; RESTORE-ASKING is cluster-internal.
    disabled = "".join(f'rename-command {name} ""\n' for name in DISABLED_COMMANDS)
    return header + "".join(f"{key} {quote(value)}\n" for key, value in lines.items()) + disabled


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable by its owner only (it holds secrets)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an old tmp file may have had other bits
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class InstanceState:
    """What a control plane needs to find an instance's server again after it restarts."""

    instance_id: str
    port: int
    password: str
    pid: int | None = None

    def __repr__(self) -> str:
        return f"InstanceState({self.instance_id!r}, port={self.port}, pid={self.pid})"


def write_state(folder: Path, state: InstanceState) -> None:
    write_private(folder / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")


def read_state(folder: Path) -> InstanceState | None:
    """The state file of `folder`, or None when there is none; ProvisionError if unreadable."""
    path = folder / STATE_FILE
    try:
        data = json.loads(path.read_text())
        return InstanceState(
            instance_id=str(data["instance_id"]),
            port=int(data["port"]),
            password=str(data["password"]),
            pid=None if data.get("pid") is None else int(data["pid"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProvisionError(f"state file {path} is unreadable: {exc}") from None


def start_log(folder: Path) -> int:
    """Where the log of a run about to start begins; a log past 10 MiB is rotated first
    (a crash loop must not fill the disk)."""
    path = folder / LOG_FILE
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size > _LOG_ROTATE_BYTES:
        os.replace(path, folder / f"{LOG_FILE}.1")
        return 0
    return size


def log_since(folder: Path, offset: int) -> str:
    """The log written from `offset` on (its last 64 KiB at most; -1: just the tail)."""
    try:
        with (folder / LOG_FILE).open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - _LOG_TAIL_BYTES, 0))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def forget_saved_data(folder: Path) -> None:
    """Remove the snapshot and append-only files of an instance about to start without
    persistence: Redis would load a snapshot left from when persistence was on, bringing
    back data (and deleted keys) from then."""
    for name in SAVED_DATA:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def remove_folder(folder: Path) -> None:
    """Remove an instance's folder and data (gone already is fine)."""
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ProvisionError(f"cannot remove {folder}: {exc}") from None


def describe_exit(code: int | None) -> str:
    """'redis-server exited with code 1', '... was killed by signal 9 (SIGKILL)'."""
    if code is None:  # not our child: its exit status went to its real parent
        return "redis-server exited"
    if code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:
            name = ""
        return f"redis-server was killed by signal {-code}{name}"
    return f"redis-server exited with code {code}"


def reason_from_log(text: str, *, was_ready: bool, lines: int = 2) -> str:
    """The log lines that explain why a run of redis-server ended ('' when none do).

    `text` is the log written during that run. A server that never became ready explains
    itself in its last lines (a config error, a port in use). One that ran and then died only
    counts its warnings (`#`) written after it became ready; a SIGKILLed server writes nothing,
    and its start-up chatter must not pose as the reason.
    """
    all_lines = [line for line in text.splitlines() if line.strip()]
    if was_ready:
        for i in range(len(all_lines) - 1, -1, -1):
            if _READY_LINE in all_lines[i]:
                all_lines = all_lines[i + 1 :]
                break
        picked = []
        for line in all_lines:
            match = _LOG_PREFIX.match(line)
            if match and match.group(1) == "#":
                picked.append(line[match.end() :])
    else:
        picked = [_strip_prefix(line) for line in all_lines]
    return " / ".join(line.strip() for line in picked[-lines:])


def _strip_prefix(line: str) -> str:
    match = _LOG_PREFIX.match(line)
    return line[match.end() :] if match else line
