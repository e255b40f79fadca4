"""Usage per API key per UTC day: written by gateways in idempotent batches, read as series.

A gateway sends each batch with its own id and a sequence number; the batch and its
`usage_flushes` row commit together, so a retried batch (the gateway never saw the commit)
is recognised and skipped. Reads sum over keys for an instance or an org and fill the days
without use with zeros, so a series has one entry per day of the range.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from redisgate.store.db import map_exceptions

COUNTERS = ("commands", "bytes_in", "bytes_out", "denied", "limited")
FLUSH_RECORDS_KEPT_DAYS = 7


@dataclass(frozen=True, slots=True)
class UsageRow:
    day: date
    key_id: str
    instance_id: uuid.UUID
    org_id: uuid.UUID
    commands: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    denied: int = 0
    limited: int = 0


async def record(
    conn: asyncpg.Connection, gateway_id: str, seq: int, rows: Sequence[UsageRow]
) -> bool:
    """Add a batch (once): False when this (gateway_id, seq) was applied before."""
    with map_exceptions("cannot record usage"):
        async with conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO usage_flushes (gateway_id, seq) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true",
                gateway_id,
                seq,
            )
            if not fresh:
                return False
            if rows:
                await conn.execute(
                    "INSERT INTO usage_daily AS u (day, key_id, instance_id, org_id, commands, "
                    "bytes_in, bytes_out, denied, limited) "
                    "SELECT * FROM unnest($1::date[], $2::text[], $3::uuid[], $4::uuid[], "
                    "$5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[]) "
                    "ON CONFLICT (day, key_id) DO UPDATE SET "
                    + ", ".join(f"{c} = u.{c} + EXCLUDED.{c}" for c in COUNTERS),
                    [r.day for r in rows],
                    [r.key_id for r in rows],
                    [r.instance_id for r in rows],
                    [r.org_id for r in rows],
                    *([getattr(r, c) for r in rows] for c in COUNTERS),
                )
            await conn.execute(
                "DELETE FROM usage_flushes WHERE flushed_at < now() - make_interval(days => $1)",
                FLUSH_RECORDS_KEPT_DAYS,
            )
    return True


async def daily(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    instance_id: uuid.UUID | None,
    first: date,
    last: date,
) -> list[dict[str, object]]:
    """One entry per day from `first` to `last` (inclusive): the sums of the org's keys (or
    one instance's), zeros where nothing was used."""
    with map_exceptions("cannot read usage"):
        rows = await conn.fetch(
            "SELECT d::date AS day, "
            + ", ".join(f"coalesce(sum(u.{c}), 0)::bigint AS {c}" for c in COUNTERS)
            + " FROM generate_series($2::date, $3::date, interval '1 day') AS d "
            "LEFT JOIN usage_daily u ON u.day = d::date AND u.org_id = $1 "
            "AND ($4::uuid IS NULL OR u.instance_id = $4) "
            "GROUP BY d ORDER BY d",
            org_id,
            first,
            last,
            instance_id,
        )
    return [{"date": r["day"].isoformat(), **{c: int(r[c]) for c in COUNTERS}} for r in rows]


def default_range(today: date, days: int = 30) -> tuple[date, date]:
    return today - timedelta(days=days - 1), today


async def day_totals(
    conn: asyncpg.Connection, day: date, key_ids: Sequence[str], instance_ids: Sequence[uuid.UUID]
) -> dict[tuple[str, str], tuple[int, int]]:
    """What daily quotas count, as flushed so far: per ("key", id) and ("instance", id), the
    commands not refused by a limit and the bytes in and out of `day`; zeros for ids unused."""
    totals: dict[tuple[str, str], tuple[int, int]] = dict.fromkeys(
        [("key", k) for k in key_ids] + [("instance", str(i)) for i in instance_ids], (0, 0)
    )
    net = "sum(commands - limited)::bigint AS commands, sum(bytes_in + bytes_out)::bigint AS bytes"
    with map_exceptions("cannot read today's usage"):
        if key_ids:
            for r in await conn.fetch(
                f"SELECT key_id AS id, {net} FROM usage_daily "
                "WHERE day = $1 AND key_id = ANY($2::text[]) GROUP BY key_id",
                day,
                list(key_ids),
            ):
                totals[("key", r["id"])] = (int(r["commands"]), int(r["bytes"]))
        if instance_ids:
            for r in await conn.fetch(
                f"SELECT instance_id AS id, {net} FROM usage_daily "
                "WHERE day = $1 AND instance_id = ANY($2::uuid[]) GROUP BY instance_id",
                day,
                list(instance_ids),
            ):
                totals[("instance", str(r["id"]))] = (int(r["commands"]), int(r["bytes"]))
    return totals
