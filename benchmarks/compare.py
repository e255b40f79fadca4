"""Direct Redis vs RedisGate vs the floor vs twemproxy, side by side on loopback (`make bench`).

Starts one redis-server; the gateway in front of it (`redisgate proxy`, its own process, a real
API key from PostgreSQL or a keys file, so every command takes the authenticated, scope-checked
path); the floor (benchmarks/floor.py: the smallest uvloop forwarder, one shared connection to
Redis, no client AUTH, no policy: what bare Python does on this machine; `--no-floor` leaves it
out); and twemproxy (`nutcracker`, `server_connections: 1`) in front of the same Redis when it
is installed (otherwise it is skipped, and the report says so). Then, per load, runs every
target in turn, round after round (A B C A B C …), so drift of a shared machine hits them alike:

- redis-benchmark loads: SET/GET at c50 -P1, c50 -P16, c500 -P1; LRANGE_100; GET of a 100 KB
  value. Requests/s and p50/p99 come from redis-benchmark's `--csv` output.
- `mixed`: MGET of 10 keys, HSET/HGETALL, LPUSH/LRANGE, INCR, EVALSHA (benchmarks/mixed.py).
  The floor runs only these two kinds of load (it takes no AUTH, which `idle` sends, and has
  no HTTP port).
- `idle`: 10,000 idle authenticated connections against a freshly started target: RSS per
  connection, and a new client's connect + AUTH + PING time (benchmarks/idle.py).
- HTTP loads (`http-*`): the gateway's HTTP command API under wrk, keep-alive, SET and GET one
  command per `POST /` and 16 GETs per `POST /pipeline` (benchmarks/httpload.py), each round
  beside the same commands over RESP through the same gateway at the same concurrency
  (redis-benchmark -P1 / -P16): requests/s, commands/s, CPU per request and per command.

Reports, per load and target: median requests/s with min-max, median p50 and p99 latency,
ratios to direct Redis, to the floor and to twemproxy (median of the per-round ratios), and the
CPU seconds the target's own process (redis-server, gateway, floor, nutcracker) used per million
commands, from /proc/PID/stat before and after each run; and the gateway against the floor per
load (its distance to what Python can do, in req/s and CPU µs per command). Writes
`results/compare-<time>.{json,md}` and prints the Markdown, including the performance issue's
targets and whether they were met.

    python benchmarks/compare.py                       # everything, 3 rounds (`make bench`)
    python benchmarks/compare.py --quick --rounds 1    # tiny sizes: a smoke test
    python benchmarks/compare.py --only 'set-*' mixed --rounds 5 --no-twemproxy
    python benchmarks/compare.py --only 'get-c50-*' --no-floor
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import (
    BlockingClient,
    cpu_seconds,
    open_files_limit,
    raise_open_files_limit,
    write_report,
)
from httpload import HttpRequest, http_call, parse_wrk, run_wrk, wrk_script
from idle import measure_idle
from mixed import run_loop, run_mixed
from report import FLOOR, markdown, summarize, summarize_http, summarize_idle
from targets import (
    BIG_KEY,
    BIG_SIZE,
    DATA,
    KEYSPACE,
    Target,
    make_keys_file,
    pid_of,
    seed,
    start_floor,
    start_gateway,
    start_twemproxy,
)
from tenant import postgres_tenant

from redisgate.launcher.process import ManagedProcess, free_port
from redisgate.launcher.redis import RedisServer
from redisgate.scopes import PRESETS

ROOT = Path(__file__).resolve().parent.parent
FULL_WITH_SCRIPTS = PRESETS["full"] + " +@scripting"
# redis-benchmark -c 500 opens all its connections from 127.0.0.1 before any of them AUTHs:
# past max_anonymous_per_address (256 by default) the gateway would close the oldest.
LOAD_FLAGS = ("--max-anonymous-per-address", "10000")
RESP_TWIN = "redisgate (RESP)"  # an HTTP load's same commands over RESP, in its table
FLOOR_KINDS = ("bench", "mixed")  # the loads the floor runs (no AUTH for idle, no HTTP port)


@dataclass(frozen=True)
class Load:
    """One row group of the report. `options` go to redis-benchmark, then `command` (a custom
    command, instead of `-t`). `check` is sent once to each target first: redis-benchmark counts
    error replies as successes, so a denied or unsupported command would look fast. An HTTP
    load has its `http` request (sent by wrk to every gateway's HTTP port) and its `twin`, the
    same commands over RESP to the gateway, run in the same rounds."""

    slug: str
    name: str
    kind: str  # "bench", "mixed", "idle" or "http"
    options: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    requests: int = 0
    quick: int = 0
    check: tuple[str, ...] = ()
    expect: bytes = b""
    setget: bool = False  # one of the SET/GET loads, which --requests resizes
    http: HttpRequest | None = None
    twin: Load | None = None


def _setget(test: str, clients: int, pipeline: int, requests: int) -> Load:
    name = f"{test.upper()} c{clients} P{pipeline}"
    check = ("SET", "key:000000000000", DATA) if test == "set" else ("GET", "key:000000000000")
    return Load(
        f"{test}-c{clients}-p{pipeline}",
        name,
        "bench",
        ("-t", test, "-c", str(clients), "-P", str(pipeline), "-r", str(KEYSPACE)),
        requests=requests,
        quick=max(requests // 50, 1000),
        check=check,
        expect=b"+OK" if test == "set" else b"$3\r\n",
        setget=True,
    )


def _http(test: str, clients: int, pipeline: int, requests: int) -> Load:
    """An HTTP load: `test` (SET or GET of one key) alone per `POST /`, or `pipeline` of them
    per `POST /pipeline`; its twin sends the same command over RESP, `pipeline` deep."""
    one = ["SET", "key:000000000000", DATA] if test == "set" else ["GET", "key:000000000000"]
    result = b'{"result":"OK"}' if test == "set" else b'{"result":"%s"}' % DATA.encode()
    if pipeline == 1:
        slug, what = f"http-{test}-c{clients}", test.upper()
        request = HttpRequest("/", json.dumps(one).encode(), 1, result)
    else:
        slug, what = f"http-pipeline{pipeline}-c{clients}", f"pipeline {pipeline}x{test.upper()}"
        body = json.dumps([one] * pipeline).encode()
        request = HttpRequest("/pipeline", body, pipeline, b"[%s]" % b",".join([result] * pipeline))
    twin = Load(
        f"{slug}-resp",
        f"{test.upper()} c{clients} P{pipeline} (RESP)",
        "bench",
        ("-c", str(clients), "-P", str(pipeline)),
        tuple(one),
        requests,
        max(requests // 50, 1000),
        tuple(one),
        b"+OK" if test == "set" else b"$3\r\n",
    )
    return Load(
        slug, f"HTTP {what} c{clients}", "http", ("-c", str(clients)), http=request, twin=twin
    )


LOADS = [
    _setget("set", 50, 1, 100_000),
    _setget("get", 50, 1, 100_000),
    _setget("set", 50, 16, 300_000),
    _setget("get", 50, 16, 300_000),
    _setget("set", 500, 1, 60_000),
    _setget("get", 500, 1, 60_000),
    # redis-benchmark's own LRANGE_100 (`-t lrange_100`) first runs an LPUSH pass of -n requests
    # to fill "mylist"; giving its command explicitly skips that pass ("mylist" is seeded once).
    Load(
        "lrange100",
        "LRANGE_100 c50",
        "bench",
        ("-c", "50"),
        ("LRANGE", "mylist", "0", "99"),
        30_000,
        1_000,
        ("LRANGE", "mylist", "0", "99"),
        b"*100\r\n",
    ),
    Load(
        "get-100kb",
        "GET 100KB c50",
        "bench",
        ("-c", "50"),
        ("GET", BIG_KEY),
        8_000,
        500,
        ("GET", BIG_KEY),
        b"$%d\r\n" % BIG_SIZE,
    ),
    Load("mixed", "MIXED c50", "mixed"),
    Load("idle", "IDLE", "idle"),
    _http("set", 50, 1, 100_000),
    _http("get", 50, 1, 100_000),
    _http("get", 50, 16, 300_000),
]


# --- Running one measurement -------------------------------------------------------------------


def run_benchmark(target: Target, load: Load, requests: int) -> dict[str, Any]:
    """One redis-benchmark run: requests/s, p50 and p99 ms (from --csv), target CPU seconds."""
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(target.port), "-n", str(requests)]
    cmd += ["--csv", *load.options]
    if target.password:
        cmd += ["-a", target.password]
    cmd += load.command
    cpu = cpu_seconds(target.pid)
    proc = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    cpu = cpu_seconds(target.pid) - cpu
    rows = [r for r in csv.reader(proc.stdout.decode().splitlines()) if len(r) == 8]
    try:
        row = rows[-1]
        rps, p50, p99 = float(row[1]), float(row[4]), float(row[6])
    except (IndexError, ValueError):
        raise RuntimeError(
            f"cannot read redis-benchmark output ({' '.join(cmd)}): "
            f"{proc.stdout[-500:]!r} {proc.stderr[-500:]!r}"
        ) from None
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "cpu_s": cpu, "commands": requests}


def run_mixed_once(target: Target, clients: int, seconds: float, sha: str) -> dict[str, Any]:
    cpu = cpu_seconds(target.pid)
    result = run_loop(
        run_mixed(
            "127.0.0.1", target.port, target.password, clients=clients, seconds=seconds, sha=sha
        )
    )
    summary: dict[str, Any] = result.summary()
    summary["cpu_s"] = cpu_seconds(target.pid) - cpu
    return summary


def run_http_once(target: Target, load: Load, script: Path, seconds: float) -> dict[str, Any]:
    """One wrk run of an HTTP load against a gateway's HTTP port: requests/s, commands/s,
    p50 and p99 ms, wrk's errors, the gateway's CPU seconds over the run."""
    assert load.http is not None and target.http_port is not None and target.password
    cpu = cpu_seconds(target.pid)
    _, out = run_wrk(script, target.http_port, target.password, load.options, seconds)
    cpu = cpu_seconds(target.pid) - cpu
    result = parse_wrk(out, load.http.commands)
    result["cpu_s"] = cpu
    return result


@dataclass(frozen=True)
class GatewaySpec:
    """How a gateway target is started: its key source and flags, and the key to use."""

    name: str
    source: list[str]
    token: str
    extra: tuple[str, ...] = ()
    code: Path | None = None  # another checkout's package (--baseline)


@contextmanager
def fresh_target(
    name: str, workdir: Path, redis: RedisServer, gateways: list[GatewaySpec], count: int, tag: str
) -> Iterator[Target]:
    """A newly started target for the idle load (earlier loads' freed memory would be reused
    by the idle connections and hide their cost)."""
    if name == "redis":
        server = RedisServer(workdir / tag, extra_config={"maxclients": str(count + 1000)})
        server.start()
        try:
            yield Target(name, server.port, server.password, pid_of(server.process))
        finally:
            server.stop()
        return
    spec = next((g for g in gateways if g.name == name), None)
    if spec is not None:
        extra = LOAD_FLAGS + spec.extra
        proc, port = start_gateway(workdir, spec.source, count + 1000, tag, extra, spec.code)
        password: str | None = spec.token
    else:
        proc, port = start_twemproxy(workdir, redis, tag)
        password = redis.password
    try:
        yield Target(name, port, password, pid_of(proc))
    finally:
        proc.stop()


def check_load(load: Load, targets: list[Target]) -> dict[str, str]:
    """Targets that answer the load's command with something unexpected (-> skipped)."""
    bad: dict[str, str] = {}
    for target in targets:
        with BlockingClient("127.0.0.1", target.port, target.password) as client:
            reply = client.call(*load.check)
        if not reply.startswith(load.expect):
            bad[target.name] = f"{' '.join(load.check[:2])} answered {reply[:80]!r}"
    return bad


def check_http(load: Load, targets: list[Target]) -> dict[str, str]:
    """Gateways whose HTTP port answers the load's request with something unexpected."""
    assert load.http is not None
    bad: dict[str, str] = {}
    for target in targets:
        assert target.http_port is not None and target.password
        status, body = http_call(target.http_port, target.password, load.http)
        if status != 200 or body != load.http.expect:
            bad[target.name] = f"{load.http.path} answered {status} {body[:80]!r}"
    return bad


# --- Main --------------------------------------------------------------------------------------


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=10, check=False)
    except OSError:
        return f"{cmd[0]} not installed"
    return (out.stdout or out.stderr).decode(errors="replace").strip().splitlines()[0]


