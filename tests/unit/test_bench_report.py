"""The report of `compare.py` (benchmarks/report.py): same-round ratios to the floor, the
issue's targets with the floor's number where one is missed, and the Markdown's floor
column and table. Runs are made up; nothing is started."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """benchmarks/report.py, imported as the scripts import each other (their folder on
    sys.path), and forgotten afterwards."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    yield importlib.import_module("report")
    for name in ("benchlib", "report"):
        sys.modules.pop(name, None)


def _run(rps: float, cpu_s: float = 1.0, commands: int = 100_000) -> dict[str, Any]:
    return {"rps": rps, "p50_ms": 0.5, "p99_ms": 1.0, "cpu_s": cpu_s, "commands": commands}


def _runs(gateway: list[float], floor: list[float] | None) -> dict[str, list[dict[str, Any]]]:
    """Three rounds of redis, the gateway, the floor (unless None) and twemproxy."""
    runs = {
        "redis": [_run(100_000, 1.0)] * 3,
        "redisgate": [_run(rps, 2.0) for rps in gateway],
        "twemproxy": [_run(80_000, 1.0)] * 3,
    }
    if floor is not None:
        runs["floor"] = [_run(rps, 1.2) for rps in floor]
    return runs


def _report(report: ModuleType, loads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "started": "now",
        "rounds": 3,
        "duration_s": 1.0,
        "environment": {
            "cpu": "cpu",
            "cpus": 2,
            "loadavg_start": "0.1",
            "loadavg_end": "0.2",
            "redis": "redis",
            "nutcracker": "nutcracker",
            "gateway_commit": "abc",
        },
        "notes": [],
        "loads": {
            name: {"runs": runs, "summary": report.summarize(runs)} for name, runs in loads.items()
        },
    }


def test_summarize_gives_the_median_of_same_round_ratios_to_the_floor(report: ModuleType) -> None:
    # Per round 0.5, 0.9, 0.6: the median of the ratios (0.6), not the ratio of the medians.
    summary = report.summarize(_runs([50_000, 90_000, 60_000], [100_000, 100_000, 100_000]))
    assert summary["redisgate"]["x_floor"] == pytest.approx(0.6)
    assert summary["redisgate"]["x_redis"] == pytest.approx(0.6)
    assert summary["redis"]["x_floor"] == pytest.approx(1.0)
    assert "x_floor" not in summary["floor"]
    assert summary["floor"]["x_twemproxy"] == pytest.approx(1.25)
    assert summary["floor"]["cpu_s_per_m"] == pytest.approx(12.0)  # µs per command


def test_summarize_without_the_floor_has_no_floor_ratio(report: ModuleType) -> None:
    summary = report.summarize(_runs([50_000] * 3, None))
    assert "x_floor" not in summary["redisgate"]


def test_goals_are_issue_19s_and_a_miss_shows_the_floor(report: ModuleType) -> None:
    loads = {
        "SET c50 P1": _runs([95_000] * 3, [100_000] * 3),  # 0.95x floor, 1.19x twemproxy: met
        "GET c50 P1": _runs([60_000] * 3, [100_000] * 3),  # 0.6x floor, 0.75x twemproxy: missed
        "SET c500 P1": _runs([100_000] * 3, [100_000] * 3),  # 1.0x redis: met
        "GET c50 P16": _runs([100_000] * 3, [110_000] * 3),  # 1.25x twemproxy: missed
        "LRANGE_100 c50": _runs([72_000] * 3, None),  # 0.9x twemproxy, no floor: met
    }
    rows = {row.goal: row for row in report.goals(_report(report, loads))}
    assert set(rows) == {
        "SET c50 P1: gateway / floor",
        "SET c50 P1: gateway / twemproxy",
        "GET c50 P1: gateway / floor",
        "GET c50 P1: gateway / twemproxy",
        "SET c500 P1: gateway / redis",
        "GET c50 P16: gateway / twemproxy",
        "LRANGE_100 c50: gateway / twemproxy",
    }
    met = rows["SET c50 P1: gateway / floor"]
    assert (met.measured, met.wanted, met.met, met.floor) == ("0.95x", ">= 0.9x", True, "")
    assert rows["SET c500 P1: gateway / redis"].wanted == ">= 1.0x"
    assert rows["SET c500 P1: gateway / redis"].met
    assert rows["LRANGE_100 c50: gateway / twemproxy"].met
    floor_miss = rows["GET c50 P1: gateway / floor"]
    assert not floor_miss.met
    assert floor_miss.floor == (
        "floor 100,000 req/s, 12.0 CPU µs / cmd (gateway 60,000 req/s, 20.0 CPU µs / cmd)"
    )
    twem_miss = rows["GET c50 P16: gateway / twemproxy"]
    assert (twem_miss.wanted, twem_miss.met) == (">= 1.3x", False)
    assert twem_miss.floor == "floor / twemproxy 1.38x; floor 110,000 req/s, 12.0 CPU µs / cmd"


def test_goals_idle_has_no_floor_number(report: ModuleType) -> None:
    data = _report(report, {})
    idle = {"bytes_per_conn": 7 * 1024, "opened": 10_000, "count": 10_000}
    data["idle"] = {"summary": {"redisgate": idle}}
    (row,) = report.goals(data)
    assert (row.measured, row.wanted, row.met) == ("7.00 KiB", "<= 6 KiB", False)
    assert "floor has no AUTH" in row.floor


def test_markdown_shows_the_floor_column_table_and_numbers(report: ModuleType) -> None:
    text = report.markdown(_report(report, {"GET c50 P1": _runs([60_000] * 3, [100_000] * 3)}))
    assert "| vs redis | vs floor | vs twemproxy | CPU s / M cmds |" in text
    assert (
        "| GET c50 P1 | redisgate | 60,000 | 60,000-60,000 | 0.500 | 1.000 | 0.60 | 0.60 |" in text
    )
    # The gateway against the floor: rates, ratio, CPU µs per command of each, the difference.
    assert "| GET c50 P1 | 60,000 | 100,000 | 0.60 | 20.00 | 12.00 | +8.00 |" in text
    assert "| the floor, where missed |" in text
    assert "| GET c50 P1: gateway / floor | 0.60x | >= 0.9x | NO | floor 100,000 req/s" in text
    assert "vs redis, vs floor, vs twemproxy: median" in text


def test_markdown_without_the_floor_leaves_its_column_out(report: ModuleType) -> None:
    text = report.markdown(_report(report, {"GET c50 P1": _runs([60_000] * 3, None)}))
    assert "floor" not in text
    assert "| goal | measured | wanted | met |" in text
    assert "| GET c50 P1: gateway / twemproxy | 0.75x | >= 1.0x | NO |\n" in text
