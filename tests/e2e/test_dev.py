"""`redisgate dev` as a user runs it: a subprocess that prints its lines and stops clean."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

LINES = [
    re.compile(r"^REDISGATE_URL=redis://default:[A-Za-z0-9_-]+@127\.0\.0\.1:\d+/0$"),
    re.compile(r"^REDISGATE_CONTROL_URL=http://127\.0\.0\.1:\d+$"),
    re.compile(r"^REDISGATE_DEMO_LOGIN=demo@redisgate\.dev:[A-Za-z0-9_-]+$"),
    re.compile(r"^redis-cli -u redis://default:[A-Za-z0-9_-]+@127\.0\.0\.1:\d+/0$"),
    re.compile(r"^REDISGATE_REST_URL=http://127\.0\.0\.1:\d+$"),
    re.compile(r"^REDISGATE_REST_TOKEN=rg_[A-Za-z0-9_-]+$"),
    re.compile(r"^REDISGATE_METRICS_URL=http://127\.0\.0\.1:\d+/metrics$"),
    re.compile(r"^REDISGATE_DATABASE_URL=postgresql://\w+:[^@\s]+@127\.0\.0\.1:\d+/redisgate$"),
]
LINE_COUNT = len(LINES)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if text in cmdline and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


class Dev:
    """One `redisgate dev` subprocess with its data folder; stdout read line by line."""

    def __init__(self, data_dir: Path, *extra: str, free_ports: bool = False) -> None:
        """`free_ports`: `--free-ports` instead of `--port 0 --control-port 0
        --metrics-port 0`."""
        self.data_dir = data_dir
        ports = (
            ["--free-ports"]
            if free_ports
            else ["--port", "0", "--control-port", "0", "--metrics-port", "0", "--http-port", "0"]
        )
        self.stderr_path = data_dir.parent / f"dev-stderr-{time.monotonic_ns()}.log"
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "redisgate",
                    "dev",
                    "--data-dir",
                    str(data_dir),
                    *ports,
                    *extra,
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.stdout: queue.Queue[str | None] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.stdout.put(line.rstrip("\n"))
        self.stdout.put(None)

    def read_lines(self, count: int = LINE_COUNT, timeout_s: float = 60) -> list[str]:
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        while len(lines) < count:
            try:
                line = self.stdout.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            lines.append(line)
        return lines

    def postmaster_pid(self) -> int:
        pidfile = self.data_dir / "postgres" / "data" / "postmaster.pid"
        return int(pidfile.read_text().splitlines()[0])

    def wait(self, timeout_s: float = 60) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout_s)
        self.pump.join(timeout_s)
        return code, self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()


@pytest.fixture
def dev_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("dev") / "data"
    yield data_dir
    for pid in processes_mentioning(str(data_dir)):  # never leave a stray server behind
        os.kill(pid, signal.SIGKILL)


def redis_cli(printed: str, *command: str) -> str:
    argv = [*shlex.split(printed), "--no-auth-warning", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: dict[str, object] = json.load(response)
        return body


def call_json(
    url: str, body: dict[str, object] | list[str] | None = None, token: str | None = None
) -> dict[str, object]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.load(response)
        return result


@pytest.mark.slow
def test_dev_prints_working_lines_and_stops_clean_on_sigterm(dev_dir: Path) -> None:
    dev = Dev(dev_dir)
    try:
        lines = dev.read_lines()
        assert len(lines) == LINE_COUNT, f"got {lines}"
        for line, pattern in zip(lines, LINES, strict=True):
            assert pattern.match(line), line
        assert redis_cli(lines[3], "PING") == "PONG"
        assert redis_cli(lines[3], "SET", "kept", "across-restarts") == "OK"
        control = lines[1].split("=", 1)[1]
        ready = get_json(control + "/readyz")
        assert ready["status"] == "ready"
        rest_url, rest_token = (line.split("=", 1)[1] for line in lines[4:6])
        assert call_json(rest_url, ["GET", "kept"], token=rest_token) == {
            "result": "across-restarts"
        }
        with urllib.request.urlopen(lines[6].split("=", 1)[1], timeout=10) as response:
            scraped = response.read().decode()
        assert 'redisgate_commands_total{command="ping",outcome="ok"}' in scraped
        account = {"email": "dev@example.com", "password": "a long dev passphrase"}
        registered = call_json(control + "/v1/auth/register", account)
        token = str(registered["access_token"])
        assert call_json(control + "/v1/me", token=token)["orgs"] == [registered["org"]]
        assert (dev_dir / "jwt-secret").stat().st_mode & 0o777 == 0o600
        postmaster = dev.postmaster_pid()
        code, err = dev.stop(signal.SIGTERM)
    finally:
        dev.kill()
    assert code == 0, err
    assert processes_mentioning(str(dev_dir)) == []
    assert not Path(f"/proc/{postmaster}").exists()

    # Re-running reuses the data folder: same cluster, same database, same Redis data.
    again = Dev(dev_dir)
    try:
        lines = again.read_lines()
        assert len(lines) == LINE_COUNT, f"got {lines}"
        assert redis_cli(lines[3], "GET", "kept") == "across-restarts"
        control = lines[1].split("=", 1)[1]
        assert get_json(control + "/readyz")["installation_id"] == ready["installation_id"]
        # The signing key and the account survived the restart.
        assert call_json(control + "/v1/me", token=token)["user"] == registered["user"]
        assert "access_token" in call_json(control + "/v1/auth/login", account)
        code, err = again.stop(signal.SIGINT)  # Ctrl-C
    finally:
        again.kill()
    assert code == 0, err
    assert processes_mentioning(str(dev_dir)) == []


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (PostgreSQL's backends and helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, …
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """True if `pid` runs; a zombie (killed, waiting for its new parent to reap it) does not."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.mark.slow
def test_sigkilled_dev_leaves_no_instance_server_and_no_postgres(dev_dir: Path) -> None:
    dev = Dev(dev_dir)
    left: list[int] = []
    try:
        lines = dev.read_lines()
        assert len(lines) == LINE_COUNT, (
            f"got {lines}; stderr: {dev.stderr_path.read_text()[-3000:]}"
        )
        assert redis_cli(lines[3], "PING") == "PONG"  # the demo instance serves
        instance_servers = processes_mentioning(str(dev_dir / "instances"))
        assert len(instance_servers) == 1, instance_servers
        postmaster = dev.postmaster_pid()
        started = [*instance_servers, postmaster, *children_of(postmaster)]
        dev.proc.kill()  # SIGKILL: no signal handler, no clean-up of any kind
        dev.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = [pid for pid in started if running(pid)]
            left += [p for p in processes_mentioning(str(dev_dir)) if p not in left]
            if not left:
                break
            time.sleep(0.1)
    finally:
        dev.kill()
        for pid in left:  # never leak what the assertion below reports
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert left == [], f"outlived a SIGKILLed redisgate dev: {left}"


