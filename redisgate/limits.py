"""Data-plane limits as both planes see them: six optional numbers per key, instance and org.

`None` means "inherit" (see `docs/limits.md`): an instance's limit is the tighter of its own
value and its org's default (the org's default is the platform's settings default when the
org has none); a key's limit is its own value, and both the key's and the instance's apply,
so a key can only be stricter than its instance. 0 is a real limit (nothing is allowed:
suspends the key or instance). `burst` is the token bucket's depth (at least 1); unset, it is
one second's worth of the `ops_per_second` set at the same level.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

FIELDS = (
    "ops_per_second",
    "burst",
    "max_connections",
    "max_request_bytes",
    "daily_commands",
    "daily_bytes",
)
# The smallest value of each field (0 suspends; a bucket holds at least one token) and the
# largest (what its Postgres column holds); migrations/004_limits.sql CHECKs the same.
MINIMUM = {name: 1 if name == "burst" else 0 for name in FIELDS}
MAXIMUM = {name: 2**31 - 1 for name in FIELDS[:3]} | {name: 2**63 - 1 for name in FIELDS[3:]}


@dataclass(frozen=True, slots=True)
class Limits:
    ops_per_second: int | None = None
    burst: int | None = None
    max_connections: int | None = None
    max_request_bytes: int | None = None
    daily_commands: int | None = None
    daily_bytes: int | None = None

    def public(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def merged(self, changes: dict[str, int | None]) -> Limits:
        """These limits with the given fields replaced (PATCH: absent fields stay)."""
        return Limits(*(changes.get(name, getattr(self, name)) for name in FIELDS))

    def or_defaults(self, defaults: Limits) -> Limits:
        """Each unset field taken from `defaults` (inheritance, not the tighter of both)."""
        return Limits(
            *(
                getattr(self, name) if getattr(self, name) is not None else getattr(defaults, name)
                for name in FIELDS
            )
        )

    def with_implied_burst(self) -> Limits:
        """A rate without a burst gets one second's worth, so a burst set at another level
        (an org's, the settings') never loosens a rate set here."""
        if self.ops_per_second is None or self.burst is not None:
            return self
        return dataclasses.replace(self, burst=max(1, self.ops_per_second))

    def tighter(self, other: Limits) -> Limits:
        """Field by field, the stricter of both (None is no limit)."""
        return Limits(*(_min(getattr(self, name), getattr(other, name)) for name in FIELDS))


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


NO_LIMITS = Limits()


def default_limits(settings: object) -> Limits:
    """The `default_*` settings: what an instance whose org sets nothing gets."""
    return Limits(*(getattr(settings, "default_" + name) for name in FIELDS))