def environment() -> dict[str, Any]:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "redisgate"],
        capture_output=True,
        check=False,
    ).stdout
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "redis": _version(["redis-server", "--version"]).split(" sha=")[0],
        "redis_benchmark": _version(["redis-benchmark", "--version"]),
        "nutcracker": _version(["nutcracker", "--version"]).replace("This is ", "")
        if shutil.which("nutcracker")
        else "no nutcracker",
        "wrk": _version(["wrk", "--version"]).split(" Copyright")[0]
        if shutil.which("wrk")
        else "no wrk",
        "gateway_commit": commit + (" + uncommitted changes" if dirty.strip() else ""),
        "loadavg_start": f"{os.getloadavg()[0]:.2f}",
    }


def select_loads(patterns: list[str]) -> list[Load]:
    chosen = [
        load
        for load in LOADS
        if any(
            fnmatch.fnmatch(load.slug, p.lower()) or load.name.lower() == p.lower()
            for p in patterns
        )
    ]
    unknown = [
        p
        for p in patterns
        if not any(fnmatch.fnmatch(x.slug, p.lower()) or x.name.lower() == p.lower() for x in LOADS)
    ]
    if unknown:
        names = ", ".join(x.slug for x in LOADS)
        raise SystemExit(f"unknown load(s) {', '.join(unknown)}; loads: {names}")
    return chosen


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="loads: " + ", ".join(f"{x.slug} ({x.name})" for x in LOADS),
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--only", nargs="+", metavar="LOAD", help="loads to run (globs: 'set-*')")
    parser.add_argument("--loads", help="comma-separated load names (older spelling of --only)")
    parser.add_argument("--no-twemproxy", action="store_true", help="leave twemproxy out")
    parser.add_argument(
        "--no-floor", action="store_true", help="leave the floor (benchmarks/floor.py) out"
    )
    parser.add_argument("--requests", type=int, help="requests per SET/GET run (default 60k-300k)")
    parser.add_argument("--idle", type=int, help="idle connections (default 10000; 0: skip)")
    parser.add_argument("--mixed-clients", type=int, default=50)
    parser.add_argument("--mixed-seconds", type=float, help="per run (default 4)")
    parser.add_argument("--http-seconds", type=float, help="per wrk run (default 5)")
    parser.add_argument(
        "--scopes",
        default=FULL_WITH_SCRIPTS,
        help="the API key's scopes (default: the full preset with +@scripting, for EVALSHA)",
    )
    parser.add_argument(
        "--no-postgres",
        action="store_true",
        help="read the gateway's key from a keys file (no PostgreSQL: no usage flushes, no limits)",
    )
    parser.add_argument(
        "--policy-cost",
        action="store_true",
        help="also run redisgate-bare (keys file, no limits, metrics endpoint off)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="also run redisgate-workers: the same gateway with --workers N (SO_REUSEPORT)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also run the gateway of another checkout (e.g. a worktree of main) for an A/B",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    if args.idle is None:
        args.idle = 500 if args.quick else 10_000
    if args.mixed_seconds is None:
        args.mixed_seconds = 0.5 if args.quick else 4.0
    if args.http_seconds is None:
        args.http_seconds = 1.0 if args.quick else 5.0
    patterns = args.only or (args.loads.split(",") if args.loads else ["*"])
    args.selected = select_loads([p.strip() for p in patterns if p.strip()])
    if args.idle == 0:
        args.selected = [x for x in args.selected if x.kind != "idle"]
    return args


def main() -> int:
    args = parse_args()
    began = time.monotonic()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    notes: list[str] = []
    env = environment()
    use_twem = not args.no_twemproxy and shutil.which("nutcracker") is not None
    if args.no_twemproxy:
        notes.append("twemproxy left out (--no-twemproxy).")
    elif not use_twem:
        notes.append(
            "twemproxy skipped: nutcracker is not installed (`make bench` installs the Debian "
            "package when run as root)."
        )
        print(notes[-1], file=sys.stderr)
    use_floor = not args.no_floor and any(x.kind in FLOOR_KINDS for x in args.selected)
    if args.no_floor:
        notes.append("the floor left out (--no-floor).")
    elif use_floor:
        notes.append(
            "floor: benchmarks/floor.py, the smallest uvloop forwarder (one shared connection to "
            "Redis, backend writes coalesced per loop turn, no client AUTH, no policy): what "
            "Python does on this machine; redis-benchmark loads and mixed only."
        )
    if any(x.kind == "http" for x in args.selected) and shutil.which("wrk") is None:
        args.selected = [x for x in args.selected if x.kind != "http"]
        notes.append(
            "HTTP loads skipped: wrk is not installed (`make bench` installs the Debian package "
            "when run as root)."
        )
        print(notes[-1], file=sys.stderr)
    if any(x.kind == "idle" for x in args.selected):
        limit = raise_open_files_limit(args.idle + 2000)
        if limit < args.idle + 500:
            notes.append(
                f"open-files limit {limit} is too low for {args.idle:,} idle connections "
                f"(the client and each target hold one descriptor per connection): idle ran "
                f"with {limit - 500:,}; raise `ulimit -n` (hard) to measure the full count."
            )
            print(notes[-1], file=sys.stderr)
            args.idle = max(1, limit - 500)
    scope = f"scope {args.scopes!r} (see --scopes)"
    if args.no_postgres:
        notes.append(
            f"gateway policy path: API key from a keys file, {scope} checked per command; "
            "metrics on; no limits, no usage flushes (--no-postgres)."
        )
    else:
        notes.append(
            f"gateway policy path: API key from PostgreSQL (LISTEN for changes, usage flushed "
            f"every 5 s), {scope}, rate limits and daily quotas (set far above the loads) checked "
            "per command, metrics on."
        )
    if args.policy_cost:
        notes.append(
            "redisgate-bare: the same gateway with a keys-file key without limits and its "
            "metrics endpoint off (per-command counters cannot be switched off), for the cost "
            "of limits, usage and metrics."
        )
    workdir = Path(tempfile.mkdtemp(prefix="redisgate-bench-"))
    report: dict[str, Any] = {
        "started": started,
        "rounds": args.rounds,
        "quick": args.quick,
        "environment": env,
        "notes": notes,
        "loads": {},
    }
    procs: list[ManagedProcess] = []
    try:
        with RedisServer(workdir / "redis") as redis, ExitStack() as services:
            sha = seed(redis)
            gateways = []
            if args.no_postgres:
                keys, token = make_keys_file(workdir, redis, args.scopes)
                gateways.append(GatewaySpec("redisgate", ["--keys-file", str(keys)], token))
            else:
                url, token = services.enter_context(postgres_tenant(redis, args.scopes))
                gateways.append(GatewaySpec("redisgate", ["--database-url", url], token))
            if args.policy_cost:
                keys, token = make_keys_file(workdir, redis, args.scopes, "bare")
                source, extra = ["--keys-file", str(keys)], ("--metrics-enabled", "false")
                gateways.append(GatewaySpec("redisgate-bare", source, token, extra))
            if args.workers:
                main = gateways[0]
                extra = ("--workers", str(args.workers))
                gateways.append(GatewaySpec("redisgate-workers", main.source, main.token, extra))
            if args.baseline:
                main = gateways[0]
                baseline = GatewaySpec(
                    "redisgate-baseline", main.source, main.token, (), args.baseline
                )
                gateways.append(baseline)
            targets = [Target("redis", redis.port, redis.password, pid_of(redis.process))]
            http_loads = any(x.kind == "http" for x in args.selected)
            for spec in gateways:
                # Only when a load uses it: a baseline from before the HTTP API has none.
                http_port = free_port() if http_loads else None
                extra = LOAD_FLAGS + spec.extra
                gateway, gw_port = start_gateway(
                    workdir, spec.source, 10_000, spec.name, extra, spec.code, http_port or 0
                )
                procs.append(gateway)
                target = Target(spec.name, gw_port, spec.token, pid_of(gateway), http_port)
                targets.append(target)
            if use_floor:
                floor, floor_port = start_floor(workdir, redis, "main")
                procs.append(floor)
                targets.append(Target(FLOOR, floor_port, None, pid_of(floor)))
            if use_twem:
                twem, twem_port = start_twemproxy(workdir, redis, "main")
                procs.append(twem)
                targets.append(Target("twemproxy", twem_port, redis.password, pid_of(twem)))
            for load in args.selected:
                try:
                    if load.kind == "idle":
                        # idle.py authenticates every connection: the floor takes no AUTH.
                        authed = [t for t in targets if t.name != FLOOR]
                        report["idle"] = run_idle(args, workdir, redis, gateways, authed)
                    elif load.kind == "http":
                        entry = run_http_load(args, load, targets, workdir, notes)
                        report["loads"][load.name] = entry
                    else:
                        report["loads"][load.name] = run_load(args, load, targets, sha, notes)
                except Exception as exc:  # keep the other loads' results
                    notes.append(f"{load.name} failed: {type(exc).__name__}: {exc}")
                    _progress(notes[-1])
                dead = [proc for proc in procs if not proc.running()]
                if dead:
                    notes.append(f"{dead[0].name} exited; stopped here. Log: {dead[0].log_tail(5)}")
                    _progress(notes[-1])
                    break
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    env["loadavg_end"] = f"{os.getloadavg()[0]:.2f}"
    report["duration_s"] = time.monotonic() - began
    write_report(args.out, "compare", report, markdown(report))
    return 0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_load(
    args: argparse.Namespace, load: Load, targets: list[Target], sha: str, notes: list[str]
) -> dict[str, Any]:
    """All rounds of one load, targets interleaved; returns its runs and summary."""
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    active = targets
    requests = load.quick if args.quick else load.requests
    if args.requests and load.setget:
        requests = args.requests
    if load.kind == "bench":
        bad = check_load(load, targets)
        for name, why in bad.items():
            notes.append(f"{load.name}: {name} skipped: {why}")
            _progress(notes[-1])
        active = [t for t in targets if t.name not in bad]

    def once(target: Target) -> dict[str, Any]:
        if load.kind == "bench":
            return run_benchmark(target, load, requests)
        return run_mixed_once(target, args.mixed_clients, args.mixed_seconds, sha)

    for round_no in range(args.rounds):
        for target in active:
            result = once(target)
            runs[target.name].append(result)
            _progress(
                f"{load.name} round {round_no + 1} {target.name}: {result['rps']:,.0f}/s "
                f"p50 {result['p50_ms']:.3f} p99 {result['p99_ms']:.3f} ms"
            )
    if load.kind == "mixed":
        busy = max(r["client_cpu_s"] / r["seconds"] for rs in runs.values() for r in rs)
        capped = " (so it may be what limits the rates)" if busy > 0.85 else ""
        notes.append(
            f"{load.name}: benchmarks/mixed.py, {args.mixed_clients} connections, request/reply, "
            f"{args.mixed_seconds:g} s per run; the generator used up to {busy:.0%} of a core"
            f"{capped}."
        )
        for target in active:
            for op, why in runs[target.name][0]["skipped"].items():
                notes.append(f"{load.name}: {target.name} cannot run {op} ({why}): left out")
    entry: dict[str, Any] = {"slug": load.slug, "runs": runs, "summary": summarize(runs)}
    if load.kind == "bench":
        entry["redis_benchmark_args"] = ["-n", str(requests), *load.options, *load.command]
    else:
        entry["clients"], entry["seconds"] = args.mixed_clients, args.mixed_seconds
    return entry


def run_http_load(
    args: argparse.Namespace, load: Load, targets: list[Target], workdir: Path, notes: list[str]
) -> dict[str, Any]:
    """All rounds of one HTTP load: wrk against each gateway's HTTP port, then its twin (the
    same commands over RESP) against the gateway, round after round."""
    assert load.http is not None and load.twin is not None
    gateways = [t for t in targets if t.http_port is not None]
    resp = next(t for t in targets if t.name == "redisgate")
    bad = check_http(load, gateways)
    for why in check_load(load.twin, [resp]).values():
        bad[RESP_TWIN] = why
    for name, why in bad.items():
        notes.append(f"{load.name}: {name} skipped: {why}")
        _progress(notes[-1])
    active = [t for t in gateways if t.name not in bad]
    script_text = wrk_script(load.name, load.http)
    script = workdir / f"{load.slug}.lua"
    script.write_text(script_text)
    twin = load.twin
    requests = twin.quick if args.quick else twin.requests
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in active}
    if RESP_TWIN not in bad:
        runs[RESP_TWIN] = []
    errors: dict[str, dict[str, int]] = {}
    for round_no in range(args.rounds):
        for target in active:
            result = run_http_once(target, load, script, args.http_seconds)
            runs[target.name].append(result)
            for kind, count in result["errors"].items():
                errors.setdefault(target.name, {}).setdefault(kind, 0)
                errors[target.name][kind] += count
            _progress(
                f"{load.name} round {round_no + 1} {target.name}: {result['rps']:,.0f} req/s "
                f"{result['cmds_per_s']:,.0f} cmds/s p50 {result['p50_ms']:.3f} "
                f"p99 {result['p99_ms']:.3f} ms"
            )
        if RESP_TWIN in runs:
            result = run_benchmark(resp, twin, requests)
            result["requests"], result["cmds_per_s"] = result["commands"], result["rps"]
            runs[RESP_TWIN].append(result)
            _progress(
                f"{load.name} round {round_no + 1} {RESP_TWIN}: {result['rps']:,.0f} cmds/s "
                f"p50 {result['p50_ms']:.3f} p99 {result['p99_ms']:.3f} ms"
            )
    for name, counts in errors.items():
        what = ", ".join(f"{count:,} {kind}" for kind, count in sorted(counts.items()))
        notes.append(f"{load.name}: wrk counted errors against {name}: {what} (status: not 2xx)")
        _progress(notes[-1])
    return {
        "slug": load.slug,
        "kind": "http",
        "runs": runs,
        "summary": summarize_http(runs, RESP_TWIN),
        "wrk_args": ["-t", "1", *load.options, "-d", f"{args.http_seconds:g}s"],
        "wrk_script": script_text,
        "redis_benchmark_args": ["-n", str(requests), *twin.options, *twin.command],
    }


