"""HTTP loads of `compare.py`: wrk against the gateway's HTTP command API (docs/http.md).

wrk (Debian's `wrk`, a C load generator, so the client is not the bottleneck) holds keep-alive
connections and sends one fixed request on each as fast as it is answered, as redis-benchmark
does for RESP. Each load is a small Lua script (`wrk_script`): the method, path, JSON body and
headers of its request, and a `done` hook printing one machine-readable line (`parse_wrk`):
requests, duration, latency percentiles and wrk's error counts. The token is not written into
the script: wrk reads it from the environment (`TOKEN_ENV`).

Kept free of the `redisgate` package, like `benchlib`: the load generator shares no code with
the gateway it measures.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_ENV = "REDISGATE_BENCH_TOKEN"
RESULT_PREFIX = "WRK_RESULT "

_SCRIPT = """\
-- {name} (benchmarks/compare.py): {commands} command(s) per request, keep-alive
wrk.method = "POST"
wrk.path = {path}
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("{token_env}")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{prefix}{{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"p50_us":%.1f,"p99_us":%.1f,'
      .. '"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class HttpRequest:
    """The one request an HTTP load repeats: `POST path` with a JSON `body` of `commands`
    commands; `expect` is its whole answer (checked once per target before the load)."""

    path: str
    body: bytes
    commands: int
    expect: bytes


def _lua_string(text: str) -> str:
    """`text` as a Lua string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def wrk_script(name: str, request: HttpRequest) -> str:
    """The Lua script of one load: its request, and a `done` hook printing the result line."""
    return _SCRIPT.format(
        name=name,
        commands=request.commands,
        path=_lua_string(request.path),
        body=_lua_string(request.body.decode()),
        token_env=TOKEN_ENV,
        prefix=RESULT_PREFIX,
    )


def parse_wrk(stdout: str, commands_per_request: int) -> dict[str, Any]:
    """wrk's output to a run's numbers: requests/s, commands/s, p50/p99 ms, the counts and
    wrk's errors (connect, read, write, timeout, and `status`: answers other than 2xx/3xx)."""
    line = next((x for x in stdout.splitlines() if x.startswith(RESULT_PREFIX)), None)
    if line is None:
        raise ValueError(f"no {RESULT_PREFIX.strip()} line in wrk's output: {stdout[-500:]!r}")
    raw = json.loads(line[len(RESULT_PREFIX) :])
    requests, seconds = int(raw["requests"]), raw["duration_us"] / 1e6
    if seconds <= 0:
        raise ValueError(f"wrk ran for no time: {line!r}")
    errors = {kind: int(raw[kind]) for kind in ("connect", "read", "write", "status", "timeout")}
    return {
        "rps": requests / seconds,
        "cmds_per_s": requests * commands_per_request / seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": requests,
        "commands": requests * commands_per_request,
        "seconds": seconds,
        "errors": {kind: count for kind, count in errors.items() if count},
    }


def run_wrk(
    script: Path, port: int, token: str, options: Sequence[str], seconds: float
) -> tuple[list[str], str]:
    """One wrk run against 127.0.0.1:port (one thread, like redis-benchmark, unless `options`
    say otherwise); its argv and stdout (raises if wrk failed)."""
    cmd = ["wrk", "-t", "1", *options, "-d", f"{seconds:g}s"]
    cmd += ["-s", str(script), f"http://127.0.0.1:{port}"]
    env = {**os.environ, TOKEN_ENV: token}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout[-500:]!r} {proc.stderr[-500:]!r}")
    return cmd, proc.stdout


def http_call(port: int, token: str, request: HttpRequest) -> tuple[int, bytes]:
    """The load's request sent once (a blocking client, for the check): status and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request("POST", request.path, request.body, headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()
