"""Login throttling: failed logins counted per email and per client address, in a window.

Sans-IO (the caller passes `now`). Counts live in this process: with several control API
processes each counts its own, so the effective limit is at most that many times higher.
"""

from __future__ import annotations

import math
from collections import deque

MAX_KEYS = 100_000


class LoginThrottle:
    """Counts failures per email and per address; `max_per_email=None` counts addresses only
    (what registrations use)."""

    def __init__(self, max_per_email: int | None, max_per_addr: int, window_s: float) -> None:
        self._limits = {"addr": max_per_addr}
        if max_per_email is not None:
            self._limits["email"] = max_per_email
        self._window = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _keys(self, email: str, addr: str) -> list[tuple[str, str]]:
        keys = [("addr", addr)]
        if "email" in self._limits:
            keys.append(("email", email.lower()))
        return keys

    def retry_after(self, email: str, addr: str, now: float) -> int:
        """Seconds until a login for (email, addr) may be tried; 0 when it may be now."""
        wait = 0.0
        for key in self._keys(email, addr):
            times = self._recent(key, now)
            if times is not None and len(times) >= self._limits[key[0]]:
                oldest = times[len(times) - self._limits[key[0]]]
                wait = max(wait, oldest + self._window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, email: str, addr: str, now: float) -> None:
        if len(self._failures) >= MAX_KEYS:
            self._sweep(now)
        for key in self._keys(email, addr):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email: str, addr: str | None = None, at: float | None = None) -> None:
        """Clear the email's failures; with `addr` and `at`, also take back the attempt counted
        for that address at `at` (attempts are counted before the password is checked)."""
        self._failures.pop(("email", email.lower()), None)
        times = self._failures.get(("addr", addr)) if addr is not None else None
        if times is not None and at is not None and at in times:
            times.remove(at)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def _sweep(self, now: float) -> None:
        """Forget expired counts; if still full, the oldest keys (bounded memory)."""
        for key in list(self._failures):
            self._recent(key, now)
        excess = len(self._failures) - MAX_KEYS // 2
        for key in list(self._failures)[: max(excess, 0)]:
            del self._failures[key]