def run_idle(
    args: argparse.Namespace,
    workdir: Path,
    redis: RedisServer,
    gateways: list[GatewaySpec],
    targets: list[Target],
) -> dict[str, Any]:
    """Rounds of the idle load, each target started afresh for each measurement."""
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for round_no in range(args.rounds):
        for t in targets:
            tag = f"idle-{t.name}-{round_no}"
            with fresh_target(t.name, workdir, redis, gateways, args.idle, tag) as target:
                limit = open_files_limit(target.pid)
                if limit < args.idle + 50:
                    _progress(f"warning: {t.name}'s open-files limit is {limit}")
                result = run_loop(
                    measure_idle("127.0.0.1", target.port, target.password, target.pid, args.idle)
                )
            result["open_files_limit"] = limit
            runs[t.name].append(result)
            _progress(
                f"IDLE round {round_no + 1} {t.name}: {result['opened']:,} open, "
                f"{result['bytes_per_conn'] / 1024:.2f} KiB each, new client "
                f"{result['probe_p50_ms']:.2f} ms, {result['alive']:,} alive"
                + (f" ({result['error']})" if result["error"] else "")
            )
    return {"count": args.idle, "runs": runs, "summary": summarize_idle(runs)}


if __name__ == "__main__":
    raise SystemExit(main())
