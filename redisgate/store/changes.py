"""Change notices from the control plane to every gateway: PostgreSQL NOTIFY on one channel.

`notify` runs inside the transaction that makes the change; PostgreSQL delivers the notice to
listeners only when that transaction commits (and never if it rolls back), so a gateway that
hears of a change can read it. The payload names what changed, never how: the gateway reads
the current state itself, so a missed or repeated notice cannot make it wrong, only late.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import asyncpg

from redisgate.store.db import map_exceptions

CHANNEL = "redisgate_changes"
KINDS = ("key", "instance", "org")


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # "key" (an API key's public id), "instance" or "org" (their ids)
    id: str
    sent_at: float = 0.0  # the control plane's wall clock when it notified (for lag metrics)


async def notify(conn: asyncpg.Connection, kind: str, target: str | uuid.UUID) -> None:
    """Tell every gateway, once this transaction commits, that `kind` `target` changed."""
    assert kind in KINDS
    payload = json.dumps({"kind": kind, "id": str(target), "at": time.time()})
    with map_exceptions("cannot notify the gateways"):
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)


def parse(payload: str) -> Change | None:
    """A notice's payload, or None for one this version does not understand."""
    try:
        data = json.loads(payload)
        change = Change(str(data["kind"]), str(data["id"]), float(data.get("at", 0.0)))
    except (ValueError, KeyError, TypeError):
        return None
    return change if change.kind in KINDS else None
