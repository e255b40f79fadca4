"""RedisGate: a multi-tenant Redis gateway (RESP data plane, HTTP control plane)."""

from __future__ import annotations

__version__ = "0.1.0"
