"""The report of `compare.py`: summaries over rounds, the performance issue's targets, Markdown.

Kept apart from the runner so the numbers' meaning (medians, same-round ratios) lives in one
place; `compare.py` collects runs and calls `summarize`, `summarize_http`, `summarize_idle` and
`markdown`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchlib import median

FLOOR = "floor"  # benchmarks/floor.py: what bare Python does here (x_floor, its own table)


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per target: medians, min-max, same-round ratios (`x_redis`, `x_floor`, `x_twemproxy`),
    CPU seconds per million commands (the same number as CPU µs per command)."""
    out: dict[str, dict[str, Any]] = {}
    for name, rounds in runs.items():
        if not rounds:
            continue
        rps = [r["rps"] for r in rounds]
        commands = sum(r["commands"] for r in rounds)
        entry: dict[str, Any] = {
            "rps": median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50_ms": median([r["p50_ms"] for r in rounds]),
            "p99_ms": median([r["p99_ms"] for r in rounds]),
            "cpu_s_per_m": sum(r["cpu_s"] for r in rounds) / commands * 1e6 if commands else None,
        }
        for base in ("redis", FLOOR, "twemproxy"):
            other = runs.get(base) or []
            if name != base and len(other) == len(rounds):
                ratios = [r["rps"] / o["rps"] for r, o in zip(rounds, other, strict=True)]
                entry[f"x_{base}"] = median(ratios)
        if name == "redisgate":  # against variants of itself: the same code without the
            for other, variant in runs.items():  # policy path (-bare), another commit (-baseline)
                if other.startswith("redisgate-") and len(variant) == len(rounds):
                    entry[f"x_{other}"] = median(
                        [r["rps"] / v["rps"] for r, v in zip(rounds, variant, strict=True)]
                    )
                    entry[f"cpu_us_added_{other}"] = _cpu_us(rounds) - _cpu_us(variant)
        out[name] = entry
    return out


def summarize_http(runs: dict[str, list[dict[str, Any]]], resp: str) -> dict[str, dict[str, Any]]:
    """An HTTP load: `summarize`'s numbers (its req/s are HTTP requests, each of one or more
    commands) plus commands/s and CPU µs per request and per command; and, against `resp` (the
    same commands over RESP through the gateway, same rounds), the median per-round ratio of
    commands/s and the CPU µs per command added."""
    out = summarize(runs)
    twin = runs.get(resp) or []
    twin_cpu = _cpu_per(twin, "commands")
    for name, entry in out.items():
        rounds = runs[name]
        entry["cmds_per_s"] = median([r["cmds_per_s"] for r in rounds])
        entry["cpu_us_per_request"] = _cpu_per(rounds, "requests")
        entry["cpu_us_per_command"] = _cpu_per(rounds, "commands")
        if name != resp and len(twin) == len(rounds):
            entry["x_resp"] = median(
                [r["cmds_per_s"] / t["cmds_per_s"] for r, t in zip(rounds, twin, strict=True)]
            )
            entry["cpu_us_added_resp"] = entry["cpu_us_per_command"] - twin_cpu
    return out


def _cpu_per(rounds: list[dict[str, Any]], unit: str) -> float:
    """CPU µs per request or per command, over all rounds (nan without any)."""
    count = sum(r[unit] for r in rounds)
    return sum(r["cpu_s"] for r in rounds) / count * 1e6 if count else float("nan")


def _cpu_us(rounds: list[dict[str, Any]]) -> float:
    """Median CPU µs per command over rounds."""
    return median([r["cpu_s"] / r["commands"] * 1e6 for r in rounds if r["commands"]] or [0.0])


