"""Direct Redis vs RedisGate (vs twemproxy) under redis-benchmark, in the same run.

Starts, on loopback: one redis-server; the gateway in front of it (`redisgate proxy`, its own
process, a real API key); twemproxy (`nutcracker`, `server_connections: 1`) in front of the same
Redis when it is installed (otherwise it is skipped, and the report says so). Then runs each
load against each target, interleaved (A B C A B C …) for `--rounds` rounds, and reports the
median requests/s, min-max, median p50 latency, and ratios to direct Redis from the same
rounds. Writes JSON and a Markdown table.

    python benchmarks/compare.py --rounds 3 --requests 200000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redisgate.launcher.process import ManagedProcess, free_port
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.principals import Backend
from redisgate.proxy.static_source import add_key, set_instance

LOADS = {  # name -> redis-benchmark arguments
    "SET c50 P1": ["-t", "set", "-c", "50", "-P", "1"],
    "GET c50 P1": ["-t", "get", "-c", "50", "-P", "1"],
    "SET c50 P16": ["-t", "set", "-c", "50", "-P", "16"],
    "GET c50 P16": ["-t", "get", "-c", "50", "-P", "16"],
    "SET c500 P1": ["-t", "set", "-c", "500", "-P", "1"],
    "GET c500 P1": ["-t", "get", "-c", "500", "-P", "1"],
}
_RESULT = re.compile(rb"requests per second, p50=([\d.]+) msec")
_RPS = re.compile(rb"([\d.]+) requests per second")


def run_benchmark(
    port: int, password: str | None, args: list[str], requests: int
) -> tuple[float, float]:
    """(requests per second, p50 ms) of one redis-benchmark run."""
    cmd = [
        "redis-benchmark",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-n",
        str(requests),
        "-q",
        "-r",
        "100000",
        *args,
    ]
    if password:
        cmd += ["-a", password]
    out = subprocess.run(cmd, capture_output=True, timeout=600).stdout
    last = out.replace(b"\r", b"\n").strip().splitlines()[-1]
    rps, p50 = _RPS.search(last), _RESULT.search(last)
    if rps is None or p50 is None:
        raise RuntimeError(f"cannot read redis-benchmark output: {last!r}")
    return float(rps.group(1)), float(p50.group(1))


def start_gateway(workdir: Path, redis: RedisServer) -> tuple[ManagedProcess, int, str]:
    keys = workdir / "keys.toml"
    set_instance(keys, "bench", Backend(host="127.0.0.1", port=redis.port, password=redis.password))
    token = add_key(keys, "bench", "bench").token
    port = free_port()
    proc = ManagedProcess(
        "redisgate",
        [
            sys.executable,
            "-m",
            "redisgate",
            "proxy",
            "--keys-file",
            str(keys),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        workdir / "gateway.log",
        stop_signal=signal.SIGINT,
    )
    proc.start()
    proc.wait_ready(lambda: _answers(port), 30, "listening")
    return proc, port, token


def start_twemproxy(workdir: Path, redis: RedisServer) -> tuple[ManagedProcess, int] | None:
    binary = shutil.which("nutcracker")
    if binary is None:
        return None
    port = free_port()
    conf = workdir / "nutcracker.yml"
    conf.write_text(
        "bench:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  redis: true\n"
        f"  redis_auth: {redis.password}\n"
        "  server_connections: 1\n"
        "  servers:\n"
        f"    - 127.0.0.1:{redis.port}:1\n"
    )
    proc = ManagedProcess("nutcracker", [binary, "-c", str(conf)], workdir / "nutcracker.log")
    proc.start()
    proc.wait_ready(lambda: _answers(port), 30, "listening")
    return proc, port


def _answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--loads", default=",".join(LOADS), help="comma-separated load names")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    loads = [name.strip() for name in args.loads.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="redisgate-bench-"))
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with RedisServer(workdir / "redis") as redis:
        gateway, gw_port, token = start_gateway(workdir, redis)
        twem = start_twemproxy(workdir, redis)
        try:
            targets: dict[str, tuple[int, str | None]] = {
                "redis": (redis.port, redis.password),
                "redisgate": (gw_port, token),
            }
            if twem is not None:
                targets["twemproxy"] = (twem[1], redis.password)
            else:
                print("twemproxy (nutcracker) is not installed: skipped", file=sys.stderr)
            for load in loads:
                results[load] = {t: [] for t in targets}
                for _ in range(args.rounds):
                    for target, (port, password) in targets.items():
                        results[load][target].append(
                            run_benchmark(port, password, LOADS[load], args.requests)
                        )
                print(format_row(load, results[load]), file=sys.stderr)
        finally:
            gateway.stop()
            if twem is not None:
                twem[0].stop()
    shutil.rmtree(workdir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"compare-{stamp}.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (args.out / f"compare-{stamp}.md").write_text(table)
    print(table)
    return 0


def _median(runs: list[tuple[float, float]], i: int) -> float:
    return statistics.median(r[i] for r in runs)


def format_row(load: str, by_target: dict[str, list[tuple[float, float]]]) -> str:
    base = _median(by_target["redis"], 0)
    parts = [
        f"{t} {_median(r, 0):,.0f}/s ({_median(r, 0) / base:.2f}x)" for t, r in by_target.items()
    ]
    return f"{load}: " + ", ".join(parts)


def markdown(results: dict[str, dict[str, list[tuple[float, float]]]]) -> str:
    targets = list(next(iter(results.values())))
    head = ["load"] + [f"{t} req/s (min-max)" for t in targets]
    head += [f"{t}/redis" for t in targets[1:]] + [f"{t} p50 ms" for t in targets]
    if "twemproxy" in targets:
        head.append("redisgate/twemproxy")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for load, by_target in results.items():
        base = _median(by_target["redis"], 0)
        row = [load]
        for runs in by_target.values():
            lo, hi = min(r[0] for r in runs), max(r[0] for r in runs)
            row.append(f"{_median(runs, 0):,.0f} ({lo:,.0f}-{hi:,.0f})")
        row += [f"{_median(by_target[t], 0) / base:.2f}x" for t in targets[1:]]
        row += [f"{_median(by_target[t], 1):.3f}" for t in targets]
        if "twemproxy" in targets:
            ratio = _median(by_target["redisgate"], 0) / _median(by_target["twemproxy"], 0)
            row.append(f"{ratio:.2f}x")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
