"""AuthThrottle: failures per peer in, delays out, with the clock passed in."""

from __future__ import annotations

import itertools

import pytest

from redisgate.proxy.policy.throttle import AuthThrottle


def throttle(**overrides: float) -> AuthThrottle:
    settings = {
        "free_failures": 3,
        "window_s": 60.0,
        "base_delay_s": 0.1,
        "max_delay_s": 1.0,
        "capacity": 1000,
    }
    settings.update(overrides)
    return AuthThrottle(
        free_failures=int(settings["free_failures"]),
        window_s=settings["window_s"],
        base_delay_s=settings["base_delay_s"],
        max_delay_s=settings["max_delay_s"],
        capacity=int(settings["capacity"]),
    )


def delays(t: AuthThrottle, peer: str, count: int, now: float = 0.0) -> list[float]:
    return [t.failure(peer, now) for _ in range(count)]


def test_free_failures_cost_nothing() -> None:
    assert delays(throttle(), "10.0.0.1", 3) == [0.0, 0.0, 0.0]


def test_delay_doubles_past_the_free_failures_up_to_the_cap() -> None:
    assert delays(throttle(), "10.0.0.1", 9) == [0.0, 0.0, 0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_cap_holds_for_a_flood() -> None:
    t = throttle(max_delay_s=2.0)
    out = delays(t, "p", 500)
    assert out[-1] == 2.0
    assert max(out) == 2.0
    assert all(a <= b for a, b in itertools.pairwise(out))


def test_cap_holds_for_a_long_flood() -> None:
    t = throttle(free_failures=3, max_delay_s=2.0)
    out = delays(t, "p", 1100)
    assert out[-1] == 2.0


def test_defaults_are_generous_for_client_retries() -> None:
    t = AuthThrottle()
    out = delays(t, "p", 25)
    assert out[:20] == [0.0] * 20
    assert out[20:] == [0.05, 0.1, 0.2, 0.4, 0.8]
    assert delays(t, "p", 3) == [1.6, 2.0, 2.0]


def test_peers_are_counted_apart() -> None:
    t = throttle()
    delays(t, "a", 5)
    assert t.failure("b", 0.0) == 0.0
    assert t.failure("a", 0.0) == 0.4


def test_window_reset() -> None:
    t = throttle(window_s=60.0)
    assert delays(t, "p", 4, now=100.0)[-1] == 0.1
    assert t.failure("p", 160.0) == 0.2  # exactly window_s after the first: same window
    assert t.failure("p", 160.001) == 0.0  # a new window starts with this failure
    assert delays(t, "p", 2, now=161.0) == [0.0, 0.0]
    assert t.failure("p", 162.0) == 0.1
    assert t.failure("p", 220.001) == 0.2  # the window runs from 160.001, not from 100


def test_success_clears_the_count() -> None:
    t = throttle()
    delays(t, "p", 6)
    t.success("p")
    assert delays(t, "p", 4) == [0.0, 0.0, 0.0, 0.1]
    t.success("never-failed")  # harmless


def test_capacity_bounds_memory_and_forgets_the_least_recent_peer() -> None:
    t = throttle(capacity=2)
    delays(t, "old", 5)
    delays(t, "mid", 5)
    delays(t, "old", 1)  # "old" failed again: "mid" is now the least recent
    delays(t, "new", 1)
    assert len(t._failures) == 2
    assert t.failure("old", 0.0) == 0.8  # still remembered (7th failure)
    assert t.failure("mid", 0.0) == 0.0  # forgotten: counts from one again


@pytest.mark.parametrize("free", [0, 1])
def test_small_free_allowances(free: int) -> None:
    t = throttle(free_failures=free)
    assert delays(t, "p", free + 2) == [0.0] * free + [0.1, 0.2]
