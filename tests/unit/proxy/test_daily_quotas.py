"""Daily quotas: counted per command by the rate gate, per byte at harvest, and shared by a
fleet through the totals flushed to usage_daily (sans-IO: days and totals passed in)."""

from __future__ import annotations

from datetime import date

from redisgate import metrics
from redisgate.backends import Backend
from redisgate.limits import Limits
from redisgate.proxy.keys.principals import Instance, Principal
from redisgate.proxy.policy.daily_quotas import QuotaBook
from redisgate.proxy.policy.rates import Admission, LimitRegistry, RateGate

DAY = date(2026, 11, 26)
INSTANCE = Instance("i1", "cache", Backend("127.0.0.1", 6379))
OUT_OF_COMMANDS = (
    b"-ERR max daily request limit exceeded (limit 3 commands per UTC day; resets at 00:00 UTC)\r\n"
)


def allow(gate: RateGate, now: float) -> bytes | None:
    """One command through the gate: None if it may run, else the refusal."""
    granted = gate.take(now, 1)
    return granted if isinstance(granted, bytes) else None


def principal(key_id: str = "abcdefghijkl", **limits: int) -> Principal:
    return Principal(key_id, "web", INSTANCE, limits=Limits(**limits))


def gate(registry: LimitRegistry, client_id: int, who: Principal) -> RateGate:
    admitted = registry.admit(client_id, who, 0.0)
    assert isinstance(admitted, Admission) and admitted.gate is not None
    return admitted.gate


def test_a_key_runs_exactly_its_daily_commands_then_is_refused_naming_the_reset() -> None:
    registry = LimitRegistry(day=DAY)
    g = gate(registry, 1, principal(daily_commands=3))
    before = metrics.LIMITED["daily_commands"]
    assert [allow(g, 0.0) for _ in range(4)] == [None, None, None, OUT_OF_COMMANDS]
    assert metrics.LIMITED["daily_commands"] == before + 1
    # Another connection of the key shares the quota.
    assert allow(gate(registry, 2, principal(daily_commands=3)), 0.0) == OUT_OF_COMMANDS


def test_the_instance_quota_is_shared_by_its_keys() -> None:
    registry = LimitRegistry(day=DAY)
    a = Principal("aaaaaaaaaaaa", "a", INSTANCE, instance_limits=Limits(daily_commands=2))
    b = Principal("bbbbbbbbbbbb", "b", INSTANCE, instance_limits=Limits(daily_commands=2))
    ga, gb = gate(registry, 1, a), gate(registry, 2, b)
    assert [allow(ga, 0.0), allow(gb, 0.0)] == [None, None]
    assert allow(gb, 0.0) is not None and allow(ga, 0.0) is not None


def test_a_rate_refusal_does_not_count_against_the_quota_nor_a_quota_refusal_take_a_token() -> None:
    registry = LimitRegistry(day=DAY)
    g = gate(registry, 1, principal(daily_commands=2, ops_per_second=1, burst=1))
    assert allow(g, 0.0) is None
    assert allow(g, 0.0) is not None  # no token: the quota keeps its second command
    assert g.quotas[0].commands == 1
    assert allow(g, 1.0) is None
    assert allow(g, 2.0) == OUT_OF_COMMANDS.replace(b"limit 3", b"limit 2")
    assert g.buckets[0].tokens == 1.0  # refused by the quota: the token stays


def test_bytes_count_once_harvested_and_refuse_the_next_command() -> None:
    registry = LimitRegistry(day=DAY)
    g = gate(registry, 1, principal(daily_bytes=100))
    assert allow(g, 0.0) is None
    g.quotas[0].bytes += 100  # what the gateway's harvest adds: bytes in and out
    refused = allow(g, 0.0)
    assert refused == (
        b"-ERR max daily bandwidth limit exceeded (limit 100 bytes per UTC day;"
        b" resets at 00:00 UTC)\r\n"
    )


