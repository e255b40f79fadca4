"""Ports for local instances: from a configured range, or any free one the kernel offers.

A port stays with its instance for life (restarts and re-adoption reuse it), so the gateway's
stored endpoint stays valid. Ports the kernel picks come from the ephemeral range, where an
outgoing connection may briefly hold a port whose server is restarting; a dedicated
`port_range` outside it avoids that on busy hosts.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Collection

from redisgate.errors import ProvisionError
from redisgate.launcher.process import free_port


def bindable(host: str, port: int) -> bool:
    """True if a listener could bind host:port now (with SO_REUSEADDR, as redis-server does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(host: str, taken: Collection[int], port_range: tuple[int, int] | None) -> int:
    """A port not in `taken` that is bindable now; from `port_range` when one is given."""
    if port_range is None:
        for _ in range(10):
            port = free_port(host)
            if port not in taken:
                return port
        raise ProvisionError(f"no free port on {host}")
    low, high = port_range
    ports = list(range(low, high + 1))
    start = random.randrange(len(ports))  # spread out, so a freed port is not reused at once
    for port in ports[start:] + ports[:start]:
        if port not in taken and bindable(host, port):
            return port
    raise ProvisionError(f"no free port left in the instance port range {low}-{high}")
