"""How many refusals (failed logins, 403s) one client address may write to the audit log.

Refusals are worth recording, but every row costs a write and an attacker chooses how many
refusals there are: without a bound a guessing loop would flood `audit_log`. Each address may
write `per_window` such rows per `window_s`; beyond that rows are suppressed and counted
(`redisgate_audit_suppressed_total`), and the next row the address writes carries the number
it stands for (`after.suppressed`). Sans-IO (the caller passes `now`); per process.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_KEYS = 100_000


@dataclass(slots=True)
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0


class AuditBudget:
    def __init__(self, per_window: int, window_s: float = 60.0) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}

    def admit(self, addr: str, now: float) -> int | None:
        """None: do not write this row. Otherwise write it, noting the returned number of
        rows suppressed since the address's last one."""
        window = self._windows.get(addr)
        if window is None:
            if len(self._windows) >= MAX_KEYS:
                self._sweep(now)
            window = self._windows[addr] = _Window(now)
        elif now - window.started >= self.window_s:
            window.started, window.written = now, 0
        if window.written >= self.per_window:
            window.suppressed += 1
            return None
        window.written += 1
        suppressed, window.suppressed = window.suppressed, 0
        return suppressed

    def _sweep(self, now: float) -> None:
        """Forget quiet addresses (their suppressed counts are in the metric already)."""
        for addr, window in list(self._windows.items()):
            if now - window.started >= self.window_s:
                del self._windows[addr]
        excess = len(self._windows) - MAX_KEYS // 2
        for addr in list(self._windows)[: max(excess, 0)]:
            del self._windows[addr]
