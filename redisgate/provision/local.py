"""The local provisioner: one supervised redis-server per instance on this machine.

Theory of operation
-------------------
Each instance has a folder `base_dir/<instance_id>/` (see `redisconf`) and a redis-server
with its own port and random password, bound to loopback, in its own session. Whether the
servers share the control plane's life is the caller's choice, made once:

- `die_with_parent=False` (a production control plane): they run without a parent-death
  signal, so a control plane that restarts (or crashes, or is SIGKILLed) leaves them serving,
  and the next one takes them back with `adopt`. Only `close(stop_servers=True)` and
  `deprovision` stop them.
- `die_with_parent=True` (`redisgate dev`, tests, `instances_stop_on_exit`): each server we
  start carries a parent-death signal (SIGTERM: Redis saves its data and exits), so even a
  SIGKILLed control plane leaves no server behind. The signal is tied to the thread that
  forks, so servers are started on the event loop's thread (never in `to_thread`). A server
  adopted from an earlier run that left it serving is not our child and cannot get the
  signal: it stops at `close(stop_servers=True)` or with its next restart, which ties it.

Supervision is one asyncio task per instance. It waits on the server's pidfd; when the
server dies it reports FAILED with the exit status and the log lines that explain it, waits
(0.1 s doubling to 5 s, back to 0.1 s once a server has stayed up `stable_after_s`) and starts
it again on the same port with the same password, so stored endpoints stay valid.

Adoption trusts nothing on disk alone: a server is taken back only if the pid in its state
file is alive, and the Redis answering on the stored port to the stored password reports that
same pid (or the process's title names this instance's redis.conf and it answers within the
start timeout). Anything else is started again; a stale server of ours is stopped first, so
there is never a duplicate.

A lock file in `base_dir` keeps two live provisioners from supervising the same servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import hiredis

from redisgate.backends import Backend
from redisgate.errors import InvalidSpec, ProvisionError, ServiceError
from redisgate.launcher.binaries import find_redis_server
from redisgate.provision.base import (
    InstanceSpec,
    Provisioner,
    State,
    Status,
    StatusCallback,
    check_instance_id,
)
from redisgate.provision.localredis import RedisProcess, admin_command, cancel_and_wait, server_pid
from redisgate.provision.ports import pick_port
from redisgate.provision.redisconf import (
    CONFIG_FILE,
    InstanceState,
    describe_exit,
    forget_saved_data,
    live_settings,
    log_since,
    read_state,
    reason_from_log,
    remove_folder,
    render_config,
    start_log,
    write_private,
    write_state,
)

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
_BIND_RETRIES = 3


@dataclass(eq=False)
class _Instance:
    """What the provisioner knows of one instance; `spec` and `process` change under `lock`."""

    spec: InstanceSpec
    folder: Path
    port: int
    password: str
    status: Status | None = None  # None until first reported
    process: RedisProcess | None = None
    log_offset: int = 0  # where the log of the current run starts
    supervisor: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG_FILE


class LocalProvisioner:
    """Runs and supervises one redis-server per instance under `base_dir` (see module doc)."""

    def __init__(
        self,
        base_dir: Path,
        *,
        redis_server_bin: str = "redis-server",
        host: str = "127.0.0.1",
        port_range: tuple[int, int] | None = None,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
        restart_backoff_s: tuple[float, float] = (0.1, 5.0),
        stable_after_s: float = 30.0,
        die_with_parent: bool = False,
        on_status: StatusCallback | None = None,
    ) -> None:
        if port_range is not None and not 1 <= port_range[0] <= port_range[1] <= 65535:
            raise ProvisionError(f"port range {port_range} must be (low, high) within 1-65535")
        self.base_dir = base_dir.resolve()  # absolute: it is matched in process titles
        self.redis_server_bin = redis_server_bin
        self.host = host
        self.port_range = port_range
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.restart_backoff_s = restart_backoff_s
        self.stable_after_s = stable_after_s
        self.die_with_parent = die_with_parent
        self.on_status = on_status
        self._instances: dict[str, _Instance] = {}
        self._binary: Path | None = None
        self._closed = False
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o700)  # the folders hold passwords and data
        self._lock_fd = os.open(self.base_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ProvisionError(
                f"another provisioner is using {self.base_dir}; close it first"
            ) from None

    def __repr__(self) -> str:
        counts = {state: 0 for state in State}
        for instance_id in self._instances:
            counts[self.status(instance_id).state] += 1
        shown = ", ".join(f"{n} {state.value}" for state, n in counts.items())
        return f"<LocalProvisioner {self.base_dir} [{shown}]>"

    # --- Provisioner interface ---------------------------------------------------------------

    async def provision(self, spec: InstanceSpec) -> Backend:
        self._check_open()
        if spec.instance_id in self._instances:
            raise ProvisionError(f"instance {spec.instance_id} is already provisioned")
        folder = self.base_dir / spec.instance_id
        inst = _Instance(spec, folder, port=0, password=secrets.token_urlsafe(32))
        self._instances[spec.instance_id] = inst  # taken now: concurrent calls see the id
        self._report(inst, Status(State.STARTING))
        try:
            if folder.exists():  # left by a provision that crashed before it was recorded
                log.warning("removing leftover folder %s before provisioning", folder)
                await self._stop_unmanaged(folder)
                await asyncio.to_thread(remove_folder, folder)
            async with inst.lock:
                try:
                    folder.mkdir(mode=0o700)
                    await self._first_start(inst)
                except OSError as exc:  # the folder's files: disk full, permissions…
                    raise ProvisionError(f"cannot prepare {folder}: {exc}") from None
        except BaseException as exc:
            if self._current(inst):
                del self._instances[spec.instance_id]
            if inst.process is not None:
                inst.process.kill_now()
                inst.process = None
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, ProvisionError):
                self._report(inst, Status(State.FAILED, str(exc)))
            raise
        if not self._current(inst):  # deprovisioned or closed meanwhile; that took the server
            raise ProvisionError(
                f"instance {spec.instance_id} was deprovisioned, or the provisioner closed, "
                "while it started"
            )
        self._report(inst, Status(State.RUNNING))
        self._supervise_soon(inst)
        return self._backend(inst)

    async def update(self, spec: InstanceSpec) -> None:
        self._check_open()
        inst = self._get(spec.instance_id)
        async with inst.lock:
            old = inst.spec
            inst.spec = spec
            try:
                self._write_config(inst)  # a restart, even one racing this call, gets it
                await self._apply_live(inst)
            except (ProvisionError, OSError) as exc:
                inst.spec = old
                with contextlib.suppress(OSError):
                    self._write_config(inst)
                if isinstance(exc, OSError):
                    raise ProvisionError(f"cannot write {inst.config_path}: {exc}") from None
                raise

    async def deprovision(self, instance_id: str) -> None:
        self._check_open()
        folder = self.base_dir / check_instance_id(instance_id)
        inst = self._instances.pop(instance_id, None)
        if inst is not None:
            await cancel_and_wait(inst.supervisor)
            async with inst.lock:
                if inst.process is not None:
                    await inst.process.stop(self.stop_timeout_s)
                    inst.process = None
        elif folder.exists():
            await self._stop_unmanaged(folder)
        await asyncio.to_thread(remove_folder, folder)
        log.info("instance %s deprovisioned", instance_id)

    async def adopt(self, known: Mapping[str, tuple[InstanceSpec, Backend]]) -> dict[str, Backend]:
        self._check_open()
        for instance_id, (spec, endpoint) in known.items():  # all checked before any change
            if spec.instance_id != instance_id:
                raise InvalidSpec(f"instance {instance_id} came with the spec of {spec}")
            if endpoint.shared or endpoint.db != 0 or endpoint.tls or endpoint.username:
                raise InvalidSpec(f"instance {instance_id}: {endpoint} is not a local endpoint")
        result: dict[str, Backend] = {}
        adopting: list[_Instance] = []
        for instance_id, (spec, endpoint) in known.items():
            if instance_id not in self._instances:
                folder = self.base_dir / instance_id
                inst = _Instance(spec, folder, endpoint.port, endpoint.password or "")
                self._instances[instance_id] = inst
                adopting.append(inst)
            result[instance_id] = self._backend(self._instances[instance_id])
        await asyncio.gather(*(self._adopt_one(inst) for inst in adopting))
        strangers = sorted(
            p.name for p in self.base_dir.iterdir() if p.is_dir() and p.name not in self._instances
        )
        if strangers:
            log.warning(
                "instance folders in %s that the control plane does not know (left alone; "
                "deprovision them to remove): %s",
                self.base_dir,
                ", ".join(strangers),
            )
        return result

    def status(self, instance_id: str) -> Status:
        return self._get(instance_id).status or Status(State.STARTING)

    async def close(self, *, stop_servers: bool) -> None:
        """Stop supervising; stop the servers too, or leave them serving for `adopt` (those
        started with `die_with_parent` still go when this process goes)."""
        if self._closed:
            return
        self._closed = True
        if not stop_servers and self._instances:
            log.info(
                "leaving %d instance server(s) in %s serving; the next start adopts them",
                len(self._instances),
                self.base_dir,
            )

        async def let_go(inst: _Instance) -> None:
            await cancel_and_wait(inst.supervisor)
            async with inst.lock:  # an operation in flight finishes first
                if inst.process is not None and stop_servers:
                    await inst.process.stop(self.stop_timeout_s)
                elif inst.process is not None:
                    inst.process.release()
                inst.process = None

        await asyncio.gather(*(let_go(inst) for inst in self._instances.values()))
        os.close(self._lock_fd)  # closing the file drops the lock

    # --- Starting, adopting, supervising -----------------------------------------------------

    async def _first_start(self, inst: _Instance) -> None:
        """Start a new instance's server, on a fresh port if a picked one was taken meanwhile."""
        attempts = _BIND_RETRIES if self.port_range is None else 1
        for attempt in range(attempts):
            taken = {other.port for other in self._instances.values()}
            inst.port = pick_port(self.host, taken, self.port_range)
            self._write_config(inst)
            try:
                await self._start(inst)
                return
            except ProvisionError as exc:
                if "Address already in use" not in str(exc) or attempt == attempts - 1:
                    raise

    async def _start(self, inst: _Instance) -> None:
        """Start the server on the instance's port and wait until it answers; the caller holds
        the lock. ProvisionError with the log's reason if it does not come up."""
        binary = await self._redis_binary()
        if not inst.spec.persistence:
            forget_saved_data(inst.folder)
        inst.log_offset = start_log(inst.folder)
        proc = RedisProcess.spawn(
            binary, inst.config_path, inst.folder, die_with_parent=self.die_with_parent
        )
        try:
            async with asyncio.timeout(self.start_timeout_s):
                ready = await proc.wait_ready(self.host, inst.port, inst.password)
        except TimeoutError:
            await proc.stop(self.stop_timeout_s)
            why = reason_from_log(log_since(inst.folder, inst.log_offset), was_ready=False)
            raise ProvisionError(
                f"redis-server did not answer on port {inst.port} within "
                f"{self.start_timeout_s:g}s" + (f": {why}" if why else "")
            ) from None
        except BaseException:
            proc.kill_now()
            raise
        if not ready:
            code = proc.exited.result()
            proc.close()
            why = reason_from_log(log_since(inst.folder, inst.log_offset), was_ready=False)
            raise ProvisionError(describe_exit(code) + (f": {why}" if why else ""))
        state = InstanceState(inst.spec.instance_id, inst.port, inst.password, proc.pid)
        try:
            write_state(inst.folder, state)
        except OSError as exc:  # without it the server could not be re-adopted: do not run it
            proc.kill_now()
            raise ProvisionError(f"cannot record the state of {inst.folder}: {exc}") from None
        inst.process = proc
        log.info(
            "instance %s: redis-server pid %s on port %s",
            inst.spec.instance_id,
            proc.pid,
            inst.port,
        )

    async def _adopt_one(self, inst: _Instance) -> None:
        """Take back a running server or start it again, then supervise it (a failure here
        becomes the instance's status; the supervisor keeps retrying)."""
        async with inst.lock:
            try:
                inst.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                try:
                    state = read_state(inst.folder)
                except ProvisionError as exc:
                    log.warning("instance %s: %s", inst.spec.instance_id, exc)
                    state = None
                self._write_config(inst)
                if state is not None and state.pid is not None:
                    inst.process = await self._take_back(inst, state)
                if inst.process is not None:
                    inst.log_offset = -1  # unknown: a death is explained by the log's tail
                    try:
                        await self._apply_live(inst)  # the spec may have changed meanwhile
                    except ProvisionError as exc:
                        log.warning("instance %s: %s", inst.spec.instance_id, exc)
                else:
                    self._report(inst, Status(State.STARTING))
                    await self._start(inst)
                self._report(inst, Status(State.RUNNING))
            except (ProvisionError, OSError) as exc:
                self._report(inst, Status(State.FAILED, str(exc)))
        if self._current(inst):
            self._supervise_soon(inst)

    async def _take_back(self, inst: _Instance, state: InstanceState) -> RedisProcess | None:
        """The server recorded in `state` if it still serves the stored endpoint; a stale
        server of this instance is stopped instead (so the restart cannot be a duplicate)."""
        assert state.pid is not None
        proc = await self._attach_ours(state, inst.config_path)
        if proc is None:
            return None
        same_endpoint = (state.port, state.password) == (inst.port, inst.password)
        if same_endpoint:
            try:
                async with asyncio.timeout(self.start_timeout_s):
                    if await proc.wait_ready(self.host, inst.port, inst.password):
                        log.info("instance %s: adopted pid %s", inst.spec.instance_id, proc.pid)
                        if self.die_with_parent:
                            log.warning(
                                "instance %s: redis-server pid %s was left serving by an "
                                "earlier run; it stops when this one exits cleanly, but only "
                                "its next restart ties it to this process's life",
                                inst.spec.instance_id,
                                proc.pid,
                            )
                        return proc
            except TimeoutError:
                pass
        log.warning(
            "instance %s: stopping stale redis-server pid %s", inst.spec.instance_id, proc.pid
        )
        await proc.stop(self.stop_timeout_s)
        return None

    async def _supervise(self, inst: _Instance) -> None:
        """Restart the instance's server whenever it dies, with backoff (see module doc)."""
        loop = asyncio.get_running_loop()
        low, high = self.restart_backoff_s
        backoff = low
        while True:
            proc = inst.process
            if proc is not None:
                up_since = loop.time()
                code = await asyncio.shield(proc.exited)
                proc.close()
                inst.process = None
                why = reason_from_log(log_since(inst.folder, inst.log_offset), was_ready=True)
                reason = describe_exit(code) + (f": {why}" if why else "")
                log.warning("instance %s: %s; restarting", inst.spec.instance_id, reason)
                self._report(inst, Status(State.FAILED, reason))
                if loop.time() - up_since >= self.stable_after_s:
                    backoff = low
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, high)
            async with inst.lock:
                try:
                    await self._start(inst)
                except (ProvisionError, OSError) as exc:
                    self._report(inst, Status(State.FAILED, str(exc)))
                    continue
            self._report(inst, Status(State.RUNNING))

    def _supervise_soon(self, inst: _Instance) -> None:
        task = asyncio.create_task(self._supervise(inst), name=f"supervise {inst.folder}")
        inst.supervisor = task

        def done(task: asyncio.Task[None]) -> None:
            if task.cancelled() or task.exception() is None:
                return
            exc = task.exception()
            log.error("supervision of %s stopped by a bug", inst.folder, exc_info=exc)
            self._report(inst, Status(State.FAILED, f"supervision stopped: {exc!r}"))

        task.add_done_callback(done)

    # --- Helpers -------------------------------------------------------------------------------

    async def _apply_live(self, inst: _Instance) -> None:
        """CONFIG SET the spec's settings on a running server (atomically: all or none)."""
        if inst.process is None or not inst.process.running:
            return  # the next start reads them from redis.conf
        args = ["CONFIG", "SET"]
        for key, value in live_settings(inst.spec).items():
            args += [key, value]
        try:
            (reply,) = await admin_command(self.host, inst.port, inst.password, args)
        except (OSError, TimeoutError) as exc:
            log.warning(
                "instance %s: cannot reach redis-server (%s); the change applies on restart",
                inst.spec.instance_id,
                exc,
            )
            return
        if isinstance(reply, hiredis.ReplyError):
            raise ProvisionError(f"redis-server refused the change: {reply}")

    def _write_config(self, inst: _Instance) -> None:
        text = render_config(
            inst.spec, host=self.host, port=inst.port, password=inst.password, folder=inst.folder
        )
        write_private(inst.config_path, text)

    async def _stop_unmanaged(self, folder: Path) -> None:
        """Stop the server recorded in a folder no provisioner supervises, if it still runs."""
        try:
            state = read_state(folder)
        except ProvisionError:
            state = None
        if state is not None and state.pid is not None:
            proc = await self._attach_ours(state, folder / CONFIG_FILE)
            if proc is not None:
                await proc.stop(self.stop_timeout_s)

    async def _attach_ours(self, state: InstanceState, config: Path) -> RedisProcess | None:
        """Watch the process `state` records if it is still this instance's redis-server: it
        answers as that pid on the recorded endpoint, or its title names our redis.conf."""
        assert state.pid is not None
        proc = RedisProcess.attach(state.pid)
        if proc is None:
            return None
        if await server_pid(self.host, state.port, state.password) == proc.pid:
            return proc
        if proc.mentions(config):
            return proc
        proc.release()  # the pid now belongs to some other process
        return None

    async def _redis_binary(self) -> Path:
        if self._binary is None:
            try:
                self._binary = await asyncio.to_thread(find_redis_server, self.redis_server_bin)
            except ServiceError as exc:
                raise ProvisionError(str(exc)) from None
        return self._binary

    def _backend(self, inst: _Instance) -> Backend:
        return Backend(host=self.host, port=inst.port, password=inst.password)

    def _get(self, instance_id: str) -> _Instance:
        inst = self._instances.get(instance_id)
        if inst is None:
            raise ProvisionError(f"instance {instance_id} is not provisioned here")
        return inst

    def _current(self, inst: _Instance) -> bool:
        """True while `inst` is still ours to run (not deprovisioned, not closed)."""
        return not self._closed and self._instances.get(inst.spec.instance_id) is inst

    def _check_open(self) -> None:
        if self._closed:
            raise ProvisionError("the provisioner is closed")

    def _report(self, inst: _Instance, status: Status) -> None:
        if status == inst.status:
            return
        inst.status = status
        if self.on_status is not None:
            try:
                self.on_status(inst.spec.instance_id, status)
            except Exception:
                log.exception("on_status callback failed for %s", inst.spec.instance_id)


def _conforms(provisioner: LocalProvisioner) -> Provisioner:
    """Nothing calls this: mypy checks here that LocalProvisioner implements the protocol."""
    return provisioner
