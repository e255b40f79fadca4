"""Daily quotas: commands and bytes per UTC day, per key and per instance (sans-IO).

A `DailyQuota` holds what its key or instance used today, as the fleet last told us plus
what this gateway counted since:

- `commands` goes up by one for every command the rate gate lets through, so a single
  gateway stops exactly at the limit; `bytes` (requests and replies) goes up when the gateway
  harvests its clients' counters, once a second, so it may pass up to about a second of
  traffic beyond `daily_bytes`.
- `others` is the part of those totals that other gateways (and earlier processes of this
  one) flushed to `usage_daily`: the database's totals minus what this gateway flushed
  itself (`QuotaBook.flushed`). It is read when the quota is first needed (`unseeded`, before
  the AUTH that needs it succeeds) and again after every usage flush (`idents`, `apply`).

So a fleet of gateways can overshoot a daily quota by what the others counted but had not
flushed, or we had not re-read, when the quota ran out: at most about
`usage flush interval + harvest interval + sync interval` (5 + 1 + 5 s by default) of the
key's traffic through each other gateway (docs/limits.md, "Daily quotas").

A quota counted refused commands (rate limits, the quota itself) nowhere: `usage_daily`
counts them in `commands` and `limited`, and the totals read here are `commands - limited`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import date

from redisgate.limits import Limits
from redisgate.proxy.wire.encode import encode_error

UNLIMITED = 2**63  # more than any limit the columns hold (their maximum is 2**63 - 1)

# (kind, id): ("key", key id) or ("instance", instance id), as in LimitRegistry.
Ident = tuple[str, str]


class DailyQuota:
    """Today's use of one key or instance; see the module docstring."""

    __slots__ = (
        "bytes",
        "bytes_reply",
        "commands",
        "commands_reply",
        "max_bytes",
        "max_commands",
        "others_bytes",
        "others_commands",
        "seeded",
    )

    def __init__(self) -> None:
        self.commands = self.bytes = 0
        self.others_commands = self.others_bytes = 0
        self.max_commands = self.max_bytes = UNLIMITED
        self.commands_reply = self.bytes_reply = b""
        self.seeded = False

    def __repr__(self) -> str:
        return (
            f"<DailyQuota commands={self.commands}/{_shown(self.max_commands)}"
            f" bytes={self.bytes}/{_shown(self.max_bytes)}>"
        )

    def configure(self, limits: Limits) -> None:
        commands, spent = limits.daily_commands, limits.daily_bytes
        self.max_commands = UNLIMITED if commands is None else commands
        self.max_bytes = UNLIMITED if spent is None else spent
        self.commands_reply = (
            _exceeded("request", commands, "commands") if commands is not None else b""
        )
        self.bytes_reply = _exceeded("bandwidth", spent, "bytes") if spent is not None else b""

    def refusal(self) -> tuple[str, bytes] | None:
        """(limit kind, error reply) when today's quota is spent, else None."""
        if self.commands >= self.max_commands:
            return ("daily_commands", self.commands_reply)
        if self.bytes >= self.max_bytes:
            return ("daily_bytes", self.bytes_reply)
        return None

    def set_others(self, commands: int, spent: int) -> None:
        """What the rest of the fleet used today, as last read; our own count stays."""
        self.commands += commands - self.others_commands
        self.bytes += spent - self.others_bytes
        self.others_commands, self.others_bytes = commands, spent
        self.seeded = True


def has_quota(limits: Limits) -> bool:
    return limits.daily_commands is not None or limits.daily_bytes is not None


class QuotaBook:
    """The daily quotas of one gateway process, and what it flushed of each today.

    Quotas live until the day ends (`roll`), also without connections: a quota dropped
    earlier would forget what this gateway counted but had not flushed yet.
    """

    def __init__(self, day: date) -> None:
        self.day = day
        self.quotas: dict[Ident, DailyQuota] = {}
        self._flushed: dict[Ident, list[int]] = {}  # today: [commands - limited, bytes]

    def __repr__(self) -> str:
        return f"<QuotaBook {self.day} [{len(self.quotas)} quotas]>"

    def get(self, ident: Ident, limits: Limits) -> DailyQuota:
        """The quota of `ident`, created (unseeded) if new, held to `limits`."""
        quota = self.quotas.get(ident)
        if quota is None:
            quota = self.quotas[ident] = DailyQuota()
        quota.configure(limits)
        return quota

    def roll(self, day: date, connected: Iterable[Ident]) -> bool:
        """A new UTC day: every count starts from zero; quotas nobody uses go. True if so."""
        if day == self.day:
            return False
        keep = set(connected)
        self.day = day
        self._flushed.clear()
        for ident in list(self.quotas):
            if ident not in keep:
                del self.quotas[ident]
                continue
            quota = self.quotas[ident]
            quota.commands = quota.bytes = quota.others_commands = quota.others_bytes = 0
            quota.seeded = False  # yesterday's reads say nothing about today
        return True

    def flushed(self, day: date, ident: Ident, commands: int, spent: int) -> None:
        """This gateway's flush of `ident`'s use committed (commands net of refusals)."""
        if day != self.day or ident not in self.quotas:
            return
        total = self._flushed.get(ident)
        if total is None:
            self._flushed[ident] = [commands, spent]
        else:
            total[0] += commands
            total[1] += spent

    def idents(self, unseeded_only: bool = False) -> tuple[list[str], list[str]]:
        """(key ids, instance ids) whose totals to read."""
        keys: list[str] = []
        instances: list[str] = []
        for (kind, ident), quota in self.quotas.items():
            if unseeded_only and quota.seeded:
                continue
            (keys if kind == "key" else instances).append(ident)
        return keys, instances

    def apply(self, day: date, totals: Mapping[Ident, tuple[int, int]]) -> None:
        """Totals read from `usage_daily` for `day` (commands net of refusals, bytes); an
        ident missing from `totals` read as zero. Reads of another day are ignored."""
        if day != self.day:
            return
        for ident, (commands, spent) in totals.items():
            quota = self.quotas.get(ident)
            if quota is None:
                continue
            own = self._flushed.get(ident, (0, 0))
            quota.set_others(max(0, commands - own[0]), max(0, spent - own[1]))


def _shown(limit: int) -> str:
    return "-" if limit == UNLIMITED else str(limit)


@functools.lru_cache(maxsize=256)
def _exceeded(what: str, limit: int, unit: str) -> bytes:
    """The refusal of a spent daily quota: its limit and when it starts again."""
    return encode_error(
        "ERR",
        f"max daily {what} limit exceeded (limit {limit} {unit} per UTC day; resets at 00:00 UTC)",
    )
