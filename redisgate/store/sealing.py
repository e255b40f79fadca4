"""Backend secrets at rest: AES-256-GCM with a key id, so keys can be rotated.

The passwords the gateway uses to reach backing Redis servers (`instances.backend_password`,
`backend_servers.password`) are stored sealed: `rgs1:<kid>:<base64url(nonce || ciphertext)>`,
with the column's name as associated data (a value copied into another column does not
open). The store seals on write and opens on read, in the functions that map rows, so no
caller handles a sealed value and none can forget to seal one; both planes read them through
`store`, so neither needs the other.

Keys come from `backend_secret_keys` (comma-separated, each 32 random bytes in base64url;
the first seals, every one opens), else from `<data_dir>/backend-secret-key` (0600, created on
first use, as the JWT key is). A process has one keyring, loaded from settings at start-up
by whichever plane starts first (`load`): the gateway and the control API of
`redisgate serve` share it.
Rows written before sealing existed were marked `plain:` by migration 007; they still open,
and `reseal` (run at control-plane start and by `redisgate secrets reseal`) seals them and
re-seals values under keys that are no longer first. docs/security.md has the procedure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from redisgate.config import Settings
from redisgate.errors import ConfigError, StoreError
from redisgate.secret_files import read_or_create
from redisgate.store.db import map_exceptions

SEALED = "rgs1:"
PLAIN = "plain:"
KEY_FILE = "backend-secret-key"
KEY_BYTES = 32
NONCE_BYTES = 12

# (table, primary key, column): every stored backend secret.
COLUMNS = (
    ("instances", "id", "backend_password"),
    ("backend_servers", "id", "password"),
)


def key_id(key: bytes) -> str:
    """A public name for a key that reveals nothing of it."""
    return hashlib.sha256(b"redisgate-backend-kid:" + key).hexdigest()[:12]


def new_key() -> str:
    """A fresh key in the form `backend_secret_keys` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"a backend secret key must be {KEY_BYTES} random bytes in base64url "
            "(`redisgate secrets new-key` prints one)"
        )
    return key


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Seals with the first key; opens with whichever key a value names."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigError("no backend secret key: set backend_secret_keys")

    @property
    def current_kid(self) -> str:
        return key_id(self.keys[0])

    def seal(self, plaintext: str, column: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[0]).encrypt(nonce, plaintext.encode(), column.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{SEALED}{self.current_kid}:{body}"

    def open(self, stored: str, column: str) -> str:
        if stored.startswith(PLAIN):
            return stored[len(PLAIN) :]
        if not stored.startswith(SEALED):
            raise StoreError(f"a {column} is neither sealed nor marked plain: the row was edited")
        kid, _, body = stored[len(SEALED) :].partition(":")
        for key in self.keys:
            if key_id(key) == kid:
                raw = base64.urlsafe_b64decode(body)
                try:
                    plain = AESGCM(key).decrypt(
                        raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode()
                    )
                except InvalidTag:
                    raise StoreError(f"a sealed {column} does not open: damaged or moved") from None
                return plain.decode()
        raise StoreError(
            f"a {column} is sealed with key {kid}, which backend_secret_keys does not hold: "
            "add that key back (after the first) until `redisgate secrets reseal` has run"
        )

    def is_current(self, stored: str) -> bool:
        return stored.startswith(f"{SEALED}{self.current_kid}:")

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.backend_secret_keys:
            texts = [t for t in settings.backend_secret_keys.split(",") if t.strip()]
            return cls(tuple(decode_key(t) for t in texts))
        path = Path(settings.data_dir) / KEY_FILE
        text = read_or_create(
            path, new_key, what="backend secret key", setting="backend_secret_keys"
        )
        return cls((decode_key(text),))


_box: SecretBox | None = None


def configure(box: SecretBox) -> None:
    """Set this process's keyring."""
    global _box
    _box = box


def load(settings: Settings) -> SecretBox:
    """This process's keyring, loaded from `settings` unless one is set already. The control
    app and the gateway's Postgres source both call it at start-up (so `redisgate serve`
    loads it once; tests configure a keyring of their own first)."""
    if _box is None:
        configure(SecretBox.from_settings(settings))
    return box()


def box() -> SecretBox:
    if _box is None:
        raise StoreError("backend secret keys are not loaded in this process (a bug)")
    return _box


def seal(plaintext: str | None, column: str) -> str | None:
    return None if plaintext is None else box().seal(plaintext, column)


def open_sealed(stored: str | None, column: str) -> str | None:
    return None if stored is None else box().open(stored, column)


async def reseal(conn: asyncpg.Connection) -> int:
    """Seal plain values and re-seal those under older keys with the first key; the number
    of values changed. Each row is locked while it changes, so concurrent writers are safe."""
    current = box()
    changed = 0
    for table, pk, column in COLUMNS:
        name = f"{table}.{column}"
        with map_exceptions(f"cannot reseal {name}"):
            rows = await conn.fetch(
                f"SELECT {pk}, {column} FROM {table} WHERE {column} IS NOT NULL "
                f"AND {column} NOT LIKE $1",
                f"{SEALED}{current.current_kid}:%",
            )
            for row in rows:
                value = current.seal(current.open(row[column], name), name)
                result = await conn.execute(
                    f"UPDATE {table} SET {column} = $2 WHERE {pk} = $1 AND {column} = $3",
                    row[pk],
                    value,
                    row[column],
                )
                changed += result.endswith(" 1")
    return changed