def test_a_zero_quota_suspends_the_key() -> None:
    assert allow(gate(LimitRegistry(day=DAY), 1, principal(daily_commands=0)), 0.0) is not None


def test_new_quotas_are_unseeded_until_the_fleet_totals_are_read() -> None:
    registry = LimitRegistry(day=DAY)
    admitted = registry.admit(1, principal(daily_commands=10), 0.0)
    assert isinstance(admitted, Admission) and len(admitted.unseeded) == 1
    assert registry.quotas.idents(unseeded_only=True) == (["abcdefghijkl"], [])
    registry.quotas.apply(DAY, {("key", "abcdefghijkl"): (9, 0)})
    again = registry.admit(2, principal(daily_commands=10), 0.0)
    assert isinstance(again, Admission) and again.unseeded == ()
    assert again.gate is not None
    assert [allow(again.gate, 0.0) is None for _ in range(2)] == [True, False]


def test_fleet_totals_replace_the_others_share_and_keep_our_own() -> None:
    book = QuotaBook(DAY)
    ident = ("key", "k")
    quota = book.get(ident, Limits(daily_commands=100))
    book.apply(DAY, {ident: (0, 0)})
    quota.commands += 10  # we ran 10
    book.flushed(DAY, ident, 6, 600)  # and flushed 6 of them
    book.apply(DAY, {ident: (6 + 20, 600 + 50)})  # the database: ours plus 20 from others
    assert (quota.commands, quota.others_commands) == (30, 20)
    assert (quota.bytes, quota.others_bytes) == (50, 50)
    book.apply(DAY, {ident: (6 + 25, 650)})  # others ran 5 more
    assert quota.commands == 35
    book.apply(date(2026, 11, 25), {ident: (10_000, 0)})  # a read of another day is ignored
    assert quota.commands == 35


def test_the_new_day_starts_every_quota_from_zero_and_drops_unused_ones() -> None:
    book = QuotaBook(DAY)
    used = book.get(("key", "a"), Limits(daily_commands=5))
    book.get(("key", "b"), Limits(daily_commands=5))
    book.apply(DAY, {("key", "a"): (5, 0), ("key", "b"): (5, 0)})
    assert used.refusal() is not None
    assert not book.roll(DAY, [("key", "a")])
    assert book.roll(date(2026, 11, 27), [("key", "a")])
    assert list(book.quotas) == [("key", "a")]
    assert used.refusal() is None and not used.seeded
    book.flushed(DAY, ("key", "a"), 3, 0)  # a late flush of yesterday's use counts for nothing
    book.apply(date(2026, 11, 27), {("key", "a"): (0, 0)})
    assert used.commands == 0


def test_registry_sweep_rolls_the_day_over() -> None:
    registry = LimitRegistry(day=DAY)
    g = gate(registry, 1, principal(daily_commands=1))
    assert allow(g, 0.0) is None and allow(g, 0.0) is not None
    registry.sweep(1.0, date(2026, 11, 27))
    assert allow(g, 1.0) is None


def test_a_pipelined_read_takes_its_commands_at_once_and_gives_back_what_it_did_not_use() -> None:
    registry = LimitRegistry(day=DAY)
    g = gate(registry, 1, principal(daily_commands=10, ops_per_second=5, burst=5))
    assert g.take(0.0, 16) == 5  # the bucket holds 5
    assert g.quotas[0].commands == 5 and g.buckets[0].tokens == 0.0
    g.refund(2)  # the read stopped after 3
    assert g.quotas[0].commands == 3 and g.buckets[0].tokens == 2.0
    assert g.take(0.0, 16) == 2
    assert isinstance(g.take(0.0, 1), bytes)  # no token left: refused, nothing taken
    assert g.take(10.0, 16) == 5  # refilled; the quota has 5 left
    assert isinstance(g.take(20.0, 1), bytes)  # quota spent
    assert g.quotas[0].commands == 10
