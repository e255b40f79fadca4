"""UsageMeter: counts summed per key per day, batches numbered and retried until acknowledged."""

from __future__ import annotations

import uuid
from datetime import date

from redisgate.proxy.policy.usage_meter import UsageMeter

DAY, NEXT = date(2026, 11, 25), date(2026, 11, 26)
INSTANCE, ORG = uuid.uuid4(), uuid.uuid4()


def test_counts_sum_per_key_and_day() -> None:
    meter = UsageMeter("gw")
    meter.add(DAY, "a", INSTANCE, ORG, (3, 100, 200, 1, 0))
    meter.add(DAY, "a", INSTANCE, ORG, (2, 10, 20, 0, 1))
    meter.add(NEXT, "a", INSTANCE, ORG, (1, 1, 1, 0, 0))
    meter.add(DAY, "b", INSTANCE, ORG, (0, 0, 0, 0, 0))  # nothing used: no row
    batch = meter.batch()
    assert batch is not None
    seq, rows = batch
    assert seq == 1
    by_key = {(r.day, r.key_id): r for r in rows}
    assert set(by_key) == {(DAY, "a"), (NEXT, "a")}
    first = by_key[(DAY, "a")]
    assert (first.commands, first.bytes_in, first.bytes_out, first.denied, first.limited) == (
        5,
        110,
        220,
        1,
        1,
    )
    assert first.instance_id == INSTANCE and first.org_id == ORG


def test_a_batch_is_retried_until_done_and_new_counts_wait() -> None:
    meter = UsageMeter("gw")
    assert meter.batch() is None and meter.empty
    meter.add(DAY, "a", INSTANCE, ORG, (1, 0, 0, 0, 0))
    first = meter.batch()
    meter.add(DAY, "a", INSTANCE, ORG, (7, 0, 0, 0, 0))  # arrives while the flush fails
    assert meter.batch() == first  # the same batch, same number: the store dedupes it
    meter.done(first[0])  # type: ignore[index]
    second = meter.batch()
    assert second is not None and second[0] == 2 and second[1][0].commands == 7
    meter.done(99)  # an unknown number changes nothing
    assert meter.batch() == second
    meter.done(2)
    assert meter.empty
