"""Merging workers' expositions (`redisgate proxy --workers N`): text in, one exposition out."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from redisgate.metrics.merge import Families, FleetMetrics, commands_total, merge, parse

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def exposition(commands: int, clients: int, latency: tuple[int, int], started: float) -> str:
    """What one worker serves, in miniature (the real names and types)."""
    fast, slow = latency
    return f"""\
# HELP redisgate_commands_total Commands by name and outcome.
# TYPE redisgate_commands_total counter
redisgate_commands_total{{command="get",outcome="ok"}} {commands}
# HELP redisgate_command_latency_seconds Time per forwarded request slot.
# TYPE redisgate_command_latency_seconds histogram
redisgate_command_latency_seconds_bucket{{le="0.001",part="backend"}} {fast}
redisgate_command_latency_seconds_bucket{{le="+Inf",part="backend"}} {fast + slow}
redisgate_command_latency_seconds_count{{part="backend"}} {fast + slow}
redisgate_command_latency_seconds_sum{{part="backend"}} {fast * 0.0005 + slow * 0.5}
# HELP redisgate_client_connections Open client connections.
# TYPE redisgate_client_connections gauge
redisgate_client_connections{{instance="main"}} {clients}
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds {started}
# HELP http_requests_created Created.
# TYPE http_requests_created gauge
http_requests_created {started}
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{{implementation="CPython",major="3"}} 1.0
"""


def samples(families: list[Metric]) -> Samples:
    """The families as a dict, after a round trip through the text format."""
    text = generate_latest(Families(families)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


A = parse(exposition(commands=7, clients=2, latency=(3, 1), started=100.0))
B = parse(exposition(commands=5, clients=4, latency=(2, 0), started=90.0))
GET = ("redisgate_commands_total", (("command", "get"), ("outcome", "ok")))
CLIENTS = ("redisgate_client_connections", (("instance", "main"),))
BUCKET_FAST = ("redisgate_command_latency_seconds_bucket", (("le", "0.001"), ("part", "backend")))
BUCKET_ALL = ("redisgate_command_latency_seconds_bucket", (("le", "+Inf"), ("part", "backend")))
COUNT = ("redisgate_command_latency_seconds_count", (("part", "backend"),))


def test_counters_histograms_and_gauges_are_summed() -> None:
    found = samples(merge([("0", A), ("1", B)]))
    assert found[GET] == 12
    assert found[BUCKET_FAST] == 5 and found[BUCKET_ALL] == 6 and found[COUNT] == 6
    assert found[CLIENTS] == 6
    assert found[("http_requests_created", ())] == 90.0  # the earliest, not a sum


def test_gauges_whose_sum_means_nothing_are_labelled_per_worker() -> None:
    found = samples(merge([("0", A), ("1", B)]))
    assert found[("process_start_time_seconds", (("worker", "0"),))] == 100.0
    assert found[("process_start_time_seconds", (("worker", "1"),))] == 90.0
    assert ("process_start_time_seconds", ()) not in found
    info = [key for key in found if key[0] == "python_info"]
    assert sorted(dict(labels)["worker"] for _, labels in info) == ["0", "1"]
    assert all(found[key] == 1.0 for key in info)


def test_series_present_in_one_worker_only_are_kept() -> None:
    other = parse(
        "# TYPE redisgate_commands_total counter\n"
        'redisgate_commands_total{command="set",outcome="error"} 3\n'
    )
    found = samples(merge([("0", A), ("1", other)]))
    assert found[GET] == 7
    assert found[("redisgate_commands_total", (("command", "set"), ("outcome", "error")))] == 3


def test_a_silent_worker_keeps_its_counts_and_loses_its_gauges() -> None:
    fleet = FleetMetrics()
    fleet.answered("0", A)
    fleet.answered("1", B)
    found = samples(fleet.merged([("0", A), ("1", None)]))  # worker 1 did not answer
    assert found[GET] == 12 and found[COUNT] == 6
    assert found[CLIENTS] == 2
    assert ("process_start_time_seconds", (("worker", "1"),)) not in found


def test_counts_of_an_exited_worker_stay_in_the_sums() -> None:
    fleet = FleetMetrics()
    fleet.answered("0", A)
    fleet.answered("1", B)
    fleet.exited("1")  # killed; its replacement starts from zero
    fresh = parse(exposition(commands=1, clients=1, latency=(1, 0), started=200.0))
    found = samples(fleet.merged([("0", A), ("1", fresh)]))
    assert found[GET] == 7 + 5 + 1  # never lower than before the restart
    assert found[BUCKET_FAST] == 3 + 2 + 1
    assert found[CLIENTS] == 2 + 1  # gauges: only the live processes
    assert found[("process_start_time_seconds", (("worker", "1"),))] == 200.0
    fleet.answered("1", fresh)
    fleet.exited("1")
    fleet.exited("1")  # no answer since the last exit: nothing more to add
    found = samples(fleet.merged([("0", A), ("1", None)]))
    assert found[GET] == 7 + 5 + 1


def test_commands_total_is_one_workers_sum() -> None:
    assert commands_total(A) == 7
    assert commands_total(B) == 5
    assert commands_total([]) == 0
