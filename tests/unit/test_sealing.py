"""Sealing backend secrets: AES-GCM with key ids, rotation, the marked plain format."""

from __future__ import annotations

from pathlib import Path

import pytest

from redisgate.config.load import load_settings
from redisgate.errors import ConfigError, StoreError
from redisgate.store.sealing import SecretBox, decode_key, new_key

COLUMN = "instances.backend_password"


def box(*keys: str) -> SecretBox:
    return SecretBox(tuple(decode_key(k) for k in keys))


def test_sealed_values_open_and_hide_the_secret() -> None:
    b = box(new_key())
    sealed = b.seal("hunter2-backend", COLUMN)
    assert sealed.startswith(f"rgs1:{b.current_kid}:") and "hunter2" not in sealed
    assert b.seal("hunter2-backend", COLUMN) != sealed  # a fresh nonce each time
    assert b.open(sealed, COLUMN) == "hunter2-backend"
    assert b.is_current(sealed)


def test_a_value_moved_to_another_column_does_not_open() -> None:
    b = box(new_key())
    with pytest.raises(StoreError, match="does not open"):
        b.open(b.seal("s", COLUMN), "backend_servers.password")


def test_rotation_old_keys_open_new_writes_use_the_first() -> None:
    old, new = new_key(), new_key()
    sealed_old = box(old).seal("s", COLUMN)
    rotated = box(new, old)
    assert rotated.open(sealed_old, COLUMN) == "s"
    assert not rotated.is_current(sealed_old)
    assert rotated.is_current(rotated.seal("s", COLUMN))
    with pytest.raises(StoreError, match="does not hold"):
        box(new).open(sealed_old, COLUMN)


def test_plain_rows_are_read_only_when_marked() -> None:
    b = box(new_key())
    assert b.open("plain:legacy", COLUMN) == "legacy"
    with pytest.raises(StoreError, match="neither sealed nor marked"):
        b.open("legacy", COLUMN)


def test_keys_from_settings_or_a_private_file(tmp_path: Path) -> None:
    a, b = new_key(), new_key()
    given = SecretBox.from_settings(
        load_settings(env={"REDISGATE_BACKEND_SECRET_KEYS": f"{a},{b}"})
    )
    assert given.keys == (decode_key(a), decode_key(b))
    settings = load_settings(env={"REDISGATE_DATA_DIR": str(tmp_path)})
    first = SecretBox.from_settings(settings)
    assert (tmp_path / "backend-secret-key").stat().st_mode & 0o777 == 0o600
    assert SecretBox.from_settings(settings) == first  # the same key after a restart
    with pytest.raises(ConfigError, match="32 random bytes"):
        decode_key("too-short")
