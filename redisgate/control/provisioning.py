"""The control plane's side of provisioning: the configured provisioner, kept in step with the
instance rows. The provisioners themselves live in `redisgate/provision/`.

- `local` (`provision/local.py`): a `LocalProvisioner` runs one redis-server per instance. At
  start-up the servers of every stored instance are re-adopted (never duplicated); the
  provisioner's status changes (a crash, a restart) are written back to the instance's row.
- `static` (`provision/static.py`): an instance is a db on an operator-registered server,
  allocated inside the creating transaction, where its row becomes `running`; the db is
  emptied after commit and when the instance is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import asyncpg

from redisgate.backends import Backend
from redisgate.config import Settings
from redisgate.config.checks import parse_port_range
from redisgate.errors import ProvisionError, ServiceUnavailable, StoreError
from redisgate.provision import InstanceSpec, State, Status, static
from redisgate.provision.local import LocalProvisioner
from redisgate.store import instances
from redisgate.store.db import map_exceptions
from redisgate.store.instances import Instance

log = logging.getLogger(__name__)

ADOPT_RETRY_S = 5.0


def spec_of(instance: Instance) -> InstanceSpec:
    return InstanceSpec(
        instance_id=str(instance.id),
        memory_mb=instance.memory_mb,
        eviction_policy=instance.eviction_policy,
        persistence=instance.persistence,
    )


class Provisioning:
    """Owns the provisioner for the app's lifetime (`run` is its cleanup context)."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.kind = settings.provisioner
        self.local: LocalProvisioner | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[Provisioning]:
        if self.kind == "local":
            folder = self.settings.instances_dir or self.settings.data_dir / "instances"
            port_range = self.settings.instance_port_range
            self.local = LocalProvisioner(
                folder,
                redis_server_bin=self.settings.redis_server_bin,
                port_range=parse_port_range(port_range) if port_range else None,
                start_timeout_s=self.settings.service_start_timeout_s,
                die_with_parent=self.settings.instances_stop_on_exit,
                on_status=self._on_status,
            )
            if self.settings.instances_stop_on_exit:
                log.info("local instances stop with this process, also if it is killed")
            else:
                log.info(
                    "local instances keep serving when this process stops or is killed; the "
                    "next start adopts them (instances_stop_on_exit is off)"
                )
            self._spawn(self._adopt())
        try:
            yield self
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.local is not None:
                await self.local.close(stop_servers=self.settings.instances_stop_on_exit)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- Creating, changing, deleting -------------------------------------------------------

    async def allocate(self, conn: asyncpg.Connection, instance: Instance) -> Instance:
        """For `static`, inside the creating transaction: a free db, and the row running."""
        if self.kind != "static":
            return instance
        backend, server_id = await static.allocate(conn)
        updated = await instances.set_status(
            conn, instance.id, "running", backend=backend, server_id=server_id
        )
        assert updated is not None
        return updated

    async def start(self, instance: Instance) -> Instance:
        """After the creating transaction: a Redis for the instance, and its row updated.

        Returns the instance as stored afterwards: running, or failed with the reason.
        """
        if self.kind == "static":
            assert instance.backend is not None
            try:
                await static.flush(instance.backend)
            except ServiceUnavailable as exc:
                return await self._record(instance.id, "failed", str(exc))
            return instance
        assert self.local is not None
        try:
            backend = await self.local.provision(spec_of(instance))
        except ProvisionError as exc:
            return await self._record(instance.id, "failed", str(exc))
        return await self._record(instance.id, "running", "", backend)

    async def update(self, instance: Instance) -> None:
        """Apply memory, eviction policy and persistence live (local); static records them
        only."""
        if self.local is not None and instance.provisioner == "local":
            await self.local.update(spec_of(instance))

    async def remove(self, instance: Instance) -> None:
        """Stop and wipe the instance's Redis (local) or flush its db (static)."""
        if instance.provisioner == "local":
            if self.local is None:
                raise ServiceUnavailable(
                    "this control plane runs the static provisioner and cannot remove a local "
                    "instance; run it with provisioner = local",
                    code="wrong_provisioner",
                )
            await self.local.deprovision(str(instance.id))
        elif instance.backend is not None:
            await static.flush(instance.backend)

    # --- Status ------------------------------------------------------------------------------

    def _on_status(self, instance_id: str, status: Status) -> None:
        state = {State.RUNNING: "running", State.FAILED: "failed"}.get(status.state)
        if state is not None:
            self._spawn(self._record(uuid.UUID(instance_id), state, status.reason))

    async def _record(
        self, instance_id: uuid.UUID, status: str, reason: str, backend: Backend | None = None
    ) -> Instance:
        with map_exceptions("cannot record the instance's status"):
            async with self.pool.acquire() as conn:
                updated = await instances.set_status(
                    conn, instance_id, status, reason, backend=backend
                )
        if updated is None:
            raise StoreError("the instance was deleted meanwhile")
        return updated

    async def _adopt(self) -> None:
        """Take back every stored local instance; retried until PostgreSQL answers."""
        assert self.local is not None
        while True:
            try:
                with map_exceptions("cannot list instances"):
                    async with self.pool.acquire() as conn:
                        rows = await instances.all_instances(conn)
                break
            except StoreError as exc:
                log.warning("cannot re-adopt local instances yet: %s", exc)
                await asyncio.sleep(ADOPT_RETRY_S)
        known = {
            str(i.id): (spec_of(i), i.backend)
            for i in rows
            if i.provisioner == "local" and i.backend is not None
        }
        adopted = await self.local.adopt(known)
        log.info("re-adopted %d local instance(s)", len(adopted))
