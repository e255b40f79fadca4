"""LoginThrottle with an injected clock: doubling delays per (email, address) and per address."""

from __future__ import annotations

import pytest

from redisgate.control import throttle
from redisgate.control.throttle import LoginThrottle


def make(**overrides: float | None) -> LoginThrottle:
    kw: dict[str, float | None] = {
        "pair_free": 3,
        "addr_free": 10,
        "max_delay_s": 60,
        "forget_after_s": 3600,
    }
    kw.update(overrides)
    return LoginThrottle(**kw)  # type: ignore[arg-type]


def test_delays_double_after_the_free_failures_up_to_the_cap() -> None:
    t = make()
    assert [t.delay_after(n, 3) for n in range(2, 12)] == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert t.delay_after(10_000, 3) == 60


def test_attacker_is_slowed_and_the_owner_from_elsewhere_logs_in_at_once() -> None:
    t = make()
    now = 0.0
    waits = []
    for _ in range(8):
        wait = t.retry_after("owner@x.org", "6.6.6.6", now)
        waits.append(wait)
        now += wait  # the attacker waits exactly as long as told, then fails again
        t.failed("owner@x.org", "6.6.6.6", now)
    assert waits == [0, 0, 0, 1, 2, 4, 8, 16]
    assert t.retry_after("owner@x.org", "6.6.6.6", now) == 32
    # The owner, from their own address, is not held back at all.
    assert t.retry_after("OWNER@x.org", "1.2.3.4", now) == 0
    t.failed("owner@x.org", "1.2.3.4", now)
    t.succeeded("owner@x.org", "1.2.3.4")
    assert t.retry_after("owner@x.org", "1.2.3.4", now) == 0
    assert t.retry_after("owner@x.org", "6.6.6.6", now) > 0  # the attacker still waits


def test_one_address_is_bounded_across_emails() -> None:
    t = make(addr_free=4)
    for i in range(4):
        assert t.retry_after(f"u{i}@x.org", "9.9.9.9", 0) == 0
        t.failed(f"u{i}@x.org", "9.9.9.9", 0)
    assert t.retry_after("fresh@x.org", "9.9.9.9", 0) == 1
    t.failed("fresh@x.org", "9.9.9.9", 1)
    assert t.retry_after("another@x.org", "9.9.9.9", 1) == 2
    assert t.retry_after("another@x.org", "8.8.8.8", 1) == 0


def test_success_clears_the_pair_but_takes_back_only_its_own_attempt() -> None:
    t = make(pair_free=1, addr_free=2)
    t.failed("a@x.org", "9.9.9.9", 0)
    t.failed("a@x.org", "9.9.9.9", 0)  # the right password, counted before its check
    t.succeeded("a@x.org", "9.9.9.9")
    assert t.retry_after("a@x.org", "9.9.9.9", 0) == 0
    t.failed("b@x.org", "9.9.9.9", 0)
    assert t.retry_after("z@x.org", "9.9.9.9", 0) == 1  # the address keeps its real failure


def test_counts_are_forgotten_after_a_quiet_while() -> None:
    t = make(pair_free=1, forget_after_s=100)
    t.failed("a@x.org", "9.9.9.9", 0)
    t.failed("a@x.org", "9.9.9.9", 1)
    assert t.retry_after("a@x.org", "9.9.9.9", 1) == 2
    assert t.retry_after("a@x.org", "9.9.9.9", 101) == 0
    t.failed("a@x.org", "9.9.9.9", 101)
    assert t.retry_after("a@x.org", "9.9.9.9", 101) == 1  # starts over


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_KEYS", 100)
    t = make()
    for i in range(1000):
        t.failed(f"u{i}@x.org", f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(t._counts) <= 100


def test_address_only_mode() -> None:
    t = make(pair_free=None, addr_free=2)
    t.failed("a@x.org", "9.9.9.9", 0)
    t.failed("a@x.org", "8.8.8.8", 0)
    assert t.retry_after("a@x.org", "7.7.7.7", 1) == 0  # no email bucket
    t.failed("b@x.org", "9.9.9.9", 1)
    assert t.retry_after("c@x.org", "9.9.9.9", 1) == 1
    assert len(t._counts) == 2
