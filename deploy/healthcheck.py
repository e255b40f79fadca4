"""The image's HEALTHCHECK: ask the planes this container's `redisgate` runs whether they answer.

PID 1 is `redisgate COMMAND …`: `proxy` is checked at the gateway's /healthz (on the metrics
port, served once the RESP listeners are up), `control` at the control API's /healthz, `serve`
at both; other commands (`migrate`, `admin`, …) are one-shot and always healthy. Ports come from
the same REDISGATE_* variables the process reads (the image sets them); exit 0 healthy, 1 not.
Standard library only: it runs with Debian's python3, outside RedisGate's venv.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

TIMEOUT_S = 2.0


def command_of_pid1() -> str:
    args = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    names = [os.path.basename(a.decode(errors="replace")) for a in args if a]
    for i, name in enumerate(names):
        if name == "redisgate" and i + 1 < len(names):
            return names[i + 1]
    return ""


def answers(port_variable: str, default_port: str) -> bool:
    url = f"http://127.0.0.1:{os.environ.get(port_variable, default_port)}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return bool(response.status == 200)
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return False


def main() -> int:
    command = command_of_pid1()
    checks = []
    if command in ("proxy", "serve") and os.environ.get(
        "REDISGATE_METRICS_ENABLED", "true"
    ).lower() in (
        "true",
        "1",
        "yes",
        "on",
    ):
        checks.append(("REDISGATE_METRICS_PORT", "9121"))
    if command in ("control", "serve"):
        checks.append(("REDISGATE_CONTROL_PORT", "8080"))
    return 0 if all(answers(variable, port) for variable, port in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
