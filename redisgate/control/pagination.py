"""Opaque cursors for keyset pagination: the sort key of the last row, base64url JSON."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from redisgate.errors import ValidationFailed

DEFAULT_LIMIT = 50


def encode(key: list[Any]) -> str:
    text = json.dumps([str(k) if not isinstance(k, int) else k for k in key])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _foreign() -> ValidationFailed:
    return ValidationFailed(
        "the cursor is not one this API gave out",
        details={"fields": {"cursor": "is not a cursor from a previous page"}},
    )


def _decode(cursor: str) -> list[Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise _foreign() from None
    if not isinstance(data, list):
        raise _foreign()
    return data


def time_id(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A (created_at, id) cursor."""
    if cursor is None:
        return None
    data = _decode(cursor)
    try:
        return datetime.fromisoformat(data[0]), uuid.UUID(data[1])
    except (ValueError, IndexError, TypeError):
        raise _foreign() from None


def time_text(cursor: str | None) -> tuple[datetime, str] | None:
    """A (created_at, text id) cursor (API keys are named by their public id)."""
    if cursor is None:
        return None
    data = _decode(cursor)
    try:
        return datetime.fromisoformat(data[0]), str(data[1])
    except (ValueError, IndexError, TypeError):
        raise _foreign() from None


def integer(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    data = _decode(cursor)
    if len(data) != 1 or not isinstance(data[0], int):
        raise _foreign()
    return int(data[0])


def page(items: list[dict[str, Any]], limit: int, key: list[Any] | None) -> dict[str, Any]:
    """The page body; a cursor only when the page is full (there may be more)."""
    return {"items": items, "next_cursor": encode(key) if key and len(items) >= limit else None}
