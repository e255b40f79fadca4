"""What every provisioner promises: the shapes it takes and returns, and its interface.

The control plane owns the truth (Postgres): which instances exist, their spec and the
endpoint each was given. A provisioner turns a spec into a reachable Redis and keeps it so.
It reports status changes through `on_status` so the control plane can persist them, and after
a control-plane restart it is handed the stored truth (`adopt`) to take the servers back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from redisgate.backends import Backend
from redisgate.errors import InvalidSpec

# Redis 7's maxmemory-policy values, in the order redis.conf documents them.
EVICTION_POLICIES = (
    "volatile-lru",
    "allkeys-lru",
    "volatile-lfu",
    "allkeys-lfu",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
)

# Instance ids name folders and appear in config files: keep them to a safe alphabet.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_instance_id(instance_id: str) -> str:
    """`instance_id` if it is safe as a folder name; InvalidSpec otherwise."""
    if not isinstance(instance_id, str) or not _INSTANCE_ID.fullmatch(instance_id):
        raise InvalidSpec(f"instance id {instance_id!r} must be 1-64 letters, digits, '-' or '_'")
    return instance_id


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """The shape a user asked for; validated on construction so a bad one cannot travel.

    `persistence` (on unless asked otherwise): the data survives a restart of the server
    (append-only file fsynced every second, plus snapshots; see `redisconf.live_settings`).
    """

    instance_id: str
    memory_mb: int
    eviction_policy: str = "noeviction"
    persistence: bool = True

    def __post_init__(self) -> None:
        check_instance_id(self.instance_id)
        if (
            not isinstance(self.memory_mb, int)
            or isinstance(self.memory_mb, bool)
            or self.memory_mb < 1
        ):
            raise InvalidSpec(
                f"memory_mb must be a whole number of MB, 1 or more: {self.memory_mb!r}"
            )
        if self.eviction_policy not in EVICTION_POLICIES:
            raise InvalidSpec(
                f"unknown eviction policy {self.eviction_policy!r}: "
                f"choose one of {', '.join(EVICTION_POLICIES)}"
            )
        if not isinstance(self.persistence, bool):
            raise InvalidSpec(f"persistence must be true or false: {self.persistence!r}")


class State(Enum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Status:
    """An instance's state and, when it is not running, a reason a user can read."""

    state: State
    reason: str = ""


# Called on the event loop at every status change; it must not block (schedule the DB write).
StatusCallback = Callable[[str, Status], None]


class Provisioner(Protocol):
    """Gives instances a real Redis and keeps it running (`local.LocalProvisioner`).

    The `static` provisioner (`static.py`) runs nothing to keep running: it allocates a db in
    the creating transaction instead, so it is two functions, not this interface.
    """

    on_status: StatusCallback | None

    async def provision(self, spec: InstanceSpec) -> Backend:
        """Start a Redis for a new instance and return its address once it answers.

        On failure: ProvisionError (also reported as failed), and nothing is left behind.
        """
        ...

    async def update(self, spec: InstanceSpec) -> None:
        """Apply a changed spec (memory, eviction policy, persistence) without a restart; a
        server that is down meanwhile gets it when it starts again."""
        ...

    async def deprovision(self, instance_id: str) -> None:
        """Stop the instance's Redis and remove its data. Unknown ids are not an error."""
        ...

    async def adopt(self, known: Mapping[str, tuple[InstanceSpec, Backend]]) -> dict[str, Backend]:
        """Take back the stored instances after a restart: running ones are kept, never
        duplicated; missing ones start again on their stored endpoint. One that cannot
        start is reported failed and retried in the background, not raised."""
        ...

    def status(self, instance_id: str) -> Status:
        """The instance's current status; ProvisionError if this provisioner does not know it."""
        ...

    async def close(self, *, stop_servers: bool) -> None:
        """Stop supervising; stop the servers too, or leave them running for a later adopt."""
        ...
