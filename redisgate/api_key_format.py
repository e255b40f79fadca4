"""API keys: opaque, high-entropy tokens with a recognisable prefix and a public id.

A token reads `rg_<id>_<secret>`: `rg_` tells humans and secret scanners what it is, `<id>`
(12 lowercase base32 characters) is public and names the key's record, and `<secret>` carries
256 bits of randomness. Only the SHA-256 digest of the whole token is stored. A gateway finds
the record by id and compares digests in constant time, so neither a lookup's timing nor a
stored record reveals the secret. A plain hash (no salt, no stretching) is right here: the
secret is random, not a password, so there is nothing to brute-force.

Both planes use this module: the control plane mints keys, the data plane checks them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "rg_"
ID_LENGTH = 12
SECRET_BYTES = 32
_ID_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_MIN_SECRET_LENGTH = 40


@dataclass(frozen=True, slots=True)
class MintedKey:
    """A new key: `token` is shown to its owner once; only `key_id` and `digest` are kept."""

    key_id: str
    token: str
    digest: str


def digest(token: str | bytes) -> str:
    """Hex SHA-256 of a whole token, as stored."""
    data = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(data).hexdigest()


def mint() -> MintedKey:
    key_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:ID_LENGTH]
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return MintedKey(key_id=key_id, token=token, digest=digest(token))


def key_id_of(token: bytes) -> str | None:
    """The public id of a well-formed token, or None (cheap: no hashing, no lookups)."""
    if len(token) < len(PREFIX) + ID_LENGTH + 1 + _MIN_SECRET_LENGTH or len(token) > 256:
        return None
    try:
        text = token.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text.startswith(PREFIX) or text[len(PREFIX) + ID_LENGTH] != "_":
        return None
    key_id = text[len(PREFIX) : len(PREFIX) + ID_LENGTH]
    return key_id if set(key_id) <= _ID_ALPHABET else None


def url(token: str, host: str, port: int) -> str:
    """The URL a client connects to the gateway with: the token as the password (the gateway
    reads only that; `default` is Redis's user name for password-only AUTH), db 0."""
    return f"redis://default:{token}@{host}:{port}/0"


def verify(token: bytes, stored_digest: str) -> bool:
    """Constant-time comparison of a presented token with a stored digest."""
    return hmac.compare_digest(digest(token), stored_digest)
