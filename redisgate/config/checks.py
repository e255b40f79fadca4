"""The checks behind each setting of `config.Settings`: plain functions, value in, problem out.

Each returns None for a good value, or a short phrase saying what is wrong (`config` prefixes
it with the setting's name, value and source). Kept apart so the declarations stay readable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Validator = Callable[[Any], str | None]
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_WORKERS = 256  # a typo like 1000 should not fork a thousand gateways


def provisioner(value: Any) -> str | None:
    return None if value in ("local", "static") else "must be local or static"


def parse_port_range(value: str) -> tuple[int, int]:
    """`FIRST-LAST` as two ports; ValueError when it is not a valid range."""
    first, _, last = value.partition("-")
    low, high = int(first), int(last)
    if not 1 <= low <= high <= 65535:
        raise ValueError(value)
    return low, high


def port_range(value: Any) -> str | None:
    if value is None:
        return None
    try:
        parse_port_range(value)
    except ValueError:
        return "must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535, e.g. 20000-20999"
    return None


def port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port, 0-65535 (0 picks a free one)"


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def at_least_one(value: Any) -> str | None:
    return None if value >= 1 else "must be 1 or more"


def console_key_ttl(value: Any) -> str | None:
    return None if 1 <= value <= 900 else "must be 1-900 seconds (a console key is short-lived)"


def percent(value: Any) -> str | None:
    return None if 1 <= value <= 100 else "must be a percentage, 1-100"


def workers(value: Any) -> str | None:
    return None if 1 <= value <= MAX_WORKERS else f"must be 1-{MAX_WORKERS}"


def not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def existing_file(value: Any) -> str | None:
    if value is None or Path(value).is_file():
        return None
    return "is not an existing file: fix the path or unset it"


def log_level(value: Any) -> str | None:
    return None if value in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


def existing_dir(value: Any) -> str | None:
    if value is None or Path(value).is_dir():
        return None
    return "is not an existing directory: fix the path or unset it to search the usual places"


def not_empty(value: Any) -> str | None:
    return None if str(value).strip() else "must not be empty"


def postgres_dsn(value: Any) -> str | None:
    if value is None:
        return None
    if urlsplit(value).scheme not in ("postgres", "postgresql"):
        return "must be a URL like postgresql://user:password@host:5432/dbname"
    return None


def origins(value: Any) -> str | None:
    for origin in str(value).split(","):
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            return "must be origins like https://dash.example.com, separated by commas"
    return None


def origins_or_any(value: Any) -> str | None:
    return None if str(value).strip() == "*" else origins(value)


def ip_list(value: Any) -> str | None:
    try:
        for item in str(value).split(","):
            ipaddress.ip_address(item.strip())
    except ValueError:
        return "must be IP addresses separated by commas"
    return None


def jwt_secret(value: Any) -> str | None:
    return None if len(str(value)) >= 32 else "must be at least 32 characters"


def argon2_memory(value: Any) -> str | None:
    return None if value >= 64 else "must be at least 64 (KiB)"
