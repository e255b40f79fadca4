"""Every Prometheus metric of RedisGate, declared once (Envoy's `ALL_REDIS_PROXY_STATS` idea).

Labels are bounded: command outcomes and reasons, never keys or API keys. Counters are plain
in-memory objects, so sans-IO modules may count without doing I/O; exposing them (`/metrics`)
is the transports' job.
"""

from __future__ import annotations

from prometheus_client import Counter

COMMANDS_DENIED = Counter(
    "redisgate_commands_denied_total",
    "Commands refused with -NOPERM, by reason: command (not in the key's scope), key, channel, "
    "keyspace (keyspace-wide command with restricted key patterns), gateway (never forwarded).",
    ["reason"],
)
