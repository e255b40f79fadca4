"""A child process we own: started, waited for, stopped, and never left behind.

The dev stack and the test fixtures start real servers through this one class, so the code
that users run is the code the tests exercise. Three things keep children from outliving us:

- each child runs in its own session (a terminal's Ctrl-C reaches only us; we stop the
  children in order instead of racing them);
- on Linux each child gets a parent-death signal, so even if we are SIGKILLed the kernel
  stops it (the signal is tied to the thread that forks: start children from the main thread,
  or from an event loop's thread that runs until they are stopped, never from a worker thread
  such as `asyncio.to_thread`'s, which may end first); a child whose parent died before the
  signal was set exits before it runs;
- `stop()` is idempotent and escalates to SIGKILL after a timeout.

The one deliberate exception: a local instance's redis-server outlives a restarting control
plane when the instances are meant to keep serving (`instances_stop_on_exit` off), so the
provisioner then starts it with `die_with_parent=False` and, when it lets go, `detach()`es
it; whoever adopts it later tracks it by pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from redisgate.errors import ServiceError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (it may be taken before we bind: retry then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _death_signal(sig: int) -> Callable[[], None] | None:
    """A preexec function asking the kernel to send `sig` to the child when we die."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no libc to talk to
        return None
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # we died between fork and prctl: nobody will signal it
            os._exit(1)

    return preexec


class ManagedProcess:
    """One child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        stop_signal: int = signal.SIGTERM,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        user: int | None = None,
        group: int | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.cwd = cwd
        self.env = env
        self.user = user
        self.group = group
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "not started"
        if self.proc is not None:
            code = self.proc.poll()
            state = f"pid {self.proc.pid}" if code is None else f"exited {code}"
        return f"<ManagedProcess {self.name} [{state}]>"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        """Spawn the child; its stdout and stderr go to the log file (appended)."""
        if self.proc is not None:
            raise ServiceError(f"{self.name} was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    env=self.env,
                    user=self.user,
                    group=self.group,
                    start_new_session=True,
                    preexec_fn=_death_signal(self.stop_signal) if self.die_with_parent else None,
                )
            except FileNotFoundError:
                raise ServiceError(f"{self.name}: executable not found: {self.argv[0]}") from None
            except PermissionError as exc:
                raise ServiceError(f"{self.name}: cannot execute {self.argv[0]}: {exc}") from None
        log.debug("started %s: pid %s: %s", self.name, self.proc.pid, " ".join(self.argv))

    def detach(self) -> int | None:
        """Let go of a running child: it keeps running, and we neither stop nor reap it.

        Returns its pid. Popen warns about a child it forgets while it runs and queues it to
        be reaped behind the back of whoever adopts it, so it is marked done first.
        """
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.returncode = 0
        return proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the child's output, to quote in error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"

    def wait_ready(self, probe: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll `probe` until it returns True; fail with the log if the child dies or stalls."""
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while True:
            if not self.running():
                code = None if self.proc is None else self.proc.returncode
                raise ServiceError(
                    f"{self.name} exited (code {code}) before it was {what}; "
                    f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            if probe():
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise ServiceError(
                    f"{self.name} was not {what} after {timeout_s:g}s; "
                    f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Stop the child (stop signal, then SIGKILL after `timeout_s`); return its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %ss: killing it", self.name, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        # The child led its own session: reap anything it left in that process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode
