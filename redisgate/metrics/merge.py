"""One exposition for a fleet of worker processes (`redisgate proxy --workers N`).

Each worker counts in its own plain ints, as a single gateway does (`metrics/__init__.py`); the
supervisor asks every worker for its exposition at scrape time and merges the parsed families
here, so the hot path is the same with one process or many. The rules:

- counters and histograms are summed, series by series (a histogram's buckets, `_count` and
  `_sum` alike); `_created` samples take the earliest value;
- gauges are summed (connections, in-flight commands, memory), except the few where a sum
  means nothing (`PER_WORKER`: start times, fd limits, `python_info`), which get a `worker`
  label instead; so do summaries, infos and state sets;
- a worker that does not answer is skipped, but the counters and histograms of its last
  answer still count, and when its process exits they move into a `retired` part that stays
  in the sums: the fleet's counters never go down because a worker restarted (which
  Prometheus would read as a reset). Only what a worker counted after its last scrape is lost.

Pure: text and families in, families out; the supervisor does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

WORKER_LABEL = "worker"
# Gauges whose sum over workers means nothing: labelled per worker instead.
PER_WORKER = frozenset({"process_start_time_seconds", "process_max_fds", "python_info"})
_SUMMED_TYPES = frozenset({"counter", "histogram", "gaugehistogram", "gauge", "unknown"})
_MONOTONIC_TYPES = frozenset({"counter", "histogram"})

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def parse(text: str) -> list[Metric]:
    """A worker's exposition as families; ValueError when it is not the text format."""
    return list(text_string_to_metric_families(text))


def monotonic(families: Iterable[Metric]) -> list[Metric]:
    """Only the counters and histograms: what must outlive the worker that counted it."""
    return [family for family in families if family.type in _MONOTONIC_TYPES]


def _per_worker(family: Metric) -> bool:
    return family.type not in _SUMMED_TYPES or (
        family.type == "gauge" and family.name in PER_WORKER
    )


def merge(parts: Iterable[tuple[str | None, Sequence[Metric]]]) -> list[Metric]:
    """Merge (worker, families) pairs by the rules above; a worker of None is a part with no
    worker of its own (the retired counts), whose per-worker families are dropped."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[SeriesKey, float]] = {}
    for worker, families in parts:
        for family in families:
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            elif into.type != family.type:
                continue  # cannot happen between workers of one version; never guess
            series = values[family.name]
            if _per_worker(family):
                if worker is None:
                    continue
                for sample in family.samples:
                    labels = {**sample.labels, WORKER_LABEL: worker}
                    series[(sample.name, tuple(sorted(labels.items())))] = sample.value
                continue
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                known = series.get(key)
                if known is None:
                    series[key] = sample.value
                elif sample.name.endswith("_created"):
                    series[key] = min(known, sample.value)
                else:
                    series[key] = known + sample.value
    for name, family in merged.items():
        family.samples = [
            Sample(sample_name, dict(labels), value)
            for (sample_name, labels), value in values[name].items()
        ]
    return list(merged.values())


def commands_total(families: Iterable[Metric]) -> float:
    """Every command one worker counted (`redisgate_commands_total` over all labels)."""
    return sum(
        sample.value
        for family in families
        if family.name == "redisgate_commands"
        for sample in family.samples
        if sample.name == "redisgate_commands_total"
    )


class FleetMetrics:
    """The supervisor's memory of its workers' counts between scrapes.

    `answered` keeps the monotonic part of a worker's latest answer, `exited` moves it into
    the retired sums, `merged` combines this scrape's answers (None: the worker did not
    answer; its last answer's counters stand in) with the retired part."""

    def __init__(self) -> None:
        self._last: dict[str, list[Metric]] = {}
        self._retired: list[Metric] = []

    def answered(self, worker: str, families: Sequence[Metric]) -> None:
        self._last[worker] = monotonic(families)

    def exited(self, worker: str) -> None:
        last = self._last.pop(worker, None)
        if last:
            self._retired = merge([(None, self._retired), (None, last)])

    def merged(self, answers: Iterable[tuple[str, Sequence[Metric] | None]]) -> list[Metric]:
        parts: list[tuple[str | None, Sequence[Metric]]] = [(None, self._retired)]
        for worker, families in answers:
            parts.append((worker, families if families is not None else self._last.get(worker, [])))
        return merge(parts)


class Families(Collector):
    """Ready-made families as a collector, for `prometheus_client.generate_latest`."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