@pytest.mark.slow
def test_dev_stops_what_it_started_when_a_later_child_fails(dev_dir: Path) -> None:
    dev = Dev(dev_dir, "--redis-server-bin", "/nonexistent/redis-server")
    try:
        code, err = dev.wait()
    finally:
        dev.kill()
    assert code == 1
    assert "redis-server not found" in err and "redis_server_bin" in err
    assert processes_mentioning(str(dev_dir)) == []


def test_dev_rejects_bad_settings_before_starting_anything(dev_dir: Path) -> None:
    dev = Dev(dev_dir, "--control-port", "99999")
    code, err = dev.wait()
    assert code == 2
    assert "control_port = 99999 (from flag --control-port)" in err
    assert not dev_dir.exists()


def test_dev_with_a_busy_port_says_so_and_leaves_nothing(dev_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        dev = Dev(dev_dir, "--port", str(port))  # the later --port wins over Dev's --port 0
        code, err = dev.wait()
    assert code == 1
    assert f"the gateway cannot listen on 127.0.0.1:{port} (proxy_port, flag --port)" in err
    assert "Traceback" not in err
    assert processes_mentioning(str(dev_dir)) == []


@pytest.mark.slow
def test_free_ports_when_the_default_ports_are_taken_and_the_database_url_works(
    dev_dir: Path,
) -> None:
    """`--free-ports` with 9121 (metrics), 6380 (gateway), 7379 (HTTP) and 8080 (control)
    busy: every URL printed works, and the printed database URL makes a platform admin from a
    script."""
    held: list[socket.socket] = []
    try:
        for port in (9121, 6380, 8080, 7379):
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
                sock.listen()
            except OSError:  # taken already by something else: busy all the same
                sock.close()
                continue
            held.append(sock)
        dev = Dev(dev_dir, free_ports=True)
        try:
            lines = dev.read_lines()
            assert len(lines) == LINE_COUNT, f"got {lines}; {dev.stderr_path.read_text()[-3000:]}"
            for line, pattern in zip(lines, LINES, strict=True):
                assert pattern.match(line), line
            urls = [line.split("=", 1)[1] for line in lines if "=" in line.split()[0]]
            ports = {int(re.findall(r":(\d+)(?:/|$)", url)[-1]) for url in urls if "//" in url}
            assert not ports & {9121, 6380, 8080, 7379}, lines
            assert redis_cli(lines[3], "PING") == "PONG"
            control = lines[1].split("=", 1)[1]
            assert get_json(control + "/readyz")["status"] == "ready"
            with urllib.request.urlopen(lines[6].split("=", 1)[1], timeout=10) as response:
                assert b"redisgate_" in response.read()
            database_url = lines[7].split("=", 1)[1]
            env = {**os.environ, "REDISGATE_DATABASE_URL": database_url}
            env.pop("REDISGATE_ADMIN_PASSWORD", None)
            made = subprocess.run(
                [
                    *(sys.executable, "-m", "redisgate", "admin", "create-user"),
                    *("--email", "root@example.com", "--admin", "--password-stdin"),
                ],
                input="a long admin passphrase\n",
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            assert made.returncode == 0, made.stderr
            login = {"email": "root@example.com", "password": "a long admin passphrase"}
            token = str(call_json(control + "/v1/auth/login", login)["access_token"])
            me = call_json(control + "/v1/me", token=token)
            assert me["user"]["is_platform_admin"] is True  # type: ignore[index]
            code, err = dev.stop(signal.SIGTERM)
        finally:
            dev.kill()
    finally:
        for sock in held:
            sock.close()
    assert code == 0, err
    assert processes_mentioning(str(dev_dir)) == []
