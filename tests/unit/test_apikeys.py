"""API key format, parsing and verification."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from redisgate import api_key_format


def test_minted_key_shape_and_digest() -> None:
    key = api_key_format.mint()
    assert re.fullmatch(r"rg_[a-z2-7]{12}_[A-Za-z0-9_-]{43}", key.token)
    assert key.token.startswith(f"rg_{key.key_id}_")
    assert key.digest == api_key_format.digest(key.token) and len(key.digest) == 64
    assert key.token not in key.digest


def test_keys_are_unique() -> None:
    keys = {api_key_format.mint().token for _ in range(200)}
    assert len(keys) == 200


def test_key_id_of_well_formed_token() -> None:
    key = api_key_format.mint()
    assert api_key_format.key_id_of(key.token.encode()) == key.key_id


def test_verify() -> None:
    key = api_key_format.mint()
    assert api_key_format.verify(key.token.encode(), key.digest)
    tampered = key.token[:-1] + ("A" if key.token[-1] != "A" else "B")
    assert not api_key_format.verify(tampered.encode(), key.digest)


def test_malformed_tokens_have_no_id() -> None:
    key = api_key_format.mint().token
    for bad in [
        b"",
        b"secret",
        b"rg_",
        key[:-10].encode(),
        key.replace("rg_", "xx_").encode(),
        key.replace("_", "-", 2).encode(),
        ("rg_ABCDEFGHIJKL_" + "a" * 43).encode(),
        key.encode() + b"x" * 300,
        "rg_ééééééééééé_".encode() + b"a" * 43,
    ]:
        assert api_key_format.key_id_of(bad) is None, bad


@given(st.binary(max_size=120))
def test_key_id_of_never_raises(data: bytes) -> None:
    result = api_key_format.key_id_of(data)
    assert result is None or len(result) == api_key_format.ID_LENGTH


def test_the_url_carries_the_token_as_the_password() -> None:
    key = api_key_format.mint().token
    assert api_key_format.url(key, "gw.example", 6380) == f"redis://default:{key}@gw.example:6380/0"
