"""`make fuzz`: every target for its share of the inputs, then the count and the time taken.

    python -m tests.fuzz.run [--inputs 1000000] [--seed N] [--engine driver|atheris]

`driver` (the default) is our own mutational driver (`driver.py`), in this process: measured
on the 2-core dev box at about 1 ms per input for the request target, 0.4 ms for replies and
0.1 ms for inline lines, so a million inputs take minutes. `atheris` runs each target under
libFuzzer's coverage guidance in a child process (`pip install -e '.[fuzz]'`); it finds
structure by itself but runs the request target at about 300 inputs per second with these
oracles, so use it for long runs with a smaller --inputs. A failing input is printed (and,
under atheris, saved in .fuzz-artifacts/); reproduce it with
`python -m tests.fuzz.run --replay TARGET FILE`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.driver import FuzzFailure, Report, fuzz
from tests.fuzz.seeds import seeds
from tests.fuzz.targets import TARGETS

# Shares of the inputs, by what each target costs and how much state it has to explore.
SHARES = {"requests": 0.35, "inline": 0.30, "replies": 0.35}
ARTIFACTS = Path(".fuzz-artifacts")


def run_driver(name: str, count: int, seed: int) -> Report:
    return fuzz(name, TARGETS[name], seeds(name), count, seed)


def run_atheris(name: str, count: int, seed: int) -> Report:
    ARTIFACTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as corpus:
        for i, data in enumerate(seeds(name)):
            (Path(corpus) / f"seed-{i}").write_bytes(data)
        command = [
            sys.executable, "-m", "tests.fuzz.atheris_main", name, f"-runs={count}",
            f"-seed={seed}", "-max_len=4096", f"-artifact_prefix={ARTIFACTS}/{name}-", corpus,
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-6000:])
        raise SystemExit(f"fuzz target {name!r} failed under atheris (exit {done.returncode})")
    match = re.search(r"Done (\d+) runs", done.stderr)
    return Report(name, int(match.group(1)) if match else 0, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="in total, all targets")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--engine", choices=["driver", "atheris"], default="driver")
    parser.add_argument("--replay", nargs=2, metavar=("TARGET", "FILE"))
    args = parser.parse_args(argv)
    if args.replay:
        name, path = args.replay
        TARGETS[name](Path(path).read_bytes())
        print(f"{name}: {path} passes")
        return 0
    engine = run_atheris if args.engine == "atheris" else run_driver
    print(
        f"fuzzing with {args.engine}, seed {args.seed}, {args.inputs:,} inputs in all", flush=True
    )
    reports = []
    started = time.perf_counter()
    for name, share in SHARES.items():
        try:
            report = engine(name, int(args.inputs * share), args.seed)
        except FuzzFailure as failure:
            ARTIFACTS.mkdir(exist_ok=True)
            path = ARTIFACTS / f"{name}-seed{args.seed}"
            path.write_bytes(failure.data)
            print(f"{name}: FAILED on the input saved in {path}: {failure.__cause__!r:.600}")
            raise
        reports.append(report)
        rate = report.inputs / report.seconds if report.seconds else 0.0
        print(f"{name:>9}: {report.inputs:>9,} inputs in {report.seconds:7.1f} s ({rate:,.0f}/s)")
        sys.stdout.flush()
    total = sum(r.inputs for r in reports)
    print(f"{'total':>9}: {total:>9,} inputs in {time.perf_counter() - started:7.1f} s, no failure")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
