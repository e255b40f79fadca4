"""Where the gateway's CPU goes under a redis-benchmark load: py-spy samples, summed per function.

Starts a redis-server and the gateway (`redisgate proxy`, its own process; the key from a
throwaway PostgreSQL with limits and quotas on, as `compare.py` runs it, or from a keys file
with `--no-postgres`), runs one redis-benchmark load against the gateway while `py-spy record`
samples the gateway process, then prints the functions with the most samples, by own time
(self) and including callees (total), as percentages of the gateway's busy samples. `--http
LOAD` runs one of `compare.py`'s HTTP loads (wrk against the HTTP command API) instead.

    .venv/bin/python benchmarks/profile_gateway.py -- -t get -c 50 -P 1 -n 300000
    .venv/bin/python benchmarks/profile_gateway.py --top 40 -- -t set -c 50 -P 16 -n 1000000
    .venv/bin/python benchmarks/profile_gateway.py --http http-set-c50 --seconds 20

Sampling (100 Hz, `--nonblocking`) costs the gateway little, unlike cProfile, whose overhead
inflates small functions; the shares are what to act on, not the throughput printed.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from compare import LOAD_FLAGS, LOADS
from httpload import parse_wrk, run_wrk, wrk_script
from targets import make_keys_file, pid_of, seed, start_gateway
from tenant import postgres_tenant

from redisgate.launcher.process import free_port
from redisgate.launcher.redis import RedisServer
from redisgate.scopes import PRESETS

IDLE_FRAMES = ("select (selectors.py", "run_forever", "_run_once")

# Where an HTTP request's time goes (`--http`): each sample counts for the first phase, walking
# from its innermost frame outwards, that one of the phase's patterns matches (patterns see
# py-spy's frames, `function (path/module.py:line)`; docs/performance.md, "HTTP command API").
HTTP_PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aiohttp: response (headers, socket write)", (
        r"^(StreamWriter|StreamResponse|Response)\.", r"finish_response",
    )),
    ("JSON: request body to arguments", (
        r"^(command|batch|_load|_args|_arg|_literal) \(.*http_api/requests\.py",
    )),
    ("JSON: reply to answer (replies.parse, dumps, web.Response)", (
        r"http_api/replies\.py", r"^(_json|_error|_value|_text) \(.*http_front_door\.py",
    )),
    ("authentication per request (key, limits admit, scope bind)", (
        r"^HttpFrontDoor\._authenticate", r"^Caller\.authenticate", r"^KeyBinding\.",
        r"^Authenticator\.", r"/(api_key_format|rates|limits|command_tables)\.py:",
    )),
    ("Caller set-up (session, framer, counters)", (r"^Caller\.__init__",)),
    ("Caller close (usage harvest, limits release)", (r"^Caller\.close",)),
    ("asyncio.timeout per request", (r"asyncio/timeouts\.py",)),
    ("command path (RESP encode and frame, decide, forward)", (
        r"^Caller\.(call|call_all|_decide|_forward|_expect|reply_ready) ",
    )),
    ("backend connection (writes, reads, reply framing)", (
        r"backend/upstream\.py", r"wire/replies\.py",
    )),
    ("front door's own glue (paths, token, metrics)", (r"http_front_door\.py",)),
    ("aiohttp: request parsing, handler task", (
        r"aiohttp/(web_protocol|http_parser|web_request|streams|web_server|helpers)\.py",
    )),
    ("event loop (uvloop: epoll, socket reads, callbacks)", (r"^Runner\.run ",)),
)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-postgres", action="store_true", help="key from a keys file")
    parser.add_argument("--scopes", default=PRESETS["full"])
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    http_loads = [x.slug for x in LOADS if x.http is not None]
    parser.add_argument("--http", choices=http_loads, help="an HTTP load of compare.py (wrk)")
    parser.add_argument("--seconds", type=float, default=20, help="of the HTTP load")
    parser.add_argument("--save", type=Path, help="also keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--code", type=Path, metavar="CHECKOUT", help="profile another checkout's gateway"
    )
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="pause the gateway for each sample: no stacks torn mid-call, but the pauses land "
        "on system calls more often (under HTTP loads asyncio.get_running_loop's getpid showed "
        "at 12%% blocking, 2%% not); compare with a run without it",
    )
    parser.add_argument("benchmark", nargs="*", default=["-t", "get", "-c", "50", "-n", "300000"])
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        parser.error("py-spy is not installed: .venv/bin/pip install py-spy")
    workdir = Path(tempfile.mkdtemp(prefix="redisgate-profile-"))
    try:
        with RedisServer(workdir / "redis") as redis, ExitStack() as stack:
            seed(redis)  # the keys compare.py's loads read (mylist, bench:big, key:*)
            if args.no_postgres:
                keys, token = make_keys_file(workdir, redis, args.scopes)
                source = ["--keys-file", str(keys)]
            else:
                url, token = stack.enter_context(postgres_tenant(redis, args.scopes))
                source = ["--database-url", url]
            http_port = free_port() if args.http else 0  # a baseline may have no HTTP API
            gateway, port = start_gateway(
                workdir, source, 10_000, "profiled", LOAD_FLAGS, args.code, http_port
            )
            stack.callback(gateway.stop)
            raw = workdir / "stacks.txt"
            sampler = subprocess.Popen(
                [
                    *(spy, "record", "--pid", str(pid_of(gateway)), "--format", "raw"),
                    *(() if args.blocking else ("--nonblocking",)),
                    *("--rate", str(args.rate), "--output", str(raw)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if args.http:
                load = next(x for x in LOADS if x.slug == args.http)
                assert load.http is not None
                script = workdir / "load.lua"
                script.write_text(wrk_script(load.name, load.http))
                _, out = run_wrk(script, http_port, token, load.options, args.seconds)
                result = parse_wrk(out, load.http.commands)
                print(
                    f"{load.name}: {result['rps']:,.0f} requests/s, "
                    f"{result['cmds_per_s']:,.0f} commands/s, errors {result['errors'] or 0}"
                )
            else:
                bench = ["redis-benchmark", "-p", str(port), "-a", token, "-q", *args.benchmark]
                out = subprocess.run(bench, capture_output=True, text=True, check=True).stdout
                print(out.replace("\r", "\n").strip().splitlines()[-1])
            sampler.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            sampler.wait(30)
            if args.save:
                shutil.copyfile(raw, args.save)
            report(raw.read_text(), args.top, HTTP_PHASES if args.http else ())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(collapsed: str, top: int, phases: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> None:
    """Print the top functions by self and total samples from py-spy's collapsed stacks, the
    modules by self samples, and the `phases`' shares."""
    compiled = [(name, re.compile("|".join(patterns))) for name, patterns in phases]
    phase: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or any(idle in frames[-1] for idle in IDLE_FRAMES):
            continue
        count = int(count_text)
        busy += count
        own[_short(frames[-1])] += count
        files[_short(frames[-1]).partition(" (")[2].rstrip(")")] += count
        for frame in set(map(_short, frames)):
            total[frame] += count
        if compiled:
            found = (
                name for frame in reversed(frames) for name, rx in compiled if rx.search(frame)
            )
            phase[next(found, "other")] += count
    if not busy:
        print("no busy samples")
        return
    print(f"\n{busy} busy samples")
    sections = [("self", own), ("total (with callees)", total), ("modules (self)", files)]
    if compiled:
        sections.append(("phases (innermost matching frame)", phase))
    for title, counter in sections:
        print(f"\n{title}:")
        for frame, count in counter.most_common(top):
            print(f"  {100 * count / busy:5.1f}%  {frame}")


def _short(frame: str) -> str:
    """`fn (path/to/module.py:123)` -> `fn (module.py)`: lines vary, functions do not."""
    name, _, where = frame.partition(" (")
    path = where.split(":")[0].rstrip(")")
    return f"{name} ({Path(path).name})"


if __name__ == "__main__":
    raise SystemExit(main())
