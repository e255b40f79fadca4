"""Every Prometheus metric of RedisGate, declared once (Envoy's `ALL_REDIS_PROXY_STATS` idea).

Hot-path counters are plain Python integers in dicts, bumped with one `+=`; a collector turns
them into Prometheus samples only when someone scrapes (prometheus-client's own counters take a
lock and a label lookup per increment, which the per-command path cannot afford). Labels are
bounded: outcomes and reasons, never keys or API keys. Sans-IO modules may count here; exposing
the registry (`/metrics`) is the transports' job.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

# -NOPERM replies by reason: command (not in the key's scope), key, channel, keyspace
# (keyspace-wide command or script with restricted key patterns), gateway (never forwarded).
DENIAL_REASONS = ("command", "key", "channel", "keyspace", "gateway")
COMMANDS_DENIED: dict[str, int] = dict.fromkeys(DENIAL_REASONS, 0)
# Commands and connections refused by a data-plane limit (docs/limits.md), by kind.
LIMIT_KINDS = (
    "ops_per_second",
    "max_connections",
    "max_request_bytes",
    "daily_commands",
    "daily_bytes",
)
LIMITED: dict[str, int] = dict.fromkeys(LIMIT_KINDS, 0)


class _PlainCounters(Collector):
    """Exports the plain counters above at scrape time."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        denied = CounterMetricFamily(
            "redisgate_commands_denied",
            "Commands refused with -NOPERM, by reason.",
            labels=["reason"],
        )
        for reason, count in COMMANDS_DENIED.items():
            denied.add_metric([reason], count)
        yield denied
        limited = CounterMetricFamily(
            "redisgate_limited",
            "Commands or connections refused by a data-plane limit, by kind.",
            labels=["kind"],
        )
        for kind, count in LIMITED.items():
            limited.add_metric([kind], count)
        yield limited


REGISTRY.register(_PlainCounters())
