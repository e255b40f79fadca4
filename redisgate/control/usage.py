"""Usage of an organization or one instance, per UTC day (`.../usage?from=&to=`).

The gateways count every command on the hot path and flush per key per day at least every
few seconds (`proxy/clients/usage_recorder.py`); these routes sum the keys. A range is at most
a year; by default the last 30 days, today included (today's figures grow as gateways flush).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from redisgate.control.spec import Call, Param, obj, reply
from redisgate.errors import ValidationFailed
from redisgate.store import instances, usage

MAX_DAYS = 366
COUNT = {"type": "integer", "minimum": 0}
DAY = obj({"date": {"type": "string", "format": "date"}, **{c: COUNT for c in usage.COUNTERS}})
USAGE_REPLY: dict[str, Any] = obj({"days": {"type": "array", "items": DAY}})
QUERY = (
    Param("from", {"type": "string", "format": "date"}, "First day (default: 29 days ago)."),
    Param("to", {"type": "string", "format": "date"}, "Last day, included (default: today)."),
)


def _range(call: Call) -> tuple[date, date]:
    first, last = usage.default_range(datetime.now(UTC).date())
    if "to" in call.query:
        last = date.fromisoformat(call.query["to"])
        first = last - timedelta(days=29)
    if "from" in call.query:
        first = date.fromisoformat(call.query["from"])
    if first > last or (last - first).days >= MAX_DAYS:
        raise ValidationFailed(
            f"from must not be after to, and the range at most {MAX_DAYS} days",
            details={"fields": {"from": f"{first} .. {last} is not a valid range"}},
        )
    return first, last


async def org_usage(call: Call) -> web.StreamResponse:
    assert call.org_id
    first, last = _range(call)
    async with call.connect() as conn:
        days = await usage.daily(conn, org_id=call.org_id, instance_id=None, first=first, last=last)
    return reply({"days": days})


async def instance_usage(call: Call) -> web.StreamResponse:
    assert call.org_id
    first, last = _range(call)
    async with call.connect() as conn:
        instance = await instances.get_instance(conn, call.org_id, call.path_id("instance_id"))
        days = await usage.daily(
            conn, org_id=call.org_id, instance_id=instance.id, first=first, last=last
        )
    return reply({"days": days})
