"""UsageRecorder: clients harvested into the meter and their quotas, batches written through the
key source (kept and retried with their number on failure), flushes started when due."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date

from redisgate.backends import Backend
from redisgate.proxy.clients.usage_recorder import FLUSH_INTERVAL_S, UsageRecorder
from redisgate.proxy.keys.principals import Authenticator, Instance, KeyRecord, Principal
from redisgate.proxy.policy.daily_quotas import DailyQuota, QuotaBook
from redisgate.proxy.policy.rates import RateGate
from redisgate.store.usage import UsageRow

DAY = date(2025, 3, 1)
INSTANCE = Instance(id=str(uuid.uuid4()), name="cache", backend=Backend(host="h", port=1))
WHO = Principal(key_id="k", key_name="k", instance=INSTANCE, org_id=str(uuid.uuid4()))


@dataclass
class Source:
    """A KeySource whose writes succeed or fail on demand, recording what they were given."""

    fleet_wide: bool = True
    negative_ttl_s: float = 1.0
    ok: bool = True
    used: list[list[str]] = field(default_factory=list)
    batches: list[tuple[int, list[UsageRow]]] = field(default_factory=list)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        return None

    def maybe_reload(self, now: float) -> bool:
        return False

    async def record_use(self, key_ids: Collection[str]) -> bool:
        self.used.append(list(key_ids))
        return self.ok

    async def record_usage(self, gateway_id: str, seq: int, rows: list[UsageRow]) -> bool:
        self.batches.append((seq, rows))
        return self.ok

    async def day_totals(
        self, day: date, key_ids: list[str], instance_ids: list[str]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        return {}


@dataclass
class Session:
    rate: RateGate | None


class Client:
    def __init__(self, counts: tuple[int, int, int, int, int], quota: DailyQuota) -> None:
        self.session: Session | None = Session(RateGate((), (quota,)))
        self.counts = counts

    def take_usage(self) -> tuple[Principal | None, tuple[int, int, int, int, int]]:
        counts, self.counts = self.counts, (0, 0, 0, 0, 0)
        return WHO, counts


def recorder(source: Source) -> UsageRecorder:
    return UsageRecorder(source, Authenticator(source), QuotaBook(DAY))


def test_harvest_counts_into_the_meter_and_bytes_into_the_quotas() -> None:
    usage, quota = recorder(Source()), DailyQuota()
    usage.harvest(Client((3, 100, 20, 0, 1), quota), DAY)
    assert quota.bytes == 120
    assert usage.meter is not None and not usage.meter.empty


def test_a_keys_file_keeps_no_usage_but_still_counts_quota_bytes() -> None:
    usage, quota = recorder(Source(fleet_wide=False)), DailyQuota()
    usage.harvest(Client((3, 100, 20, 0, 0), quota), DAY)
    assert usage.meter is None and quota.bytes == 120


async def test_a_failed_flush_is_retried_with_its_number() -> None:
    source = Source(ok=False)
    usage = recorder(source)
    usage.authenticator.used.add("k")
    usage.harvest(Client((3, 100, 20, 0, 0), DailyQuota()), DAY)
    await usage.flush()
    assert usage.authenticator.used == {"k"}  # kept for the next try
    source.ok = True
    await usage.flush()
    assert source.used == [["k"], ["k"]]
    (first, rows), (again, same) = source.batches
    assert first == again and rows == same and rows[0].commands == 3
    assert usage.meter is not None and usage.meter.empty


async def test_flushes_start_when_due_and_never_two_at_once() -> None:
    source = Source()
    usage = recorder(source)
    usage.authenticator.used.add("k")
    usage.flush_if_due(0.0)
    usage.flush_if_due(FLUSH_INTERVAL_S + 1)  # one is under way
    usage.authenticator.used.add("k")
    await asyncio.sleep(0)
    usage.flush_if_due(1.0)  # done, but not due yet
    await asyncio.sleep(0)
    assert source.used == [["k"]]
    usage.flush_if_due(FLUSH_INTERVAL_S)
    await usage.close()  # waits for it, then flushes what is left
    assert source.used == [["k"]]  # the due flush took the second use; close found none
