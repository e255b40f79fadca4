"""The checks of `make deploy-test` (scripts/deploy-test.sh), against the running Compose stack.

1. The control API in its container answers /readyz; a platform admin is created in the
   control container (`redisgate admin create-user`), registers the backing Redis through the
   API; a user registers, creates an instance and a key, all through the API.
2. `redis-cli` with the key's URL works through each gateway replica.
3. Prometheus scrapes both gateways and the control API and has loaded the alerting rules.
4. Under load on both replicas, gateway-1 is stopped with SIGTERM (`docker-compose stop`):
   every INCR a client saw acknowledged is in Redis (no acknowledged command lost, none
   applied twice), gateway-1 exits 0 after draining, and gateway-2 kept serving throughout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

LOAD_THREADS_PER_GATEWAY = 4


def step(message: str) -> None:
    print(f"--> {message}", file=sys.stderr, flush=True)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"deploy-test: still waiting for {what} after {timeout_s:g}s")
        time.sleep(0.5)


@dataclass
class Stack:
    project: str
    compose_file: str
    env_file: str
    env: dict[str, str]

    def compose(self, *args: str, stdin: str | None = None) -> str:
        command = ["docker-compose", "-p", self.project, "-f", self.compose_file]
        command += ["--env-file", self.env_file, *args]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"deploy-test: {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).strip()

    def port(self, name: str) -> int:
        return int(self.env[name])


def http(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"deploy-test: {method} {url}: {exc.code} {exc.read().decode()}") from None
    return json.loads(text) if text else None


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


# --- 1. Accounts, instance and key through the control API --------------------------------


def provision(stack: Stack) -> str:
    api = f"http://127.0.0.1:{stack.port('CONTROL_PORT')}"
    step(f"control API {api}: waiting for /readyz")
    wait_for(lambda: answers(f"{api}/readyz"), "the control API to be ready", 120)

    admin_password = "deploy test admin password 1"
    step("platform admin via `redisgate admin create-user` in the control container")
    stack.compose(
        "exec", "-T", "control", "redisgate", "admin", "create-user",
        "--email", "admin@deploytest.example", "--admin", "--password-stdin",
        stdin=admin_password + "\n",
    )  # fmt: skip
    admin = http(
        "POST",
        f"{api}/v1/auth/login",
        {"email": "admin@deploytest.example", "password": admin_password},
    )["access_token"]
    http(
        "POST",
        f"{api}/v1/admin/servers",
        {
            "name": "backend-redis",
            "host": "backend-redis",
            "port": 6379,
            "password": stack.env["BACKEND_REDIS_PASSWORD"],
            "databases": 256,
        },
        admin,
    )

    step("a user registers, creates an instance and a key")
    user = http(
        "POST",
        f"{api}/v1/auth/register",
        {"email": "ada@deploytest.example", "password": "correct horse battery", "name": "Ada"},
    )
    token = user["access_token"]
    org = http("GET", f"{api}/v1/orgs", token=token)["items"][0]["id"]
    instance = http(
        "POST", f"{api}/v1/orgs/{org}/instances", {"name": "cache", "memory_mb": 64}, token
    )["id"]
    key = http(
        "POST", f"{api}/v1/orgs/{org}/instances/{instance}/keys", {"name": "deploy-test"}, token
    )
    url: str = key["url"]
    step(f"key url {url.split('@')[0][:30]}…@{url.split('@')[1]}")
    return url


# --- 2. redis-cli through each replica -----------------------------------------------------


def redis_cli(url: str, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-u", url, *args], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"deploy-test: redis-cli {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


def with_port(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{port}").geturl()


def through_each_gateway(stack: Stack, url: str) -> None:
    for n, name in enumerate(("GATEWAY_1_PORT", "GATEWAY_2_PORT"), 1):
        gateway_url = with_port(url, stack.port(name))
        wait_for(lambda u=gateway_url: _pong(u), f"gateway-{n} to answer PING", 60)
        assert redis_cli(gateway_url, "SET", f"deploy:gw{n}", f"hello {n}") == "OK"
        for m in (1, 2):  # each replica sees what the other wrote: one instance behind both
            got = redis_cli(gateway_url, "GET", f"deploy:gw{m}")
            if n >= m and got != f"hello {m}":
                raise SystemExit(f"deploy-test: gateway-{n} GET deploy:gw{m} -> {got!r}")
        step(f"redis-cli through gateway-{n} (port {stack.port(name)}): SET/GET ok")
    # The HTTP command API of each replica, with the same key (docs/http.md).
    token = urllib.parse.unquote(urllib.parse.urlsplit(url).password or "")
    for n in (1, 2):
        rest = f"http://127.0.0.1:{stack.port(f'GATEWAY_{n}_HTTP_PORT')}"
        answer = http("POST", rest, ["GET", "deploy:gw1"], token)
        if answer != {"result": "hello 1"}:
            raise SystemExit(f"deploy-test: gateway-{n}'s HTTP API answered {answer!r}")
        step(f"HTTP command API through gateway-{n} ({rest}): GET ok")


def _pong(url: str) -> bool:
    done = subprocess.run(["redis-cli", "-u", url, "PING"], capture_output=True, text=True)
    return done.stdout.strip() == "PONG"


# --- 3. Prometheus -------------------------------------------------------------------------


def prometheus(stack: Stack) -> None:
    base = f"http://127.0.0.1:{stack.port('PROMETHEUS_PORT')}"

    def query(expr: str) -> list[dict[str, Any]]:
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        result: list[dict[str, Any]] = http("GET", url)["data"]["result"]
        return result

    def targets_up() -> bool:
        try:
            found = {(r["metric"]["job"], r["metric"]["instance"]) for r in query("up == 1")}
        except SystemExit:
            return False
        return found >= {
            ("redisgate-gateway", "gateway-1:9121"),
            ("redisgate-gateway", "gateway-2:9121"),
            ("redisgate-control", "control:8080"),
        }

    step(f"Prometheus {base}: waiting for both gateways and the control API to be up")
    wait_for(lambda: answers(f"{base}/-/ready"), "Prometheus to be ready", 60)
    wait_for(targets_up, "every target up in Prometheus", 90)

    def counted() -> bool:
        per_gateway = query('sum by (instance) (redisgate_commands_total{outcome="ok"})')
        return len(per_gateway) == 2 and all(float(r["value"][1]) > 0 for r in per_gateway)

    wait_for(counted, "both gateways' commands in Prometheus", 60)
    rules = http("GET", f"{base}/api/v1/rules")["data"]["groups"]
    names = {rule["name"] for group in rules for rule in group["rules"]}
    if "RedisGateGatewayDown" not in names or len(names) < 10:
        raise SystemExit(f"deploy-test: Prometheus loaded these rules only: {sorted(names)}")
    step(f"Prometheus: 3 targets up, commands counted per gateway, {len(names)} alert rules")


# --- 4. SIGTERM under load -----------------------------------------------------------------


@dataclass
class Worker:
    """INCRs one counter of its own until told to stop or its gateway goes away."""

    url: str
    key: str
    acked: int = 0
    acked_after_stop: int = 0
    error: str | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    gateway_stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), socket_timeout=10)
        try:
            while not self.stopping.is_set():
                value = client.incr(self.key)
                if value != self.acked + 1:
                    self.error = f"INCR {self.key} -> {value} after {self.acked} acknowledged"
                    return
                self.acked += 1
                if self.gateway_stopped.is_set():
                    self.acked_after_stop += 1
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            client.close()


def sigterm_under_load(stack: Stack, url: str) -> None:
    direct_check = with_port(url, stack.port("GATEWAY_2_PORT"))
    workers = {
        n: [
            Worker(with_port(url, stack.port(f"GATEWAY_{n}_PORT")), f"deploy:load:gw{n}:{i}")
            for i in range(LOAD_THREADS_PER_GATEWAY)
        ]
        for n in (1, 2)
    }
    threads = [threading.Thread(target=w.run) for ws in workers.values() for w in ws]
    for thread in threads:
        thread.start()
    time.sleep(3)
    before = sum(w.acked for ws in workers.values() for w in ws)
    step(f"load on both replicas ({before} INCRs acknowledged); SIGTERM to gateway-1")
    for ws in workers.values():
        for w in ws:
            w.gateway_stopped.set()
    gateway_1 = stack.container("gateway-1")
    started = time.monotonic()
    stack.compose("stop", "gateway-1")  # stop_signal SIGTERM, SIGKILL after stop_grace_period
    stop_s = time.monotonic() - started
    time.sleep(2)  # gateway-2 keeps going after gateway-1 is gone
    for ws in workers.values():
        for w in ws:
            w.stopping.set()
    for thread in threads:
        thread.join(30)

    state = json.loads(
        subprocess.run(
            ["docker", "inspect", "-f", "{{json .State}}", gateway_1],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    if state["ExitCode"] != 0 or state.get("OOMKilled"):
        raise SystemExit(f"deploy-test: gateway-1 did not drain cleanly: {state}")
    for w in workers[1]:
        if w.error is None or "INCR" in w.error:
            raise SystemExit(f"deploy-test: a client of gateway-1 saw {w.error!r}, not a close")
    for w in workers[2]:
        if w.error is not None:
            raise SystemExit(f"deploy-test: gateway-2 failed a client during the stop: {w.error}")
        if w.acked_after_stop == 0:
            raise SystemExit("deploy-test: gateway-2 served nothing while gateway-1 stopped")
    client = redis.Redis.from_url(direct_check)
    lost = []
    for w in workers[1] + workers[2]:
        stored = int(client.get(w.key) or 0)
        # Acknowledged INCRs are all there; at most the one a closed connection cut off (sent,
        # applied, its reply lost) is extra.
        if not w.acked <= stored <= w.acked + 1:
            lost.append((w.key, w.acked, stored))
    client.close()
    if lost:
        raise SystemExit(f"deploy-test: acknowledged INCRs lost (key, acked, stored): {lost}")
    acked_1 = sum(w.acked for w in workers[1])
    acked_2 = sum(w.acked for w in workers[2])
    after = sum(w.acked_after_stop for w in workers[2])
    step(
        f"gateway-1 drained and exited 0 in {stop_s:.1f}s; acknowledged INCRs: {acked_1} via "
        f"gateway-1, {acked_2} via gateway-2 ({after} after the SIGTERM): all stored"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", required=True)
    parser.add_argument("--compose-file", required=True)
    parser.add_argument("--env-file", required=True)
    parser.add_argument("--image-size", type=int, default=0)
    args = parser.parse_args()
    env = {}
    with open(args.env_file) as f:
        for line in f:
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith("#"):
                env[name] = value
    stack = Stack(args.project, args.compose_file, args.env_file, env)
    url = provision(stack)
    through_each_gateway(stack, url)
    prometheus(stack)
    sigterm_under_load(stack, url)
    if args.image_size:
        step(f"image redisgate:0.1.0: {args.image_size / 1e6:.0f} MB")
    step("deploy-test checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
