"""Slows down peers that keep presenting bad keys (sans-IO: the clock is passed in)."""

from __future__ import annotations

from collections import OrderedDict


class AuthThrottle:
    """Failed authentications per peer address; past `free_failures` each reply waits longer.

    The delay doubles with each failure inside `window_s` (from `base_delay_s` up to
    `max_delay_s`), so a flood of bad keys from one address crawls while a user who mistyped a
    key notices nothing (client libraries retry a failed AUTH several times: redis-py 8 makes
    eleven attempts per command, so the free allowance is generous). Memory is bounded by
    `capacity` addresses (oldest forgotten).
    """

    def __init__(
        self,
        *,
        free_failures: int = 20,
        window_s: float = 60.0,
        base_delay_s: float = 0.05,
        max_delay_s: float = 2.0,
        capacity: int = 100_000,
    ) -> None:
        self.free_failures = free_failures
        self.window_s = window_s
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.capacity = capacity
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def failure(self, peer: str, now: float) -> float:
        """Record a failure; return how long to wait before answering it."""
        count, first = self._failures.get(peer, (0, now))
        if now - first > self.window_s:
            count, first = 0, now
        count += 1
        self._failures[peer] = (count, first)
        self._failures.move_to_end(peer)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)
        excess = count - self.free_failures
        if excess <= 0:
            return 0.0
        doublings = min(excess - 1, 64)  # past the cap anyway; keeps 2**n finite
        return float(min(self.max_delay_s, self.base_delay_s * 2.0**doublings))

    def success(self, peer: str) -> None:
        self._failures.pop(peer, None)
