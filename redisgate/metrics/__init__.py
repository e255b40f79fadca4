"""Every Prometheus metric of RedisGate, declared once (Envoy's `ALL_REDIS_PROXY_STATS` idea).

Hot-path counters are plain Python integers in dicts, bumped with one `+=`; a collector turns
them into Prometheus samples only when someone scrapes (prometheus-client's own counters take a
lock and a label lookup per increment, which the per-command path cannot afford). Gauges
(connections, in-flight commands) are not counted at all: the gateway is asked for them at
scrape time (`GAUGE_SOURCES`). Labels are bounded: command names, outcomes, reasons and
instance names, never keys or API keys. Sans-IO modules may count here; exposing the registry
(`/metrics`) is the transports' job. docs/metrics.md lists every metric.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import _count_elements  # type: ignore[attr-defined]  # Counter's C loop
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import NamedTuple

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# --- Commands -------------------------------------------------------------------------------


OUTCOMES = ("ok", "error", "denied", "limited", "failed")
# Commands by outcome, each keyed by the command name *as sent* (bytes, any case): folding
# case per command would cost more than the count. The collector folds and merges at scrape
# time. Forwarded names come from the command table, local ones are folded to b"unknown"
# when the command is unknown; `_MAX_NAMES` bounds what odd casings could add.
COMMANDS: dict[str, dict[bytes, int]] = {outcome: {} for outcome in OUTCOMES}
_OK, _ERROR = COMMANDS["ok"], COMMANDS["error"]
_MAX_NAMES = 4096
_ERROR_FIRST_BYTES = frozenset(b"-!")  # RESP2 error, RESP3 blob error
_first_byte = itemgetter(0)
# Lower-case names of the commands the gateway's tables know (filled by the gateway).
KNOWN_COMMANDS: set[bytes] = set()


def _bump(counts: dict[bytes, int], name: bytes, n: int = 1) -> None:
    counts[name] = counts.get(name, 0) + n
    if len(counts) > _MAX_NAMES:
        _fold(counts)


def _fold(counts: dict[bytes, int]) -> None:
    """Merge letter-case variants (`GeT`, `gEt`…) so odd casings cannot grow a dict forever;
    totals are kept, so the exported (case-folded) counters never go down."""
    folded: dict[bytes, int] = {}
    for name, count in list(counts.items()):
        key = name.lower()
        folded[key] = folded.get(key, 0) + count
    counts.clear()
    counts.update(folded)


def count_replies(names: list[bytes], parts: list[bytes], last: bytes) -> None:
    """Count forwarded commands when their replies are in: `parts` then `last` answer `names`.

    The common cases, one command or a run with no error reply, take one dict update per
    command and no per-reply Python loop (the run's checks and counts iterate in C)."""
    if len(names) == 1:
        name = names[0]
        counts = _ERROR if last[0] in _ERROR_FIRST_BYTES else _OK
        if name in counts:
            counts[name] += 1
        else:
            _bump(counts, name)
    elif last[0] not in _ERROR_FIRST_BYTES and _ERROR_FIRST_BYTES.isdisjoint(
        map(_first_byte, parts)
    ):
        _count_elements(_OK, names)
        if len(_OK) > _MAX_NAMES:
            _fold(_OK)
    else:
        for name, frame in zip(names, [*parts, last], strict=False):
            _bump(_ERROR if frame[0] in _ERROR_FIRST_BYTES else _OK, name)


def count_failed(names: list[bytes], answered: list[bytes]) -> None:
    """A request failed (backend lost or timed out): the commands after the `answered`
    replies are counted `failed`, the answered ones by their replies."""
    done = len(answered)
    if done:
        count_replies(names[:done], answered[:-1], answered[-1])
    for name in names[done:]:
        _bump(COMMANDS["failed"], name)


def count_local(name: bytes, reply: bytes) -> None:
    """A command the gateway answered itself: the reply's first word says the outcome. Any
    name may reach this (unknown commands, anything before AUTH), so names outside
    `KNOWN_COMMANDS` are counted as `unknown`."""
    name = name.lower()
    if name not in KNOWN_COMMANDS:
        name = b"unknown"
    if reply[:1] not in (b"-", b""):
        outcome = "ok"
    elif reply.startswith((b"-NOPERM", b"-NOAUTH")):
        outcome = "denied"
    elif reply.startswith(b"-ERR max "):  # the rate-limit and quota wording
        outcome = "limited"
    else:
        outcome = "error"
    _bump(COMMANDS[outcome], name)


# --- Latency --------------------------------------------------------------------------------

# Seconds; 50 µs to 10 s covers a loopback round trip to a slow blocking command.
LATENCY_BOUNDS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
)  # fmt: skip


