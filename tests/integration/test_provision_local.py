"""The local provisioner with real redis-server processes: start, limits, live changes, crashes,
deletion, re-adoption after a control-plane restart, and failures a user can read.

Every test stops every server it started: the provisioners are closed with their servers, and
a finalizer kills (and fails the test for) any redis-server still naming the test's folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aredis

from redisgate.backends import Backend
from redisgate.errors import InvalidSpec, ProvisionError
from redisgate.launcher.process import free_port
from redisgate.provision import InstanceSpec, State, Status
from redisgate.provision.local import LocalProvisioner
from redisgate.provision.redisconf import read_state

MB = 1024 * 1024


def alive(pid: int) -> bool:
    """True if `pid` runs (a zombie is dead for our purpose)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "State:\tZ" not in status


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line (redis-server's title names its config) has `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def reap(pid: int) -> None:
    """Collect `pid` if it is our child (provisioners in this process started it)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def kill(pid: int, *, supervised: bool = True) -> None:
    """SIGKILL `pid`; reap it here only when no provisioner watches it (its exit status is
    what a supervising provisioner reports)."""
    os.kill(pid, signal.SIGKILL)
    if not supervised:
        reap(pid)


class Recorder:
    """The on_status callback: every change, in order, and a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Status]] = []

    def __call__(self, instance_id: str, status: Status) -> None:
        self.events.append((instance_id, status))

    def states(self, instance_id: str) -> list[State]:
        return [s.state for i, s in self.events if i == instance_id]

    async def wait_for(self, instance_id: str, state: State, after: int = 0) -> Status:
        """The first status `state` of `instance_id` among events[after:], waiting up to 10 s."""
        for _ in range(1000):
            for i, status in self.events[after:]:
                if i == instance_id and status.state is state:
                    return status
            await asyncio.sleep(0.01)
        raise AssertionError(f"{instance_id} never became {state}: {self.events}")


@pytest.fixture(scope="module", autouse=True)
def no_leftovers_after_the_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    leftovers = pids_mentioning(f"{tmp_path_factory.getbasetemp()}/")
    assert not leftovers, f"redis-server processes left running: {leftovers}"


@pytest.fixture
def base_dir(tmp_path: Path) -> Iterator[Path]:
    base = tmp_path / "instances"
    yield base
    leftovers = pids_mentioning(str(base) + "/")
    for pid in leftovers:
        kill(pid, supervised=False)
    assert not leftovers, f"redis-server processes left running: {leftovers}"


Factory = Callable[..., LocalProvisioner]


@pytest.fixture
async def make(base_dir: Path) -> AsyncIterator[Factory]:
    """Make provisioners on `base_dir`; each is closed with its servers at the end."""
    made: list[LocalProvisioner] = []

    def factory(**kwargs: Any) -> LocalProvisioner:
        provisioner = LocalProvisioner(base_dir, **kwargs)
        made.append(provisioner)
        return provisioner

    yield factory
    for provisioner in reversed(made):
        await provisioner.close(stop_servers=True)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket that listens on a port, so nobody else can bind it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def client(endpoint: Backend) -> aredis.Redis:
    return aredis.Redis(host=endpoint.host, port=endpoint.port, password=endpoint.password)


async def config(endpoint: Backend, name: str) -> str:
    async with client(endpoint) as r:
        value = await r.config_get(name)
    return str(value[name])


def pid_of(provisioner: LocalProvisioner, instance_id: str) -> int:
    state = read_state(provisioner.base_dir / instance_id)
    assert state is not None and state.pid is not None
    return state.pid


