"""The event hub's fan-out and bounds, without PostgreSQL: notices to events, events to the
streams of their org, a user's session notices to that user's streams, overflow ends a stream."""

from __future__ import annotations

import json
import uuid

import pytest

from redisgate.control import events
from redisgate.control.events import EventHub
from redisgate.errors import TooManyRequests
from redisgate.store import changes


def notice(kind: str, ident: str, org: str | None = None) -> str:
    data = {"kind": kind, "id": ident, "at": 1.0}
    if org:
        data["org"] = org
    return json.dumps(data)


def test_event_of_both_channels() -> None:
    org = str(uuid.uuid4())
    assert changes.event_of(changes.CHANNEL, notice("key", "abc", org)) == changes.Event(
        "key", "abc", org
    )
    # A gateway's "org" notice is an org's default limits: a quota event of that org.
    assert changes.event_of(changes.CHANNEL, notice("org", org)) == changes.Event("quota", org, org)
    assert changes.event_of(changes.EVENTS_CHANNEL, notice("member", "u", org)) == (
        changes.Event("member", "u", org)
    )
    assert changes.event_of(changes.EVENTS_CHANNEL, notice("nonsense", "x", org)) is None
    assert changes.event_of(changes.CHANNEL, "not json") is None
    # Gateways read notices with or without the org, as before.
    assert changes.parse(notice("instance", "i")) == changes.Change("instance", "i", 1.0)
    assert changes.parse(notice("instance", "i", org)) == changes.Change("instance", "i", 1.0, org)
    assert changes.parse(notice("member", "u", org)) is None


async def test_fan_out_by_org_and_sessions_by_user() -> None:
    hub = EventHub("postgresql://unused", max_streams=10, max_per_user=5)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    with (
        hub.stream(alice, uuid.uuid4(), org_a) as a1,
        hub.stream(alice, uuid.uuid4(), org_b) as a2,
        hub.stream(bob, uuid.uuid4(), org_a) as b1,
    ):
        hub._notice(None, 0, changes.EVENTS_CHANNEL, notice("org", str(org_a), str(org_a)))
        assert [s.queue.qsize() for s in (a1, a2, b1)] == [1, 0, 1]
        hub._notice(None, 0, changes.EVENTS_CHANNEL, notice("session", str(alice)))
        assert [s.queue.qsize() for s in (a1, a2, b1)] == [2, 1, 1]
        hub._notice(None, 0, changes.CHANNEL, notice("instance", "i"))  # no org: nobody
        assert hub.streams == 3
    assert hub.streams == 0 and not hub._by_org and not hub._per_user


def test_bounds() -> None:
    hub = EventHub("postgresql://unused", max_streams=3, max_per_user=2)
    alice, bob, org = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with hub.stream(alice, uuid.uuid4(), org), hub.stream(alice, uuid.uuid4(), org):
        with pytest.raises(TooManyRequests, match="events_max_streams_per_user"):
            hub.stream(alice, uuid.uuid4(), org).__enter__()
        with (
            hub.stream(bob, uuid.uuid4(), org),
            pytest.raises(TooManyRequests, match="events_max_streams"),
        ):
            hub.stream(bob, uuid.uuid4(), org).__enter__()
    assert hub.streams == 0


async def test_a_stream_that_falls_behind_is_ended() -> None:
    hub = EventHub("postgresql://unused", max_streams=3, max_per_user=2)
    org = uuid.uuid4()
    with hub.stream(uuid.uuid4(), uuid.uuid4(), org) as stream:
        for i in range(events.QUEUE_MAX + 10):
            hub.publish(changes.Event("key", str(i), str(org)))
        items = [stream.queue.get_nowait() for _ in range(stream.queue.qsize())]
        assert len(items) == events.QUEUE_MAX + 1
        assert items[-1] is events._END