class PlainHistogram:
    """A histogram in plain ints: `observe` is one bisect and two additions, no lock."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus buckets: (upper bound, observations <= it), ending with +Inf."""
        out, total = [], 0
        for bound, count in zip([*map(repr, self.bounds), "+Inf"], self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


# Sampled once per batch of replies read from a shared backend connection, on the batch's
# first (oldest) completed request slot (a command, or a pipelined run sent as one write):
# gateway = read from the client -> written to the backend connection,
# backend = written to the backend connection -> reply read back.
# One sample per batch rather than per slot: with fifty clients a batch holds fifty replies
# that share one write and one read, so one sample says as much at a fiftieth of the cost.
LATENCY = {"gateway": PlainHistogram(LATENCY_BOUNDS), "backend": PlainHistogram(LATENCY_BOUNDS)}
_GATEWAY_LATENCY, _BACKEND_LATENCY = LATENCY["gateway"], LATENCY["backend"]
_GATEWAY_COUNTS, _BACKEND_COUNTS = _GATEWAY_LATENCY.counts, _BACKEND_LATENCY.counts


def observe_latency(started: float, sent: float, now: float) -> None:
    """One sample's two parts (`PlainHistogram.observe`, inlined)."""
    gateway, backend = sent - started, now - sent
    _GATEWAY_COUNTS[bisect_left(LATENCY_BOUNDS, gateway)] += 1
    _BACKEND_COUNTS[bisect_left(LATENCY_BOUNDS, backend)] += 1
    _GATEWAY_LATENCY.sum += gateway
    _BACKEND_LATENCY.sum += backend


# --- Everything else counted in plain ints ----------------------------------------------------

# AUTH/HELLO failures: malformed (not a RedisGate key), unknown_key, wrong_secret, expired,
# unavailable (the key store could not be asked).
AUTH_FAILURE_REASONS = ("malformed", "unknown_key", "wrong_secret", "expired", "unavailable")
AUTH_FAILURES: dict[str, int] = dict.fromkeys(AUTH_FAILURE_REASONS, 0)
# The key cache in front of the key store: hit, negative_hit (a recently unknown id), miss.
KEY_CACHE: dict[str, int] = dict.fromkeys(("hit", "negative_hit", "miss"), 0)
# -NOPERM replies by reason: command (not in the key's scope), key, channel, keyspace
# (keyspace-wide command under key patterns; script or server-wide state without allkeys
# and allchannels), gateway (never forwarded).
DENIAL_REASONS = ("command", "key", "channel", "keyspace", "gateway")
COMMANDS_DENIED: dict[str, int] = dict.fromkeys(DENIAL_REASONS, 0)
# Rate limits and quotas refusing a command or connection, by kind (policy and client count).
LIMIT_KINDS = (
    "ops_per_second",
    "max_connections",
    "max_request_bytes",
    "daily_commands",
    "daily_bytes",
    "script_connections",
)
LIMITED: dict[str, int] = dict.fromkeys(LIMIT_KINDS, 0)
# Clients the gateway disconnected to protect the others, by reason (docs/security.md):
# left_blocked (EOF while a command waited on the server), slow_reader (over
# max_client_output_bytes of unsent replies), anonymous_evicted (the oldest unauthenticated
# connection, for a new one over a per-address or total cap), request_memory / reply_memory
# (the largest holder when every client's buffered requests or replies passed their cap),
# shutdown (blocked or subscribed at shutdown).
CUT_REASONS = (
    "left_blocked", "slow_reader", "anonymous_evicted", "request_memory", "reply_memory",
    "shutdown", "client_kill",
)  # fmt: skip
CLIENTS_CUT: dict[str, int] = dict.fromkeys(CUT_REASONS, 0)
# Fair-share holds: ticks (5 ms) for which the instance moving the most bytes had its upstream
# connections held, because the event loop was late and other instances were in use.
FAIR_SHARE_HOLDS: dict[str, int] = {"holds": 0}
# Commands never sent to a backend because their client left while they waited for the
# shared connection's window (upstream_max_inflight_*).
UNSENT_DROPPED: dict[str, int] = {"commands": 0}
# Bytes between clients and the gateway: in (requests read), out (replies written).
CLIENT_BYTES: dict[str, int] = {"in": 0, "out": 0}
# Batched `last_used_at` writes that failed (kept and retried at the next flush).
USAGE_FLUSH_FAILURES: dict[str, int] = {"failures": 0}
# The HTTP command API: requests by endpoint (command, pipeline, multi-exec, subscribe) and
# status code, their duration by endpoint, and the server-sent event streams open now.
REST_ENDPOINTS = ("command", "pipeline", "multi-exec", "subscribe", "other")
REST_REQUESTS: dict[tuple[str, int], int] = {}
REST_LATENCY = {
    endpoint: PlainHistogram(LATENCY_BOUNDS) for endpoint in REST_ENDPOINTS
}  # fmt: skip
REST_STREAMS: dict[str, int] = {"open": 0}
# Seconds between a change notice being sent (control plane's clock) and a gateway receiving it.
NOTIFY_LAG = PlainHistogram(
    (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
)  # fmt: skip


# --- Gauges read at scrape time ---------------------------------------------------------------


class GatewayGauges(NamedTuple):
    """What a gateway reports at scrape time, per instance name ("" before AUTH)."""

    clients: dict[str, int]
    commands_in_flight: dict[str, int]
    backend_connections: dict[tuple[str, str], int]  # (instance, shared|dedicated|idle|key_user)


# Callables registered by running gateways (`Gateway.start`, removed at shutdown).
GAUGE_SOURCES: set[Callable[[], GatewayGauges]] = set()
INSTANCE_LABELS = {"enabled": True}  # `metrics_instance_labels`, set by the gateway


# --- Control plane (not a hot path: prometheus-client's own types) ----------------------------

HTTP_REQUESTS = Counter(
    "redisgate_http_requests",
    "Control API requests, by method, route template and status.",
    ["method", "route", "status"],
)
AUDIT_SUPPRESSED = Counter(
    "redisgate_audit_suppressed",
    "Refusals (failed logins, 403s) not written to the audit log: over a client address's "
    "per-minute budget.",
    ["action"],
)
HTTP_LATENCY = Histogram(
    "redisgate_http_request_duration_seconds",
    "Control API request latency (middleware in to response ready), by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


# --- Export -----------------------------------------------------------------------------------


class _PlainCounters(Collector):
    """Exports everything above that is not a prometheus-client object, at scrape time."""

    def collect(self) -> Iterator[Metric]:
        yield _commands()
        yield _by_label(
            "redisgate_commands_denied", "Commands refused with -NOPERM, by reason.", "reason",
            COMMANDS_DENIED.items(),
        )  # fmt: skip
        yield _by_label(
            "redisgate_auth_failures", "Failed AUTH/HELLO attempts, by reason.", "reason",
            AUTH_FAILURES.items(),
        )  # fmt: skip
        yield _by_label(
            "redisgate_key_cache_lookups",
            "API-key lookups by the key cache's answer (miss: the key store was asked).",
            "result", KEY_CACHE.items(),
        )  # fmt: skip
        yield _by_label(
            "redisgate_limit_rejections", "Commands or connections refused by a limit, by kind.",
            "kind", LIMITED.items(),
        )  # fmt: skip
        yield _by_label(
            "redisgate_clients_cut", "Clients disconnected to protect the others, by reason.",
            "reason", CLIENTS_CUT.items(),
        )  # fmt: skip
        yield _by_label(
            "redisgate_client_bytes", "Bytes read from (in) and written to (out) clients.",
            "direction", CLIENT_BYTES.items(),
        )  # fmt: skip
        holds = CounterMetricFamily(
            "redisgate_fair_share_holds",
            "5 ms ticks for which the busiest instance's upstream connections were held "
            "because the gateway was overloaded and other instances were in use.",
        )
        holds.add_metric([], FAIR_SHARE_HOLDS["holds"])
        yield holds
        dropped = CounterMetricFamily(
            "redisgate_commands_dropped_unsent",
            "Commands never sent to a backend: their client left while they waited for the "
            "shared connection's window.",
        )
        dropped.add_metric([], UNSENT_DROPPED["commands"])
        yield dropped
        failures = CounterMetricFamily(
            "redisgate_usage_flush_failures", "Batched key-usage writes to PostgreSQL that failed."
        )
        failures.add_metric([], USAGE_FLUSH_FAILURES["failures"])
        yield failures
        latency = HistogramMetricFamily(
            "redisgate_command_latency_seconds",
            "Time per forwarded request slot, by part: gateway (read from the client to "
            "written to the backend) and backend (written to reply read).",
            labels=["part"],
        )
        for part, histogram in LATENCY.items():
            latency.add_metric([part], histogram.cumulative(), histogram.sum)
        yield latency
        rest = CounterMetricFamily(
            "redisgate_rest_requests",
            "HTTP command API requests, by endpoint and status code.",
            labels=["endpoint", "status"],
        )
        for (endpoint, status), count in sorted(REST_REQUESTS.items()):
            rest.add_metric([endpoint, str(status)], count)
        yield rest
        rest_latency = HistogramMetricFamily(
            "redisgate_rest_request_duration_seconds",
            "HTTP command API request time (headers read to response written; streams "
            "excluded), by endpoint.",
            labels=["endpoint"],
        )
        for endpoint, histogram in REST_LATENCY.items():
            rest_latency.add_metric([endpoint], histogram.cumulative(), histogram.sum)
        yield rest_latency
        streams = GaugeMetricFamily(
            "redisgate_rest_streams", "Server-sent event streams (subscriptions) open now."
        )
        streams.add_metric([], REST_STREAMS["open"])
        yield streams
        lag = HistogramMetricFamily(
            "redisgate_notify_lag_seconds", "Delay from a NOTIFY sent to a gateway applying it."
        )
        lag.add_metric([], NOTIFY_LAG.cumulative(), NOTIFY_LAG.sum)
        yield lag
        yield from _gauges()


def _commands() -> CounterMetricFamily:
    family = CounterMetricFamily(
        "redisgate_commands", "Commands by name and outcome.", labels=["command", "outcome"]
    )
    for outcome, counts in COMMANDS.items():
        folded: dict[str, int] = {}
        for raw, count in list(counts.items()):
            name = raw.decode("latin-1").lower()
            folded[name] = folded.get(name, 0) + count
        for name, count in sorted(folded.items()):
            family.add_metric([name, outcome], count)
    return family


def _by_label(
    name: str, documentation: str, label: str, items: Iterable[tuple[str, int]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in list(items):
        family.add_metric([value], count)
    return family


def _gauges() -> Iterator[GaugeMetricFamily]:
    """Sum what every running gateway reports; without instance labels, across instances."""
    per_instance = INSTANCE_LABELS["enabled"]
    clients: dict[tuple[str, ...], int] = {}
    in_flight: dict[tuple[str, ...], int] = {}
    backend: dict[tuple[str, ...], int] = {}

    def add(totals: dict[tuple[str, ...], int], instance: str, *rest: str, value: int) -> None:
        key = (instance, *rest) if per_instance else rest
        totals[key] = totals.get(key, 0) + value

    for source in list(GAUGE_SOURCES):
        gauges = source()
        for instance, value in gauges.clients.items():
            add(clients, instance, value=value)
        for instance, value in gauges.commands_in_flight.items():
            add(in_flight, instance, value=value)
        for (instance, kind), value in gauges.backend_connections.items():
            add(backend, instance, kind, value=value)
    if not per_instance:  # one unlabelled sample each, present even at 0
        clients.setdefault((), 0)
        in_flight.setdefault((), 0)
    labels = ["instance"] if per_instance else []
    for name, documentation, family_labels, totals in (
        (
            "redisgate_client_connections",
            'Open client connections (instance "": not authenticated yet).',
            labels,
            clients,
        ),
        (
            "redisgate_commands_in_flight",
            "Client commands sent to a backend and not yet answered.",
            labels,
            in_flight,
        ),
        (
            "redisgate_backend_connections",
            "Connections to backing Redis servers, by kind (shared; dedicated: lent to a "
            "client; idle: dedicated, kept for reuse).",
            [*labels, "kind"],
            backend,
        ),
    ):
        family = GaugeMetricFamily(name, documentation, labels=family_labels)
        for key, value in sorted(totals.items()):
            family.add_metric(list(key), value)
        yield family


REGISTRY.register(_PlainCounters())
