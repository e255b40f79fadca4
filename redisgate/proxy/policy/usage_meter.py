"""Usage metering in the gateway: counted per client on the hot path, summed per key per UTC
day once a second, flushed to PostgreSQL in idempotent batches (sans-IO: no clock, no I/O).

Each client keeps five plain integers (commands, bytes in, bytes out, denied, limited: its
`UsageCounters`) that the hot path bumps; the gateway's `UsageRecorder`
(`clients/usage_recorder.py`) `harvest`s them into this meter, from the 1 s sweep and on
disconnect, under the day it runs in (so a count lands at most one sweep, about a second,
after midnight into the next day). `batch()` hands out what is pending as a numbered batch; a
batch stays the one handed out until `done()`, so a flush that failed (or whose commit was not
seen) is retried with the same number, which the store recognises: nothing is counted twice,
nothing is dropped, and counts that arrive meanwhile wait for the next batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from redisgate.store.usage import UsageRow


class UsageCounters:
    """One client's use since the gateway last took it: bumped on the hot path (commands,
    bytes in and out, rate and size refusals), the session's own denial and refusal totals
    read at `take`."""

    __slots__ = ("_denied_seen", "_limited_seen", "bytes_in", "bytes_out", "commands", "limited")

    def __init__(self) -> None:
        self.commands = self.bytes_in = self.bytes_out = self.limited = 0
        self._denied_seen = self._limited_seen = 0

    def take(self, denied: int, limited: int) -> tuple[int, int, int, int, int]:
        """What was used since the last call (commands, bytes in, bytes out, denied, limited),
        given the session's running totals of denials and refusals; the counters restart."""
        counts = (
            self.commands,
            self.bytes_in,
            self.bytes_out,
            denied - self._denied_seen,
            self.limited + limited - self._limited_seen,
        )
        self.commands = self.bytes_in = self.bytes_out = self.limited = 0
        self._denied_seen, self._limited_seen = denied, limited
        return counts


class UsageMeter:
    def __init__(self, gateway_id: str | None = None) -> None:
        self.gateway_id = gateway_id or uuid.uuid4().hex
        self._pending: dict[tuple[date, str], list[int]] = {}
        self._owners: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}  # key id -> (instance, org)
        self._seq = 0
        self._batch: tuple[int, list[UsageRow]] | None = None

    def add(
        self,
        day: date,
        key_id: str,
        instance_id: uuid.UUID,
        org_id: uuid.UUID,
        counts: Sequence[int],
    ) -> None:
        """Add one client's counts (commands, bytes_in, bytes_out, denied, limited)."""
        if not any(counts):
            return
        self._owners[key_id] = (instance_id, org_id)
        total = self._pending.get((day, key_id))
        if total is None:
            self._pending[(day, key_id)] = list(counts)
        else:
            for i, value in enumerate(counts):
                total[i] += value

    def batch(self) -> tuple[int, list[UsageRow]] | None:
        """The batch to flush: the unacknowledged one, else a new one of what is pending."""
        if self._batch is None and self._pending:
            self._seq += 1
            rows = [
                UsageRow(day, key_id, *self._owners[key_id], *counts)
                for (day, key_id), counts in self._pending.items()
            ]
            self._pending.clear()
            self._batch = (self._seq, rows)
        return self._batch

    def done(self, seq: int) -> None:
        """The batch `seq` is stored (or was already): hand out a new one next time."""
        if self._batch is not None and self._batch[0] == seq:
            self._batch = None

    @property
    def empty(self) -> bool:
        return self._batch is None and not self._pending
