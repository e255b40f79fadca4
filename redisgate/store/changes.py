"""Change notices: PostgreSQL NOTIFY, sent inside the transaction that makes the change.

Two channels. `CHANNEL` carries what gateways enforce (`notify`: a key, an instance, an org's
default limits); `EVENTS_CHANNEL` carries what only people watching need (`announce`: a key
or instance created, a member, an org renamed or deleted, a quota, a session ended), so
gateways are never woken for those. The control API's live updates
(`GET /v1/orgs/{id}/events`, control/events.py) listen on both: `event_of` turns either
channel's notice into the event a console sees.

PostgreSQL delivers a notice to listeners only when its transaction commits (and never if it
rolls back), so whoever hears of a change can read it. The payload names what changed (and
its org), never how: readers fetch the current state themselves, so a missed or repeated
notice cannot make them wrong, only late.
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
EVENTS_CHANNEL = "redisgate_events"
# What people watching an org see (the `kind` of an event), and the internal "session" notice
# (a user's sessions ended: their streams check theirs is still live).
EVENT_KINDS = ("instance", "key", "member", "org", "quota")
ANNOUNCE_KINDS = (*EVENT_KINDS, "session")


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # "key" (an API key's public id), "instance" or "org" (their ids)
    id: str
    sent_at: float = 0.0  # the control plane's wall clock when it notified (for lag metrics)
    org_id: str | None = None  # the org it belongs to, when the sender knew it


@dataclass(frozen=True, slots=True)
class Event:
    """What changed in an org, as the live-update stream sends it (`id`: the instance, key,
    member's user, or org). Kind "session" never reaches a stream: `id` is a user whose
    sessions ended."""

    kind: str
    id: str
    org_id: str | None

    def public(self) -> dict[str, str | None]:
        return {"kind": self.kind, "id": self.id, "org_id": self.org_id}


def _payload(kind: str, target: str | uuid.UUID, org_id: uuid.UUID | str | None) -> str:
    data: dict[str, object] = {"kind": kind, "id": str(target), "at": time.time()}
    if org_id is not None:
        data["org"] = str(org_id)
    return json.dumps(data)


async def notify(
    conn: asyncpg.Connection,
    kind: str,
    target: str | uuid.UUID,
    org_id: uuid.UUID | str | None = None,
) -> None:
    """Tell every gateway, once this transaction commits, that `kind` `target` changed (and
    the live-update streams of `org_id`)."""
    assert kind in KINDS
    with map_exceptions("cannot notify the gateways"):
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, _payload(kind, target, org_id))


async def announce(
    conn: asyncpg.Connection,
    kind: str,
    target: str | uuid.UUID,
    org_id: uuid.UUID | str | None,
) -> None:
    """Tell the live-update streams of `org_id`, once this transaction commits, that `kind`
    `target` changed (a change no gateway needs to hear of)."""
    assert kind in ANNOUNCE_KINDS
    with map_exceptions("cannot send the change notice"):
        await conn.execute(
            "SELECT pg_notify($1, $2)", EVENTS_CHANNEL, _payload(kind, target, org_id)
        )


def parse(payload: str) -> Change | None:
    """A notice's payload, or None for one this version does not understand."""
    try:
        data = json.loads(payload)
        org = data.get("org")
        change = Change(
            str(data["kind"]),
            str(data["id"]),
            float(data.get("at", 0.0)),
            None if org is None else str(org),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return change if change.kind in KINDS else None


# A gateway notice's kind -> the event people see ("org" there: an org's default limits).
_GATEWAY_EVENTS = {"key": "key", "instance": "instance", "org": "quota"}


def event_of(channel: str, payload: str) -> Event | None:
    """The event a notice on `channel` means, or None (malformed, or of a kind unknown here)."""
    try:
        data = json.loads(payload)
        kind, ident, org = str(data["kind"]), str(data["id"]), data.get("org")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if channel == CHANNEL:
        kind = _GATEWAY_EVENTS.get(kind, "")
        if kind == "quota" and org is None:
            org = ident  # an org's default limits: the notice names the org itself
    if kind not in ANNOUNCE_KINDS:
        return None
    return Event(kind, ident, None if org is None else str(org))
