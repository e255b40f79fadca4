"""The HTTP loads' pure parts (benchmarks/httpload.py, report.py): the wrk script, reading
wrk's result line, and the HTTP table's summary against RESP. No wrk, no event loop."""

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
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    """The benchmark scripts' modules, imported as the scripts import each other (their
    folder on sys.path), and forgotten afterwards."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    names = ("benchlib", "httpload", "report")
    yield {name: importlib.import_module(name) for name in names}
    for name in names:
        sys.modules.pop(name, None)


WRK_STDOUT = """\
Running 5s test @ http://127.0.0.1:40123
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.02ms    3.10ms  40.12ms   80.00%
    Req/Sec     4.41k   312.00     4.90k    70.00%
  22050 requests in 5.01s, 3.28MB read
Requests/sec:   4401.20
Transfer/sec:    670.44KB
WRK_RESULT {"requests":22050,"duration_us":5010000,"bytes":3439800,"p50_us":10488.0,\
"p99_us":26413.5,"connect":0,"read":0,"write":0,"status":0,"timeout":0}
"""


def test_parse_wrk_reads_the_result_line(bench: dict[str, Any]) -> None:
    result = bench["httpload"].parse_wrk(WRK_STDOUT, 1)
    assert result["requests"] == result["commands"] == 22050
    assert result["rps"] == pytest.approx(22050 / 5.01)
    assert result["cmds_per_s"] == result["rps"]
    assert result["p50_ms"] == pytest.approx(10.488)
    assert result["p99_ms"] == pytest.approx(26.4135)
    assert result["seconds"] == pytest.approx(5.01)
    assert result["errors"] == {}


def test_parse_wrk_counts_commands_and_keeps_errors(bench: dict[str, Any]) -> None:
    stdout = WRK_STDOUT.replace('"status":0', '"status":12').replace('"timeout":0', '"timeout":3')
    result = bench["httpload"].parse_wrk(stdout, 16)
    assert result["commands"] == 22050 * 16
    assert result["cmds_per_s"] == pytest.approx(16 * 22050 / 5.01)
    assert result["errors"] == {"status": 12, "timeout": 3}


def test_parse_wrk_without_a_result_line_says_so(bench: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no WRK_RESULT line"):
        bench["httpload"].parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n", 1)
    empty = WRK_STDOUT.replace('"duration_us":5010000', '"duration_us":0')
    with pytest.raises(ValueError, match="no time"):
        bench["httpload"].parse_wrk(empty, 1)


def test_wrk_script_holds_the_request_as_lua_literals(bench: dict[str, Any]) -> None:
    httpload = bench["httpload"]
    body = b'[["SET","k","a\\"b"],["GET","k"]]'
    script = httpload.wrk_script("HTTP x", httpload.HttpRequest("/pipeline", body, 2, b"[]"))
    assert 'wrk.method = "POST"' in script
    assert 'wrk.path = "/pipeline"' in script
    assert 'wrk.body = "[[\\"SET\\",\\"k\\",\\"a\\\\\\"b\\"],[\\"GET\\",\\"k\\"]]"' in script
    assert f'os.getenv("{httpload.TOKEN_ENV}")' in script  # the key is not in the file
    assert httpload.RESULT_PREFIX in script
    assert "2 command(s) per request" in script


def _run(rps: float, cmds: float, requests: int, commands: int, cpu_s: float) -> dict[str, Any]:
    return {
        "rps": rps,
        "cmds_per_s": cmds,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "requests": requests,
        "commands": commands,
        "cpu_s": cpu_s,
    }


def test_summarize_http_compares_commands_and_cpu_with_resp(bench: dict[str, Any]) -> None:
    runs = {
        # 16 commands per HTTP request; two rounds
        "redisgate": [
            _run(1000, 16_000, 5000, 80_000, 2.0),
            _run(2000, 32_000, 10_000, 160_000, 4.0),
        ],
        "redisgate (RESP)": [
            _run(160_000, 160_000, 320_000, 320_000, 1.0),
            _run(160_000, 160_000, 320_000, 320_000, 1.0),
        ],
    }
    summary = bench["report"].summarize_http(runs, "redisgate (RESP)")
    http, resp = summary["redisgate"], summary["redisgate (RESP)"]
    assert http["rps"] == 1500 and http["cmds_per_s"] == 24_000
    assert http["cpu_us_per_request"] == pytest.approx(6.0 / 15_000 * 1e6)  # 400 µs
    assert http["cpu_us_per_command"] == pytest.approx(6.0 / 240_000 * 1e6)  # 25 µs
    assert http["x_resp"] == pytest.approx(0.15)  # median of 0.1 and 0.2
    assert http["cpu_us_added_resp"] == pytest.approx(25 - 2 / 640_000 * 1e6)
    assert "x_resp" not in resp and resp["cpu_us_per_request"] == resp["cpu_us_per_command"]
