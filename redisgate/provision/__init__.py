"""How an instance gets a real Redis: a supervised local redis-server or an operator's server.

`base` holds what every provisioner shares (the interface, specs, statuses; the address it
returns is `redisgate.backends.Backend`); `local.LocalProvisioner` runs one redis-server per
instance on this machine; `static` gives an instance a db on an operator-registered server (an
allocation in the database, not a process); `backend_client` is the control plane's direct
client of an instance's Redis. `control/provisioning.py` wires the configured one to the
instance rows.
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
