"""One local redis-server, watched through a Linux pidfd whether we started it or adopted it.

A pidfd names one process, not a number that may be reused, and it becomes readable when that
process exits, so the event loop learns of a death at once (no polling) and signals sent
through it cannot hit a stranger. That works for a process we did not start, which is what
re-adoption after a control-plane restart needs.

Exit codes are only known for our own children (reaped through Popen, or `waitid` on the
pidfd); a server adopted from an earlier control plane is reaped by its real parent.

The small admin client speaks just enough RESP for AUTH, INFO and CONFIG SET, so the
provisioner needs no connection pool and has no retry logic of its own between it and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import select
import signal
from collections.abc import Sequence
from pathlib import Path

import hiredis

from redisgate.errors import ProvisionError, ServiceError
from redisgate.launcher.process import ManagedProcess
from redisgate.provision.redisconf import LOG_FILE

log = logging.getLogger(__name__)

_PROCESS_ID = re.compile(rb"^process_id:(\d+)\r?$", re.M)


def _encode(args: Sequence[str]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def admin_command(
    host: str, port: int, password: str, *commands: Sequence[str], timeout_s: float = 2.0
) -> list[object]:
    """AUTH, then `commands`; their replies (a `hiredis.ReplyError` for an error reply).

    Raises OSError or TimeoutError when the server cannot be reached, ProvisionError when it
    refuses the password (then it is not the server we are looking for).
    """
    replies: list[object] = []
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(_encode(["AUTH", password]) + b"".join(map(_encode, commands)))
            parser = hiredis.Reader()
            while len(replies) <= len(commands):
                data = await reader.read(65536)
                if not data:
                    raise ConnectionResetError(f"{host}:{port} closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    replies.append(reply)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    if isinstance(replies[0], hiredis.ReplyError):
        raise ProvisionError(f"the Redis on {host}:{port} refused our password: {replies[0]}")
    return replies[1:]


async def server_pid(host: str, port: int, password: str) -> int | None:
    """The pid of the Redis answering on host:port to `password`; None if none answers yet."""
    try:
        (info,) = await admin_command(host, port, password, ["INFO", "server"])
    except (OSError, TimeoutError, ProvisionError):
        return None
    if not isinstance(info, bytes):  # -LOADING while it reads its data, for one
        return None
    match = _PROCESS_ID.search(info)
    return int(match.group(1)) if match else None


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except OSError as exc:  # ENOSYS on kernels before 5.3, EPERM under old seccomp profiles
        raise ProvisionError(
            f"cannot watch process {pid} ({exc}): the local provisioner needs Linux 5.3+ "
            "with pidfd_open allowed"
        ) from None


def _has_exited(pidfd: int) -> bool:
    readable, _, _ = select.select([pidfd], [], [], 0)
    return bool(readable)


class RedisProcess:
    """A redis-server process: started by us (`spawn`) or found running (`attach`).

    `exited` resolves with the exit code (negative: killed by that signal; None: not our
    child, so unknown) as soon as the process is gone.
    """

    def __init__(self, pid: int, pidfd: int, managed: ManagedProcess | None) -> None:
        self.pid = pid
        self._pidfd: int | None = pidfd
        self._managed = managed
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int | None] = self._loop.create_future()
        self._loop.add_reader(pidfd, self._on_exit)

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.exited.result()}"
        origin = "child" if self._managed is not None else "adopted"
        return f"<RedisProcess pid {self.pid} {origin} {state}>"

    @classmethod
    def spawn(
        cls, binary: Path, config: Path, folder: Path, *, die_with_parent: bool
    ) -> RedisProcess:
        """Start redis-server on `config`, in its own session: free to outlive us, or sent
        SIGTERM by the kernel when we die (`die_with_parent`; call this from the thread that
        runs the event loop, which lives as long as the server is ours)."""
        managed = ManagedProcess(
            "redis-server",
            [str(binary), str(config)],
            folder / LOG_FILE,
            cwd=folder,
            die_with_parent=die_with_parent,
        )
        try:
            managed.start()
        except ServiceError as exc:
            raise ProvisionError(str(exc)) from None
        except OSError as exc:  # out of processes, file descriptors, memory…
            raise ProvisionError(f"cannot start redis-server: {exc}") from None
        assert managed.pid is not None
        try:
            pidfd = _pidfd_open(managed.pid)
        except ProvisionError:
            managed.stop()
            raise
        if pidfd is None:  # it died already; a pidfd of a zombie child still works, so rare
            code = managed.stop()
            raise ProvisionError(f"redis-server exited at once (code {code})")
        return cls(managed.pid, pidfd, managed)

    @classmethod
    def attach(cls, pid: int) -> RedisProcess | None:
        """Watch a running process by pid; None if it is gone (a dead child is reaped)."""
        pidfd = _pidfd_open(pid)
        if pidfd is None:
            return None
        if _has_exited(pidfd):
            with contextlib.suppress(ChildProcessError):  # ours: do not leave a zombie
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
            os.close(pidfd)
            return None
        return cls(pid, pidfd, None)

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def mentions(self, config: Path) -> bool:
        """True if this process shows `config` in its title (our proc-title-template)."""
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        # The pidfd still open and unreadable means the pid was not reused meanwhile.
        alive = self._pidfd is not None and not _has_exited(self._pidfd)
        return alive and str(config).encode() in cmdline.replace(b"\0", b" ")

    async def wait_ready(self, host: str, port: int, password: str) -> bool:
        """Wait until this process answers on host:port (True) or exits (False).

        The answer must come from this very process (INFO's process_id), not from some other
        server that happens to hold the port. The caller bounds the wait with a timeout.
        """
        delay = 0.005
        while self.running:
            # A probe can hang on a port some other listener holds: the exit decides first.
            probe = asyncio.ensure_future(server_pid(host, port, password))
            try:
                await asyncio.wait([probe, self.exited], return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not probe.done():
                    probe.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await probe
            if not probe.cancelled() and probe.result() == self.pid:
                return True
            await asyncio.wait([self.exited], timeout=delay)
            delay = min(delay * 2, 0.2)
        return False

    def send_signal(self, sig: int) -> None:
        if self._pidfd is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    async def stop(self, timeout_s: float) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; the exit code (see `exited`)."""
        try:
            if self.running:
                self.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(self.exited), timeout_s)
                except TimeoutError:
                    log.warning("redis-server pid %s ignored SIGTERM: killing it", self.pid)
                    self.send_signal(signal.SIGKILL)
                    await asyncio.shield(self.exited)
        except asyncio.CancelledError:
            self.kill_now()
            raise
        self.close()
        return self.exited.result()

    def kill_now(self) -> None:
        """SIGKILL and wait for the death right here (for cancellation paths: no awaiting)."""
        if self.running and self._pidfd is not None:
            self.send_signal(signal.SIGKILL)
            select.select([self._pidfd], [], [], 5.0)
            self._on_exit()
        self.close()

    def release(self) -> None:
        """Stop watching and leave the process running, for a later `attach`."""
        if self._managed is not None:
            self._managed.detach()
            self._managed = None
        self.close()

    def close(self) -> None:
        """Stop watching (the pidfd is closed); the process itself is not touched."""
        if self._pidfd is None:
            return
        if not self.exited.done():
            self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None

    # --- Internals ---------------------------------------------------------------------------

    def _on_exit(self) -> None:
        if self._pidfd is None or self.exited.done():
            return
        self._loop.remove_reader(self._pidfd)
        code: int | None = None
        if self._managed is not None and self._managed.proc is not None:
            # Our child: its session's leftovers (a BGSAVE fork) go with it. The pid cannot be
            # reused before we reap it, so the group id is still its own.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            code = self._managed.proc.poll()
        else:
            try:
                info = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG)
            except ChildProcessError:
                info = None
            if info is not None:
                exited = info.si_code == os.CLD_EXITED
                code = info.si_status if exited else -info.si_status
        self.exited.set_result(code)


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` and wait for it, without swallowing a cancellation of our own."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
