"""The plain-int metrics: bucketing, outcome counting and what the collector exports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from redisgate import metrics
from redisgate.metrics import GatewayGauges, PlainHistogram


def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(REGISTRY).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def command_count(name: str, outcome: str) -> float:
    key = ("redisgate_commands_total", (("command", name), ("outcome", outcome)))
    return samples().get(key, 0.0)


def test_histogram_buckets_are_upper_bounds_inclusive() -> None:
    histogram = PlainHistogram((0.001, 0.01, 0.1))
    for value in (0.0005, 0.001, 0.002, 0.01, 0.5, 7.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 0, 2]
    assert histogram.cumulative() == [
        ("0.001", 2.0),
        ("0.01", 4.0),
        ("0.1", 4.0),
        ("+Inf", 6.0),
    ]
    assert histogram.sum == pytest.approx(7.5135)


def test_latency_histograms_split_gateway_and_backend_time() -> None:
    before = {part: list(h.counts) for part, h in metrics.LATENCY.items()}
    metrics.observe_latency(started=10.0, sent=10.0002, now=10.0302)
    gateway = metrics.LATENCY["gateway"].counts
    backend = metrics.LATENCY["backend"].counts
    bounds = metrics.LATENCY_BOUNDS
    assert [a - b for a, b in zip(gateway, before["gateway"], strict=True)] == [
        1 if i == bounds.index(0.00025) else 0 for i in range(len(bounds) + 1)
    ]
    assert [a - b for a, b in zip(backend, before["backend"], strict=True)] == [
        1 if i == bounds.index(0.05) else 0 for i in range(len(bounds) + 1)
    ]
    text = generate_latest(REGISTRY).decode()
    assert 'redisgate_command_latency_seconds_bucket{le="+Inf",part="backend"}' in text


def test_replies_are_counted_per_command_by_outcome_with_names_folded() -> None:
    ok, error = command_count("get", "ok"), command_count("get", "error")
    metrics.count_replies([b"GET"], [], b"$1\r\na\r\n")
    metrics.count_replies([b"get", b"GeT", b"get"], [b"$-1\r\n", b"-WRONGTYPE x\r\n"], b":1\r\n")
    metrics.count_replies([b"get"], [], b"!5\r\nERR x\r\n")  # RESP3 blob error
    assert command_count("get", "ok") == ok + 3
    assert command_count("get", "error") == error + 2


def test_failed_requests_count_answered_replies_apart() -> None:
    ok, failed = command_count("incr", "ok"), command_count("incr", "failed")
    metrics.count_failed([b"incr", b"incr", b"incr"], [b":1\r\n"])
    assert command_count("incr", "ok") == ok + 1
    assert command_count("incr", "failed") == failed + 2


def test_local_replies_are_classified_and_unknown_names_folded() -> None:
    metrics.KNOWN_COMMANDS.update({b"flushall", b"set"})
    before = {o: command_count(n, o) for n, o in _LOCAL_CASES}
    metrics.count_local(b"FLUSHALL", b"-NOPERM this user has no permissions\r\n")
    metrics.count_local(b"set", b"-ERR max requests limit exceeded\r\n")
    metrics.count_local(b"nosuchcmd-123", b"-ERR unknown command 'nosuchcmd-123'\r\n")
    metrics.count_local(b"set", b"-NOAUTH Authentication required.\r\n")
    assert command_count("flushall", "denied") == before["denied"] + 1
    assert command_count("set", "limited") == before["limited"] + 1
    assert command_count("unknown", "error") == before["error"] + 1
    assert command_count("nosuchcmd-123", "error") == 0


_LOCAL_CASES = (("flushall", "denied"), ("set", "limited"), ("unknown", "error"))


@pytest.fixture
def fake_gateway() -> Iterator[None]:
    def gauges() -> GatewayGauges:
        return GatewayGauges(
            clients={"i-1": 2, "": 1},
            commands_in_flight={"i-1": 5},
            backend_connections={("i-1", "shared"): 1, ("i-1", "dedicated"): 2},
        )

    metrics.GAUGE_SOURCES.add(gauges)
    try:
        yield
    finally:
        metrics.GAUGE_SOURCES.discard(gauges)
        metrics.INSTANCE_LABELS["enabled"] = True


def test_gauges_by_instance_or_summed(fake_gateway: None) -> None:
    found = samples()
    assert found[("redisgate_client_connections", (("instance", "i-1"),))] == 2
    assert found[("redisgate_client_connections", (("instance", ""),))] == 1
    assert found[("redisgate_commands_in_flight", (("instance", "i-1"),))] == 5
    key = ("redisgate_backend_connections", (("instance", "i-1"), ("kind", "dedicated")))
    assert found[key] == 2
    metrics.INSTANCE_LABELS["enabled"] = False
    found = samples()
    assert found[("redisgate_client_connections", ())] == 3
    assert found[("redisgate_backend_connections", (("kind", "shared"),))] == 1
    assert not any(dict(labels).get("instance") for _, labels in found)


def test_every_declared_family_is_exported() -> None:
    names = {f.name for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())}
    assert {
        "redisgate_commands",
        "redisgate_commands_denied",
        "redisgate_auth_failures",
        "redisgate_key_cache_lookups",
        "redisgate_limit_rejections",
        "redisgate_client_bytes",
        "redisgate_usage_flush_failures",
        "redisgate_command_latency_seconds",
        "redisgate_notify_lag_seconds",
        "redisgate_client_connections",
        "redisgate_commands_in_flight",
        "redisgate_backend_connections",
        "redisgate_http_requests",
        "redisgate_http_request_duration_seconds",
    } <= names
