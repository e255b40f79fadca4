"""The whole exception hierarchy of RedisGate.

Every `OSError`, `hiredis.ProtocolError` and `asyncpg` exception is turned into one of these at
the boundary of the module that met it, so callers handle a small, stable set of types.

- `RemoteProtocolError`: the peer broke RESP; it gets one error reply and the connection
  closes. (A refused *command* is not an exception but the session's decision: see below.)
- `LimitExceeded`: a bound on what a tenant may make the gateway hold was reached.
- `UpstreamUnavailable`: the backing Redis is unreachable, refused us, or is too slow.
- `StoreError`: Postgres-side failures and lookups (`NotFound`, `Conflict`, `QuotaExceeded`).
- `RequestError`: a control API request refused (bad JSON, invalid fields, no or bad token,
  role too low, throttled); the control plane maps each type to an HTTP status in one table.
- `ProvisionError`: an instance's Redis could not be started, changed or removed.
- `ConfigError`, `ServiceError`, `MigrationError`: start-up problems, reported to a human.
"""

from __future__ import annotations

import sys


class RedisGateError(Exception):
    """Base of every error RedisGate raises on purpose."""


# --- RESP protocol -------------------------------------------------------------------------


class RemoteProtocolError(RedisGateError):
    """The peer sent something that is not valid RESP, or a frame over the size limits: it
    gets one error reply and the connection closes."""


# --- Per-command refusals ------------------------------------------------------------------
#
# A command the gateway refuses (NOAUTH, WRONGPASS, NOPERM, a rate limit, an unknown command)
# is a decision of the sans-IO session, not an exception: its reply bytes are built where it
# is decided (`wire/encode.encode_error`, the `REPLY_*` constants) and handed to the transport
# (`clients/decisions.Answer`). The one refusal that crosses an await is this:


class LimitExceeded(RedisGateError):
    """A per-instance bound on what a tenant may make the gateway hold was reached (script
    connections); the caller answers `-ERR` with the message."""


# --- Upstream (backing Redis) --------------------------------------------------------------


class UpstreamUnavailable(RedisGateError):
    """The backing Redis of an instance cannot be reached, refused us, or is too slow."""


# --- Store (Postgres) ----------------------------------------------------------------------


class StoreError(RedisGateError):
    """Postgres is unreachable or refused an operation."""


class NotFound(StoreError):
    """The row asked for does not exist (or the caller may not know that it does)."""

    code = "not_found"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.code


class Conflict(StoreError):
    """The change contradicts what is stored (a duplicate, the last owner, a quota)."""

    code = "conflict"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code or self.code
        self.details = details or {}


class QuotaExceeded(Conflict):
    """A create would take an organization past one of its quotas."""

    code = "quota_exceeded"


class MigrationError(StoreError):
    """The migrations folder and the database disagree; start-up must stop."""


# --- Control plane requests (the HTTP API maps each to a status in one place) -------------


class RequestError(RedisGateError):
    """A request the control API refuses; `code` is the stable machine-readable word."""

    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details or {}


class BadRequest(RequestError):
    """The body is not JSON, or not a JSON object."""


class ValidationFailed(RequestError):
    """Well-formed JSON with bad fields; `details["fields"]` names each one."""

    code = "validation_failed"


class Unauthenticated(RequestError):
    code = "unauthenticated"


class Forbidden(RequestError):
    code = "forbidden"


class ServiceUnavailable(RequestError):
    """Something the request needs (a backend Redis, a free database) is not available now."""

    code = "service_unavailable"


class TooManyRequests(RequestError):
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


# --- Provisioning (an instance's own Redis) --------------------------------------------------


class ProvisionError(RedisGateError):
    """An instance's Redis could not be started, changed or removed; the message says why."""


class InvalidSpec(ProvisionError):
    """The requested instance shape is invalid (the caller's mistake, not the machine's)."""


# --- Start-up ------------------------------------------------------------------------------


class ConfigError(RedisGateError):
    """A setting is invalid; the message names the setting, its source and what to do."""


class ServiceError(RedisGateError):
    """A real service (PostgreSQL, redis-server) could not be found, started or stopped."""


def exit_status(exc: RedisGateError) -> int:
    """Print a fatal error the way every `redisgate` command does; the exit status to use
    (2: bad configuration, 1: anything else)."""
    print(f"redisgate: {exc}", file=sys.stderr)
    return 2 if isinstance(exc, ConfigError) else 1