async def test_provision_starts_a_private_redis_with_the_spec(make: Factory) -> None:
    recorder = Recorder()
    provisioner = make(on_status=recorder)
    endpoint = await provisioner.provision(InstanceSpec("i1", 16, persistence=False))

    async with client(endpoint) as r:
        assert await r.ping() is True
    assert await config(endpoint, "maxmemory") == str(16 * MB)
    assert await config(endpoint, "maxmemory-policy") == "noeviction"
    assert await config(endpoint, "save") == ""
    assert await config(endpoint, "appendonly") == "no"
    limits = (await config(endpoint, "client-output-buffer-limit")).split()
    assert limits[:4] == ["normal", str(64 * MB), "0", "0"]  # unread replies are bounded
    assert await config(endpoint, "bind") == "127.0.0.1"
    assert await config(endpoint, "protected-mode") == "yes"
    with socket.create_connection((endpoint.host, endpoint.port)) as sock:
        sock.sendall(b"PING\r\n")  # only the gateway, which has the password, gets in
        assert sock.recv(100).startswith(b"-NOAUTH")

    assert provisioner.status("i1") == Status(State.RUNNING)
    assert recorder.states("i1") == [State.STARTING, State.RUNNING]
    folder = provisioner.base_dir / "i1"
    for name in ("redis.conf", "state.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    state = read_state(folder)
    assert state is not None and (state.port, state.password) == (endpoint.port, endpoint.password)
    assert (folder / "redis.pid").read_text().strip() == str(state.pid)
    assert (endpoint.db, endpoint.shared, endpoint.tls) == (0, False, False)


async def test_persistence_and_policy_reach_redis(make: Factory) -> None:
    provisioner = make()
    endpoint = await provisioner.provision(InstanceSpec("i2", 8, "allkeys-lru", persistence=True))
    assert await config(endpoint, "maxmemory") == str(8 * MB)
    assert await config(endpoint, "maxmemory-policy") == "allkeys-lru"
    assert await config(endpoint, "save") == "3600 1 300 100 60 10000"
    assert await config(endpoint, "appendonly") == "yes"
    assert await config(endpoint, "dir") == str(provisioner.base_dir / "i2")


async def test_update_applies_live_and_survives_a_restart(make: Factory) -> None:
    recorder = Recorder()
    provisioner = make(on_status=recorder)
    endpoint = await provisioner.provision(InstanceSpec("i3", 8))
    pid = pid_of(provisioner, "i3")

    await provisioner.update(InstanceSpec("i3", 24, "volatile-ttl", persistence=True))
    assert await config(endpoint, "maxmemory") == str(24 * MB)
    assert await config(endpoint, "maxmemory-policy") == "volatile-ttl"
    assert await config(endpoint, "appendonly") == "yes"
    assert pid_of(provisioner, "i3") == pid and alive(pid)  # no restart

    mark = len(recorder.events)
    kill(pid)  # the restarted server reads the new values from its redis.conf
    await recorder.wait_for("i3", State.RUNNING, after=mark)
    assert await config(endpoint, "maxmemory") == str(24 * MB)
    assert await config(endpoint, "maxmemory-policy") == "volatile-ttl"
    assert await config(endpoint, "save") == "3600 1 300 100 60 10000"


async def test_update_of_unknown_instance_is_refused(make: Factory) -> None:
    provisioner = make()
    with pytest.raises(ProvisionError, match=r"instance nope is not provisioned here"):
        await provisioner.update(InstanceSpec("nope", 8))
    with pytest.raises(ProvisionError, match=r"not provisioned here"):
        provisioner.status("nope")


async def test_killed_server_restarts_on_the_same_endpoint(make: Factory) -> None:
    recorder = Recorder()
    provisioner = make(on_status=recorder)
    endpoint = await provisioner.provision(InstanceSpec("i4", 8, persistence=False))
    pid = pid_of(provisioner, "i4")
    async with client(endpoint) as r:
        await r.set("k", "v")

    mark = len(recorder.events)
    kill(pid)
    failed = await recorder.wait_for("i4", State.FAILED, after=mark)
    assert failed.reason == "redis-server was killed by signal 9 (SIGKILL)"
    await recorder.wait_for("i4", State.RUNNING, after=mark)

    assert recorder.states("i4")[-2:] == [State.FAILED, State.RUNNING]
    new_pid = pid_of(provisioner, "i4")
    assert new_pid != pid and alive(new_pid) and not alive(pid)
    async with client(endpoint) as r:  # same port, same password; no persistence: data gone
        assert await r.get("k") is None
    assert pids_mentioning(str(provisioner.base_dir / "i4" / "redis.conf")) == [new_pid]


async def test_instances_persist_by_default_and_a_killed_one_comes_back_with_its_data(
    make: Factory,
) -> None:
    recorder = Recorder()
    provisioner = make(on_status=recorder)
    endpoint = await provisioner.provision(InstanceSpec("d1", 8))  # persistence not asked for
    assert await config(endpoint, "appendonly") == "yes"
    assert await config(endpoint, "appendfsync") == "everysec"
    pid = pid_of(provisioner, "d1")
    async with client(endpoint) as r:
        for i in range(200):
            assert await r.set(f"k{i}", f"v{i}")  # acknowledged
    await asyncio.sleep(1.2)  # past the fsync window of appendfsync everysec

    mark = len(recorder.events)
    kill(pid)
    await recorder.wait_for("d1", State.RUNNING, after=mark)
    assert pid_of(provisioner, "d1") != pid
    async with client(endpoint) as r:
        assert await r.dbsize() == 200
        assert await r.get("k199") == b"v199"


async def test_turning_persistence_off_forgets_the_saved_data(make: Factory) -> None:
    recorder = Recorder()
    provisioner = make(on_status=recorder)
    endpoint = await provisioner.provision(InstanceSpec("d2", 8))
    async with client(endpoint) as r:
        await r.set("old", "1")
        await r.save()  # a snapshot on disk, as the save points would make
    await provisioner.update(InstanceSpec("d2", 8, persistence=False))
    assert await config(endpoint, "appendonly") == "no"
    assert (provisioner.base_dir / "d2" / "dump.rdb").exists()
    mark = len(recorder.events)
    kill(pid_of(provisioner, "d2"))
    await recorder.wait_for("d2", State.RUNNING, after=mark)
    async with client(endpoint) as r:  # Redis would have loaded the old snapshot
        assert await r.get("old") is None
    assert not (provisioner.base_dir / "d2" / "dump.rdb").exists()
    assert not (provisioner.base_dir / "d2" / "appendonlydir").exists()


async def test_a_big_log_is_rotated_when_the_server_restarts(make: Factory) -> None:
    recorder = Recorder()
    provisioner = make(on_status=recorder)
    await provisioner.provision(InstanceSpec("l1", 8))
    log_path = provisioner.base_dir / "l1" / "redis.log"
    with log_path.open("ab") as f:  # as if a long crash loop had written it
        f.write(b"x" * (10 * MB + 1) + b"\n")
    mark = len(recorder.events)
    kill(pid_of(provisioner, "l1"))
    await recorder.wait_for("l1", State.RUNNING, after=mark)
    assert log_path.with_name("redis.log.1").stat().st_size > 10 * MB
    assert log_path.stat().st_size < 100_000
    assert "Ready to accept connections" in log_path.read_text()


async def test_deprovision_stops_the_server_and_removes_its_data(make: Factory) -> None:
    provisioner = make()
    endpoint = await provisioner.provision(InstanceSpec("i5", 8, persistence=True))
    async with client(endpoint) as r:
        await r.set("k", "v")
    pid = pid_of(provisioner, "i5")
    folder = provisioner.base_dir / "i5"

    await provisioner.deprovision("i5")
    assert not alive(pid)
    assert not folder.exists()
    with pytest.raises(ProvisionError):
        provisioner.status("i5")
    await provisioner.deprovision("i5")  # again: nothing to do, no error
    with pytest.raises(InvalidSpec):
        await provisioner.deprovision("../i5")


async def test_servers_outlive_the_provisioner_and_are_adopted_not_duplicated(
    make: Factory,
) -> None:
    first = make()
    specs = [InstanceSpec("a1", 8), InstanceSpec("a2", 8, "allkeys-lfu")]
    endpoints = {spec.instance_id: await first.provision(spec) for spec in specs}
    pids = {i: pid_of(first, i) for i in endpoints}
    await first.close(stop_servers=False)
    assert all(alive(pid) for pid in pids.values())  # the control plane went, Redis stayed

    recorder = Recorder()
    second = make(on_status=recorder)
    # a1's memory was changed while no provisioner ran: adoption applies it live.
    known = {
        "a1": (InstanceSpec("a1", 12), endpoints["a1"]),
        "a2": (specs[1], endpoints["a2"]),
    }
    assert await second.adopt(known) == endpoints
    assert {i: pid_of(second, i) for i in endpoints} == pids
    for instance_id, pid in pids.items():
        config_path = second.base_dir / instance_id / "redis.conf"
        assert pids_mentioning(str(config_path)) == [pid]
        assert second.status(instance_id) == Status(State.RUNNING)
    assert await config(endpoints["a1"], "maxmemory") == str(12 * MB)
    assert recorder.states("a1") == [State.RUNNING]

    assert await second.adopt(known) == endpoints  # again: still no duplicate
    assert pids_mentioning(str(second.base_dir / "a1" / "redis.conf")) == [pids["a1"]]

    # Supervision continues for adopted servers, though they are not our children.
    mark = len(recorder.events)
    kill(pids["a2"])
    failed = await recorder.wait_for("a2", State.FAILED, after=mark)
    assert failed.reason.startswith("redis-server ")
    await recorder.wait_for("a2", State.RUNNING, after=mark)
    async with client(endpoints["a2"]) as r:
        assert await r.ping() is True


async def test_server_that_died_meanwhile_restarts_on_its_stored_endpoint(make: Factory) -> None:
    first = make()
    spec = InstanceSpec("d1", 8)
    endpoint = await first.provision(spec)
    pid = pid_of(first, "d1")
    await first.close(stop_servers=False)
    kill(pid, supervised=False)

    second = make()
    assert await second.adopt({"d1": (spec, endpoint)}) == {"d1": endpoint}
    assert second.status("d1") == Status(State.RUNNING)
    new_pid = pid_of(second, "d1")
    assert new_pid != pid
    async with client(endpoint) as r:
        assert await r.ping() is True


CONTROL_PLANE = """
import asyncio, json, sys
from pathlib import Path
from redisgate.provision import InstanceSpec
from redisgate.provision.local import LocalProvisioner

async def main():
    provisioner = LocalProvisioner(Path(sys.argv[1]), die_with_parent=sys.argv[2] == "tied")
    endpoint = await provisioner.provision(InstanceSpec("c1", 8))
    print(json.dumps([endpoint.port, endpoint.password]), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def killed_control_plane(base_dir: Path, mode: str) -> Backend:
    """Run CONTROL_PLANE in a subprocess until it provisioned c1, then SIGKILL it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CONTROL_PLANE, str(base_dir), mode, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        port, password = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    finally:
        proc.kill()  # SIGKILL: no close(), no clean-up of any kind
        await proc.wait()
    return Backend("127.0.0.1", port, password=password)


async def test_servers_survive_a_killed_control_plane_process(
    make: Factory, base_dir: Path
) -> None:
    endpoint = await killed_control_plane(base_dir, "free")
    folder = base_dir / "c1"
    state = read_state(folder)
    assert state is not None and state.pid is not None
    # A parent-death signal would be sent by now; Redis acts on SIGTERM within a 100 ms tick.
    await asyncio.sleep(0.5)
    assert alive(state.pid)

    provisioner = make()
    await provisioner.adopt({"c1": (InstanceSpec("c1", 8), endpoint)})
    assert pid_of(provisioner, "c1") == state.pid
    assert pids_mentioning(str(folder / "redis.conf")) == [state.pid]
    async with client(endpoint) as r:
        assert await r.ping() is True


async def test_tied_servers_go_with_a_killed_control_plane_and_start_again_on_adopt(
    make: Factory, base_dir: Path
) -> None:
    endpoint = await killed_control_plane(base_dir, "tied")
    folder = base_dir / "c1"
    state = read_state(folder)
    assert state is not None and state.pid is not None
    for _ in range(100):  # SIGTERM from the kernel; Redis exits within a 100 ms tick or two
        if not alive(state.pid):
            break
        await asyncio.sleep(0.05)
    assert pids_mentioning(str(folder)) == [], "a tied redis-server outlived its parent"

    provisioner = make(die_with_parent=True)  # the next run starts it on the stored endpoint
    await provisioner.adopt({"c1": (InstanceSpec("c1", 8), endpoint)})
    assert provisioner.status("c1") == Status(State.RUNNING)
    assert pid_of(provisioner, "c1") != state.pid
    async with client(endpoint) as r:
        assert await r.ping() is True


async def test_a_changed_stored_endpoint_replaces_the_stale_server(make: Factory) -> None:
    first = make()
    spec = InstanceSpec("s1", 8)
    endpoint = await first.provision(spec)
    pid = pid_of(first, "s1")
    await first.close(stop_servers=False)

    second = make()
    rotated = Backend(endpoint.host, endpoint.port, password="a-new-password")
    await second.adopt({"s1": (spec, rotated)})
    await asyncio.to_thread(reap, pid)  # the stale server was stopped, not adopted
    assert not alive(pid)
    assert pids_mentioning(str(second.base_dir / "s1" / "redis.conf")) == [pid_of(second, "s1")]
    async with client(rotated) as r:
        assert await r.ping() is True


async def test_folders_the_control_plane_does_not_know(make: Factory) -> None:
    first = make()
    await first.provision(InstanceSpec("gone", 8))  # deleted while no provisioner ran
    await first.provision(InstanceSpec("redo", 8))  # its provisioning was never recorded
    gone_pid, redo_pid = pid_of(first, "gone"), pid_of(first, "redo")
    await first.close(stop_servers=False)

    second = make()
    assert await second.adopt({}) == {}
    assert alive(gone_pid) and alive(redo_pid)  # left alone, only logged
    await second.deprovision("gone")
    assert not (second.base_dir / "gone").exists()
    endpoint = await second.provision(InstanceSpec("redo", 8))  # the old server is replaced
    new_pid = pid_of(second, "redo")
    assert pids_mentioning(str(second.base_dir / "redo" / "redis.conf")) == [new_pid]
    for pid in (gone_pid, redo_pid):
        await asyncio.to_thread(reap, pid)  # stopped through their pidfds by `second`
        assert not alive(pid)
    async with client(endpoint) as r:
        assert await r.ping() is True


async def test_adopt_without_a_folder_starts_afresh(make: Factory) -> None:
    provisioner = make()
    endpoint = Backend("127.0.0.1", free_port(), password="stored-password")
    await provisioner.adopt({"n1": (InstanceSpec("n1", 8), endpoint)})
    async with client(endpoint) as r:
        assert await r.ping() is True


async def test_start_failure_is_reported_with_the_log_reason_and_retried(
    make: Factory, listener: socket.socket
) -> None:
    first = make()
    spec = InstanceSpec("p1", 8)
    endpoint = await first.provision(spec)
    await first.close(stop_servers=True)
    listener.close()  # someone takes the instance's port while the control plane is down
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", endpoint.port))
        squatter.listen()

        recorder = Recorder()
        second = make(on_status=recorder, restart_backoff_s=(0.05, 0.2))
        await second.adopt({"p1": (spec, endpoint)})
        status = second.status("p1")
        assert status.state is State.FAILED
        assert status.reason.startswith("redis-server exited with code 1: ")
        assert "Address already in use" in status.reason
    mark = len(recorder.events)
    await recorder.wait_for("p1", State.RUNNING, after=mark)  # the port is free again
    async with client(endpoint) as r:
        assert await r.ping() is True


async def test_port_range_is_used_and_exhaustion_is_clear(
    make: Factory, listener: socket.socket
) -> None:
    taken = listener.getsockname()[1]
    provisioner = make(port_range=(taken, taken))
    recorder = Recorder()
    provisioner.on_status = recorder
    with pytest.raises(ProvisionError, match=r"no free port left in the instance port range"):
        await provisioner.provision(InstanceSpec("r1", 8))
    assert recorder.states("r1") == [State.STARTING, State.FAILED]
    assert not (provisioner.base_dir / "r1").exists()

    listener.close()
    endpoint = await provisioner.provision(InstanceSpec("r1", 8))
    assert endpoint.port == taken


async def test_missing_binary_fails_clearly_and_leaves_nothing(make: Factory) -> None:
    provisioner = make(redis_server_bin="/nonexistent/redis-server")
    with pytest.raises(ProvisionError, match=r"install the Debian package 'redis-server'"):
        await provisioner.provision(InstanceSpec("m1", 8))
    assert [p.name for p in provisioner.base_dir.iterdir()] == [".lock"]


async def test_one_provisioner_per_folder_and_one_instance_per_id(make: Factory) -> None:
    provisioner = make()
    with pytest.raises(ProvisionError, match=r"another provisioner is using"):
        make()
    await provisioner.provision(InstanceSpec("u1", 8))
    with pytest.raises(ProvisionError, match=r"instance u1 is already provisioned"):
        await provisioner.provision(InstanceSpec("u1", 8))
    with pytest.raises(InvalidSpec, match=r"not a local endpoint"):
        await provisioner.adopt(
            {
                "u2": (
                    InstanceSpec("u2", 8),
                    Backend("127.0.0.1", 1, password="pw", db=3, shared=True),
                )
            }
        )
