"""How an instance gets a real Redis: a supervised local redis-server or an operator's server.

`base` holds what every provisioner shares (the interface, specs, statuses; the address it
returns is `redisgate.backends.Backend`); `local.LocalProvisioner` runs one redis-server per
instance on this machine.
"""

from __future__ import annotations

from redisgate.provision.base import (
    EVICTION_POLICIES,
    InstanceSpec,
    Provisioner,
    State,
    Status,
    StatusCallback,
    check_instance_id,
)

__all__ = [
    "EVICTION_POLICIES",
    "InstanceSpec",
    "Provisioner",
    "State",
    "Status",
    "StatusCallback",
    "check_instance_id",
]
