"""Login throttling: exponential delays that slow guessing without locking the owner out.

Sans-IO (the caller passes `now`). Two kinds of count, each a number of failures and the time
of the last one:

- per (email, client address): after `pair_free` failures, each further try of that email
  from that address must wait 1 s, then 2, 4, ... up to `max_delay_s` after the last
  failure. The email is never throttled as such, so the owner typing the right password
  from any address where nobody failed for their email logs in at once: an attacker can
  slow their own guesses, never lock someone else out.
- per client address, across emails: after `addr_free` failures the same doubling delay.
  This bounds one attacker's guesses however many emails they try.

A request inside its wait is refused before its password is hashed (the caller checks
`retry_after` first). Attempts are counted before the (slow) check and taken back on success,
so concurrent guesses cannot all slip past while the first ones are being verified. A success
clears its pair but only takes back its own attempt from the address, so logging in to one's
own account does not reset a guessing address. A count is forgotten `forget_after_s` after its
last failure. Counts live in this process: with several control API processes each counts
its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_KEYS = 100_000
BASE_DELAY_S = 1.0

Key = tuple[str, ...]


@dataclass(slots=True)
class _Count:
    failures: int
    last: float


class LoginThrottle:
    """Doubling delays per (email, address) and per address; `pair_free=None` counts
    addresses only (what registrations use)."""

    def __init__(
        self,
        *,
        pair_free: int | None,
        addr_free: int,
        max_delay_s: float,
        forget_after_s: float,
    ) -> None:
        self._free = {"addr": addr_free}
        if pair_free is not None:
            self._free["pair"] = pair_free
        self.max_delay_s = max_delay_s
        self._forget_after = max(forget_after_s, max_delay_s)
        self._counts: dict[Key, _Count] = {}

    def delay_after(self, failures: int, free: int) -> float:
        """The wait after the last of `failures` failures (0 while within `free`)."""
        if failures < free:
            return 0.0
        exponent = failures - free
        if exponent >= 64:
            return self.max_delay_s
        return float(min(self.max_delay_s, BASE_DELAY_S * 2**exponent))

    def retry_after(self, email: str, addr: str, now: float) -> int:
        """Seconds until a login for (email, addr) may be tried; 0 when it may be now."""
        wait = 0.0
        for key in self._keys(email, addr):
            count = self._live(key, now)
            if count is not None:
                delay = self.delay_after(count.failures, self._free[key[0]])
                wait = max(wait, count.last + delay - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, email: str, addr: str, now: float) -> None:
        """Count a failed (or not yet checked) attempt."""
        if len(self._counts) >= MAX_KEYS:
            self._sweep(now)
        for key in self._keys(email, addr):
            count = self._live(key, now)
            if count is None:
                self._counts[key] = _Count(1, now)
            else:
                count.failures += 1
                count.last = max(count.last, now)

    def succeeded(self, email: str, addr: str) -> None:
        """The attempt counted for (email, addr) was right: clear the pair, and take that one
        attempt back from the address."""
        self._counts.pop(("pair", email.lower(), addr), None)
        count = self._counts.get(("addr", addr))
        if count is not None:
            count.failures -= 1
            if count.failures <= 0:
                del self._counts[("addr", addr)]

    def _keys(self, email: str, addr: str) -> list[Key]:
        keys: list[Key] = [("addr", addr)]
        if "pair" in self._free:
            keys.append(("pair", email.lower(), addr))
        return keys

    def _live(self, key: Key, now: float) -> _Count | None:
        count = self._counts.get(key)
        if count is not None and now - count.last >= self._forget_after:
            del self._counts[key]
            return None
        return count

    def _sweep(self, now: float) -> None:
        """Forget stale counts; if still full, the oldest keys (bounded memory)."""
        for key in list(self._counts):
            self._live(key, now)
        excess = len(self._counts) - MAX_KEYS // 2
        for key in list(self._counts)[: max(excess, 0)]:
            del self._counts[key]
