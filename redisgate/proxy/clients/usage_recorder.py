"""Usage recording: what this process's clients used, counted per key per day and written where
the key source keeps it, and the fleet's use of the day read back into the daily quotas.

Each client connection bumps five plain integers per command (`take_usage` hands them over and
zeroes them). The recorder owns everything after that:

- `harvest(client)` moves a client's counts into the `UsageMeter` under today's UTC date, and
  its bytes into its daily quotas. The gateway's 1 s sweep harvests every client; a client
  harvests itself before it changes key (AUTH), the gateway when it goes and at shutdown.
- `flush()` writes the keys that authenticated (`last_used_at`) and the meter's numbered batch
  through the key source (`KeySource.record_use`, `record_usage`; a keys file keeps
  nothing), tells the quota book what was flushed, then syncs the quotas. The sweep asks
  `flush_if_due` every second, which starts one every `FLUSH_INTERVAL_S` unless one is under
  way; `close()` at shutdown waits for that one and flushes what is left.
- `sync_quotas()` reads what the fleet flushed today into the quota book: after every flush,
  and before the AUTH that first needs a daily quota (`unseeded_only`).

A failed write keeps its keys and its batch for the next try (the batch with its number, so
the store never counts it twice: `policy/usage_meter.py`). Nothing here raises.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Protocol

from redisgate import metrics
from redisgate.errors import StoreError
from redisgate.proxy.policy.usage_meter import UsageMeter

if TYPE_CHECKING:
    from redisgate.proxy.keys.principals import Authenticator, KeySource, Principal
    from redisgate.proxy.policy.daily_quotas import QuotaBook
    from redisgate.proxy.policy.rates import RateGate

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 5.0


class RatedSession(Protocol):
    """A client's session, as far as usage goes: the limits it draws from (None before AUTH)."""

    @property
    def rate(self) -> RateGate | None: ...


class UsageHolder(Protocol):
    """A client connection, as far as usage goes: its counters (`take_usage`) and the session
    whose rate gate carries its daily quotas."""

    @property
    def session(self) -> RatedSession | None: ...
    def take_usage(self) -> tuple[Principal | None, tuple[int, int, int, int, int]]: ...


class UsageRecorder:
    """Usage counts and daily quotas of one gateway process (`meter` is None where the key
    source keeps no usage: a keys file)."""

    def __init__(self, source: KeySource, authenticator: Authenticator, quotas: QuotaBook) -> None:
        self.source = source
        self.authenticator = authenticator
        self.quotas = quotas
        self.meter = UsageMeter() if source.fleet_wide else None
        self._next_flush = 0.0
        self._flushing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = "flushing" if self._flushing is not None else "idle"
        return f"<UsageRecorder [{state}] {self.quotas!r}>"

    def today(self) -> date:
        """The UTC day usage is counted under (and daily quotas run on)."""
        return datetime.fromtimestamp(self.authenticator.wall_clock(), UTC).date()

    def harvest(self, client: UsageHolder, today: date | None = None) -> None:
        """Move a client's usage counters into the meter, under today's (UTC) date, and its
        bytes into its daily quotas (`today`: the sweep reads the clock once for all)."""
        principal, counts = client.take_usage()
        if principal is None:
            return
        gate = client.session.rate if client.session is not None else None
        if gate is not None and gate.quotas:
            spent = counts[1] + counts[2]
            for quota in gate.quotas:
                quota.bytes += spent
        if self.meter is None or not principal.org_id:
            return
        instance_id, org_id = uuid.UUID(principal.instance.id), uuid.UUID(principal.org_id)
        self.meter.add(today or self.today(), principal.key_id, instance_id, org_id, counts)

    def flush_if_due(self, now: float) -> None:
        """From the sweep: start a flush every `FLUSH_INTERVAL_S` (`now`: the loop's clock),
        never two at once."""
        if now >= self._next_flush and self._flushing is None:
            self._next_flush = now + FLUSH_INTERVAL_S
            self._flushing = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Record the keys that authenticated since the last flush and the usage counted, where
        the source keeps them (`KeySource.fleet_wide`); on failure both are kept for the next
        try. Never raises."""
        try:
            used = self.authenticator.take_used()
            if used and not await self.source.record_use(used):
                metrics.USAGE_FLUSH_FAILURES["failures"] += 1
                self.authenticator.used.update(used)
            meter = self.meter
            batch = meter.batch() if meter is not None else None
            if meter is not None and batch is not None:
                if await self.source.record_usage(meter.gateway_id, *batch):
                    meter.done(batch[0])
                    book = self.quotas
                    for row in batch[1]:
                        net, spent = row.commands - row.limited, row.bytes_in + row.bytes_out
                        book.flushed(row.day, ("key", row.key_id), net, spent)
                        book.flushed(row.day, ("instance", str(row.instance_id)), net, spent)
                else:
                    metrics.USAGE_FLUSH_FAILURES["failures"] += 1
            await self.sync_quotas()
        finally:
            if self._flushing is asyncio.current_task():
                self._flushing = None

    async def sync_quotas(self, unseeded_only: bool = False) -> None:
        """Read what the fleet flushed today into the daily quotas (all of them, or the new
        ones an AUTH waits for). Without PostgreSQL (a keys file, an outage) each gateway
        counts only its own; never raises."""
        book = self.quotas
        keys, instances = book.idents(unseeded_only)
        if not keys and not instances:
            return
        day = book.day
        try:
            totals = await self.source.day_totals(day, keys, instances)
        except StoreError as exc:
            log.debug("daily quotas not synced: %s", exc)
            return
        book.apply(day, totals)

    async def close(self) -> None:
        """At shutdown, once every client was harvested: wait for the flush under way, then
        flush until the meter is empty (a retried batch first, then what came after it; three
        tries at most). The caller bounds the time."""
        if self._flushing is not None:
            await asyncio.wait({self._flushing})
        for _ in range(3):
            await self.flush()
            if self.meter is None or self.meter.empty:
                break
