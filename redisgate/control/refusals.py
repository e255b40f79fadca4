"""Audit rows for refusals (failed logins, 403s), within each address's budget.

Written outside any transaction of the request (which is rolling back), so the record stays;
a database too broken to write it does not change the answer the client gets.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from redisgate import metrics
from redisgate.control.spec import Call
from redisgate.control.state import AUDIT_BUDGET
from redisgate.errors import StoreError
from redisgate.store import audit

log = logging.getLogger(__name__)


async def record_refusal(
    call: Call,
    action: str,
    *,
    org_id: uuid.UUID | None,
    target_type: str,
    target_id: object,
    after: dict[str, Any],
) -> None:
    actor = call.actor()
    suppressed = call.request.app[AUDIT_BUDGET].admit(actor.client_addr, time.monotonic())
    if suppressed is None:
        metrics.AUDIT_SUPPRESSED.labels(action).inc()
        return
    if suppressed:
        after = {**after, "suppressed": suppressed}
    try:
        async with call.connect() as conn:
            await audit.record(
                conn,
                actor,
                action,
                org_id=org_id,
                target_type=target_type,
                target_id=target_id,
                after=after,
            )
    except StoreError as exc:
        log.warning("cannot audit a refusal (%s): %s", action, exc)