def summarize_idle(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, rounds in runs.items():
        if rounds:
            per = [r["bytes_per_conn"] for r in rounds]
            out[name] = {
                "opened": min(r["opened"] for r in rounds),
                "count": rounds[0]["count"],
                "alive": min(r["alive"] for r in rounds),
                "rss_before": median([r["rss_before"] for r in rounds]),
                "rss_after": median([r["rss_after"] for r in rounds]),
                "bytes_per_conn": median(per),
                "bytes_per_conn_min": min(per),
                "bytes_per_conn_max": max(per),
                "open_s": median([r["open_s"] for r in rounds]),
                "probe_p50_ms": median([r["probe_p50_ms"] for r in rounds]),
                "probe_max_ms": max(r["probe_max_ms"] for r in rounds),
                "errors": sorted({r["error"] or r["probe_error"] for r in rounds} - {""}),
            }
    return out


@dataclass(frozen=True, slots=True)
class Goal:
    """One of the performance issue's targets, as measured. `floor`: when it is missed, the
    floor's number for the same load (what bare Python reaches there), else empty."""

    goal: str
    measured: str
    wanted: str
    met: bool
    floor: str = ""


def goals(report: dict[str, Any]) -> list[Goal]:
    """The performance issue's (19) targets, for the loads that ran."""
    loads: dict[str, Any] = report["loads"]
    rows: list[Goal] = []

    def ratio(load: str, base: str, wanted: float) -> None:
        summary: dict[str, Any] = loads.get(load, {}).get("summary", {})
        entry = summary.get("redisgate")
        if entry is None or f"x_{base}" not in entry:
            return
        value = entry[f"x_{base}"]
        met = value >= wanted
        floor = "" if met else _floor_number(summary, base)
        rows.append(Goal(f"{load}: gateway / {base}", f"{value:.2f}x", f">= {wanted}x", met, floor))

    for load in ("SET c50 P1", "GET c50 P1"):
        ratio(load, FLOOR, 0.9)
        ratio(load, "twemproxy", 1.0)
    for load in ("SET c500 P1", "GET c500 P1"):
        ratio(load, "redis", 1.0)
    for load in ("SET c50 P16", "GET c50 P16"):
        ratio(load, "twemproxy", 1.3)
    for load in ("GET 100KB c50", "LRANGE_100 c50"):
        ratio(load, "twemproxy", 0.9)
    idle = report.get("idle", {}).get("summary", {}).get("redisgate")
    if idle is not None:
        per_kb = idle["bytes_per_conn"] / 1024
        met = per_kb <= 6 and idle["opened"] == idle["count"]
        rows.append(
            Goal(
                f"{idle['opened']:,} idle clients: gateway RSS each",
                f"{per_kb:.2f} KiB",
                "<= 6 KiB",
                met,
                "" if met else "not measured (the floor has no AUTH: no idle load)",
            )
        )
    return rows


def _floor_number(summary: dict[str, Any], base: str) -> str:
    """The floor's result in a load where the gateway missed a target against `base`."""
    floor = summary.get(FLOOR)
    if floor is None:
        return "not run"
    numbers = f"floor {_rate(floor)}"
    if base == FLOOR:
        return f"{numbers} (gateway {_rate(summary['redisgate'])})"
    if f"x_{base}" in floor:
        return f"floor / {base} {floor[f'x_{base}']:.2f}x; {numbers}"
    return numbers


def _rate(entry: dict[str, Any]) -> str:
    return f"{entry['rps']:,.0f} req/s, {_num(entry['cpu_s_per_m'], '.1f')} CPU µs / cmd"


def _label(load: dict[str, Any], target: str) -> str:
    """A target's name in a load's rows, with the commands it could not run (mixed)."""
    skipped = load["runs"][target][0].get("skipped") if load["runs"][target] else None
    return target + (f" (without {', '.join(skipped)})" if skipped else "")


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None or value != value else format(value, fmt)


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"# RedisGate benchmark {report['started']}",
        "",
        f"{env['cpu']} ({env['cpus']} CPUs), load average {env['loadavg_start']} at the start "
        f"and {env['loadavg_end']} at the end; {env['redis']}; {env['nutcracker']}; "
        f"gateway {env['gateway_commit']}. {report['rounds']} interleaved round(s); "
        f"took {report['duration_s']:.0f} s.",
    ]
    resp_loads = {n: x for n, x in report["loads"].items() if x.get("kind") != "http"}
    http_loads = {n: x for n, x in report["loads"].items() if x.get("kind") == "http"}
    # The floor's column only when it ran (not with --no-floor).
    floor = any(FLOOR in x["summary"] for x in resp_loads.values())
    bases = ("redis", FLOOR, "twemproxy") if floor else ("redis", "twemproxy")
    if resp_loads:
        lines += [
            "",
            "| load | target | req/s (median) | min-max | p50 ms | p99 ms | "
            + " | ".join(f"vs {base}" for base in bases)
            + " | CPU s / M cmds |",
            "|---|---|---|---|---|---|" + "---|" * len(bases) + "---|",
        ]
    for name, load in resp_loads.items():
        for target, s in load["summary"].items():
            ratios = " | ".join(_num(s.get(f"x_{base}"), ".2f") for base in bases)
            lines.append(
                f"| {name} | {_label(load, target)} | {s['rps']:,.0f} "
                f"| {s['rps_min']:,.0f}-{s['rps_max']:,.0f} | {s['p50_ms']:.3f} "
                f"| {s['p99_ms']:.3f} | {ratios} | {_num(s['cpu_s_per_m'], '.2f')} |"
            )
    if floor:
        lines += [
            "",
            "redisgate against the floor (benchmarks/floor.py: one shared connection to Redis, "
            "no client AUTH, no policy; what Python does on this machine), in the same rounds: "
            "the cost of the gateway's design.",
            "",
            "| load | redisgate req/s | floor req/s | redisgate / floor (median) "
            "| redisgate CPU µs / cmd | floor CPU µs / cmd | CPU µs / cmd added |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, load in resp_loads.items():
            gw, fl = load["summary"].get("redisgate"), load["summary"].get(FLOOR)
            if gw is None or fl is None:
                continue
            added = None
            if gw["cpu_s_per_m"] is not None and fl["cpu_s_per_m"] is not None:
                added = gw["cpu_s_per_m"] - fl["cpu_s_per_m"]
            lines.append(
                f"| {name} | {gw['rps']:,.0f} | {fl['rps']:,.0f} "
                f"| {_num(gw.get('x_floor'), '.2f')} | {_num(gw['cpu_s_per_m'], '.2f')} "
                f"| {_num(fl['cpu_s_per_m'], '.2f')} | {_num(added, '+.2f')} |"
            )
    if http_loads:
        lines += [
            "",
            f"HTTP command API ({env.get('wrk', 'wrk')}, keep-alive, one thread), each round "
            "beside the same commands over RESP to the same gateway (redis-benchmark, same "
            "clients, pipelined as deep as the HTTP request holds commands; over RESP a request "
            "is one command):",
            "",
            "| load | target | requests/s (median) | min-max | commands/s | p50 ms | p99 ms "
            "| vs RESP (cmds/s) | CPU µs / request | CPU µs / command | vs RESP (CPU µs / cmd) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for name, load in http_loads.items():
        for target, s in load["summary"].items():
            lines.append(
                f"| {name} | {target} | {s['rps']:,.0f} | {s['rps_min']:,.0f}-{s['rps_max']:,.0f} "
                f"| {s['cmds_per_s']:,.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} "
                f"| {_num(s.get('x_resp'), '.2f')} | {_num(s['cpu_us_per_request'], '.1f')} "
                f"| {_num(s['cpu_us_per_command'], '.2f')} "
                f"| {_num(s.get('cpu_us_added_resp'), '+.2f')} |"
            )
    variants = sorted(
        {
            key[2:]
            for load in report["loads"].values()
            for key in load["summary"].get("redisgate", {})
            if key.startswith("x_redisgate-")
        }
    )
    for variant in variants:
        what = {
            "redisgate-bare": "the same gateway without limits, quotas, usage flushes and the "
            "metrics endpoint (the cost of the policy path)",
            "redisgate-baseline": "the baseline commit's gateway (--baseline)",
            "redisgate-workers": "the same gateway with --workers (CPU: all its processes)",
        }.get(variant, variant)
        lines += [
            "",
            f"redisgate against {variant}, {what}, in the same rounds:",
            "",
            "| load | req/s ratio (median) | CPU µs per command added |",
            "|---|---|---|",
        ]
        for name, load in report["loads"].items():
            s = load["summary"].get("redisgate", {})
            if f"x_{variant}" in s:
                lines.append(
                    f"| {name} | {s[f'x_{variant}']:.3f} "
                    f"| {_num(s.get(f'cpu_us_added_{variant}'), '+.2f')} |"
                )
    idle = report.get("idle")
    if idle:
        lines += [
            "",
            f"Idle connections ({idle['count']:,} authenticated, each target freshly started):",
            "",
            "| target | open / alive | RSS before MB | RSS after MB | KiB per conn (min-max) "
            "| open s | new client ms p50 (max) |",
            "|---|---|---|---|---|---|---|",
        ]
        for target, s in idle["summary"].items():
            lines.append(
                f"| {target} | {s['opened']:,} / {s['alive']:,} | {s['rss_before'] / 2**20:.1f} "
                f"| {s['rss_after'] / 2**20:.1f} | {s['bytes_per_conn'] / 1024:.2f} "
                f"({s['bytes_per_conn_min'] / 1024:.2f}-{s['bytes_per_conn_max'] / 1024:.2f}) "
                f"| {s['open_s']:.1f} | {s['probe_p50_ms']:.2f} ({s['probe_max_ms']:.2f}) |"
            )
    rows = goals(report)
    if rows:
        lines += ["", "Targets of the performance issue (19):", ""]
        if floor:
            lines += [
                "| goal | measured | wanted | met | the floor, where missed |",
                "|---|---|---|---|---|",
            ]
        else:
            lines += ["| goal | measured | wanted | met |", "|---|---|---|---|"]
        for row in rows:
            cells = [row.goal, row.measured, row.wanted, "yes" if row.met else "NO"]
            lines.append("| " + " | ".join([*cells, row.floor] if floor else cells) + " |")
    if report["notes"]:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in report["notes"]]
    lines += [
        "",
        "req/s and latency: medians over rounds (p50/p99 per run from redis-benchmark --csv, or "
        "from benchmarks/mixed.py); "
        + ", ".join(f"vs {base}" for base in bases)
        + ": median of the per-round ratios; CPU: user+system seconds of the target's own "
        "process per million commands (µs per command).",
    ]
    return "\n".join(lines) + "\n"
