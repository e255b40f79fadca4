"""LoginThrottle with an injected clock."""

from __future__ import annotations

from redisgate.control import throttle
from redisgate.control.throttle import LoginThrottle


def test_email_limit_and_window() -> None:
    t = LoginThrottle(max_per_email=3, max_per_addr=100, window_s=60)
    for now in (0, 10, 20):
        assert t.retry_after("A@x.org", "1.1.1.1", now) == 0
        t.failed("a@x.org", "1.1.1.1", now)
    assert t.retry_after("a@X.org", "2.2.2.2", 21) == 39  # until the first failure ages out
    assert t.retry_after("a@x.org", "2.2.2.2", 60.5) == 0
    assert t.retry_after("b@x.org", "1.1.1.1", 21) == 0


def test_address_limit_across_emails() -> None:
    t = LoginThrottle(max_per_email=100, max_per_addr=2, window_s=60)
    t.failed("a@x.org", "9.9.9.9", 0)
    t.failed("b@x.org", "9.9.9.9", 1)
    assert t.retry_after("c@x.org", "9.9.9.9", 2) == 58
    assert t.retry_after("c@x.org", "8.8.8.8", 2) == 0


def test_success_clears_the_email_only() -> None:
    t = LoginThrottle(max_per_email=1, max_per_addr=2, window_s=60)
    t.failed("a@x.org", "9.9.9.9", 0)
    t.succeeded("A@x.org")
    assert t.retry_after("a@x.org", "1.1.1.1", 1) == 0
    t.failed("b@x.org", "9.9.9.9", 1)
    assert t.retry_after("z@x.org", "9.9.9.9", 2) > 0


def test_memory_is_bounded(monkeypatch: object) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setattr(throttle, "MAX_KEYS", 100)
    try:
        t = LoginThrottle(max_per_email=5, max_per_addr=5, window_s=60)
        for i in range(1000):
            t.failed(f"u{i}@x.org", f"10.0.{i // 256}.{i % 256}", float(i))
        assert len(t._failures) <= 100
    finally:
        mp.undo()


def test_address_only_mode() -> None:
    t = LoginThrottle(max_per_email=None, max_per_addr=2, window_s=60)
    t.failed("a@x.org", "9.9.9.9", 0)
    t.failed("a@x.org", "8.8.8.8", 0)
    assert t.retry_after("a@x.org", "7.7.7.7", 1) == 0  # no email bucket
    t.failed("b@x.org", "9.9.9.9", 1)
    assert t.retry_after("c@x.org", "9.9.9.9", 2) == 58
    assert len(t._failures) == 2
