"""The limits a request framer enforces by default and the words it refuses with: Redis's
own (networking.c), so clients see what Redis would have said, and, for the request size,
the words managed Redis services use (docs/limits.md).

These are RESP's framing limits (array length, bulk length, inline size, request size), not
the per-key and per-instance data-plane limits (`redisgate.limits`, enforced in
`proxy/policy/`); a key's `max_request_bytes` reaches the framer as a tighter request size."""

from typing import Any

__all__ = [
    "DEFAULT_MAX_ARRAY_LEN",
    "DEFAULT_MAX_BULK_BYTES",
    "DEFAULT_MAX_INLINE_BYTES",
    "DEFAULT_MAX_REQUEST_BYTES",
    "ERR_BULK_COUNT_TOO_BIG",
    "ERR_BULK_LENGTH",
    "ERR_BULK_NOT_TERMINATED",
    "ERR_EXPECTED_DOLLAR",
    "ERR_INLINE_TOO_BIG",
    "ERR_MULTIBULK_COUNT_TOO_BIG",
    "ERR_MULTIBULK_LENGTH",
    "ERR_REQUEST_TOO_BIG",
    "ERR_UNAUTHENTICATED_BULK",
    "ERR_UNAUTHENTICATED_MULTIBULK",
    "ERR_UNBALANCED_QUOTES",
    "PRE_AUTH_LIMITS",
    "REQUEST_TOO_BIG_PREFIX",
]

# Redis's defaults: proto-max-bulk-len, PROTO_INLINE_MAX_SIZE, client-query-buffer-limit; the
# array cap is Redis 6's (Redis 7 allows INT_MAX, but nobody needs a million arguments).
DEFAULT_MAX_ARRAY_LEN = 1024 * 1024
DEFAULT_MAX_BULK_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_INLINE_BYTES = 64 * 1024
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024 * 1024

# Before AUTH a client may send little: Redis's own pre-AUTH array and bulk limits (so the
# errors are Redis's), and 8 KiB in all (Redis: 10 x 16 KiB), plenty for
# `HELLO 3 AUTH user key SETNAME name`: an anonymous connection holds next to nothing.
PRE_AUTH_LIMITS: dict[str, Any] = {
    "max_array_len": 10,
    "max_bulk_bytes": 16384,
    "max_inline_bytes": 4096,
    "max_request_bytes": 8192,
    "unauthenticated": True,
}

# Redis 7 networking.c wording, so clients see what Redis would have said.
ERR_MULTIBULK_LENGTH = "Protocol error: invalid multibulk length"
ERR_BULK_LENGTH = "Protocol error: invalid bulk length"
ERR_MULTIBULK_COUNT_TOO_BIG = "Protocol error: too big mbulk count string"
ERR_BULK_COUNT_TOO_BIG = "Protocol error: too big bulk count string"
ERR_INLINE_TOO_BIG = "Protocol error: too big inline request"
ERR_UNBALANCED_QUOTES = "Protocol error: unbalanced quotes in request"
ERR_EXPECTED_DOLLAR = "Protocol error: expected '$', got '{}'"
# Ours: Redis skips the two bytes after bulk data unchecked; we refuse to guess.
ERR_BULK_NOT_TERMINATED = "Protocol error: bulk data not followed by CRLF"
# The words managed Redis services use (docs/limits.md); the connection closes after it.
ERR_REQUEST_TOO_BIG = "max request size exceeded (limit {} bytes)"
REQUEST_TOO_BIG_PREFIX = ERR_REQUEST_TOO_BIG.split("(")[0]
# Redis 7's words for its pre-AUTH limits; used for ours while `unauthenticated` is set.
ERR_UNAUTHENTICATED_MULTIBULK = "Protocol error: unauthenticated multibulk length"
ERR_UNAUTHENTICATED_BULK = "Protocol error: unauthenticated bulk length"
