"""Authenticator: tokens in, principals out, with its caches driven by an injected `now`."""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from redisgate import api_key_format
from redisgate.backends import Backend
from redisgate.proxy.keys.principals import (
    Authenticator,
    Instance,
    KeyRecord,
    Principal,
    PrincipalSource,
)

T = TypeVar("T")

INSTANCE = Instance(id="cache", name="cache", backend=Backend(host="10.0.0.5", port=6379, db=2))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends (the sources here answer at once): no loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the coroutine suspended; it was expected to finish at once")


class DictSource:
    """A PrincipalSource over a dict, recording every id it is asked for."""

    def __init__(self, *keys: api_key_format.MintedKey) -> None:
        self.records: dict[str, KeyRecord] = {}
        self.asked: list[str] = []
        for i, key in enumerate(keys):
            self.add(key, f"key-{i}")

    def add(self, key: api_key_format.MintedKey, name: str) -> Principal:
        who = Principal(key_id=key.key_id, key_name=name, instance=INSTANCE)
        self.records[key.key_id] = KeyRecord(key.key_id, key.digest, who)
        return who

    async def get_key(self, key_id: str) -> KeyRecord | None:
        self.asked.append(key_id)
        return self.records.get(key_id)


def test_dict_source_is_a_principal_source() -> None:
    source: PrincipalSource = DictSource()  # checked by mypy: the protocol is satisfied
    assert run(source.get_key("x")) is None


def fake_token(key_id: str) -> bytes:
    """A well-formed token with this id and a secret nobody minted."""
    return f"rg_{key_id}_{'A' * 43}".encode()


KEY = api_key_format.mint()
OTHER = api_key_format.mint()


def auth(authenticator: Authenticator, token: bytes | str, now: float) -> Principal | None:
    data = token.encode() if isinstance(token, str) else token
    return run(authenticator.authenticate(data, now))


# --- Tokens --------------------------------------------------------------------------------


def test_a_good_token_gives_its_principal() -> None:
    source = DictSource()
    who = source.add(KEY, "web")
    authenticator = Authenticator(source)
    assert auth(authenticator, KEY.token, 0.0) is who
    assert source.asked == [KEY.key_id]
    assert authenticator.lookups == 1


@pytest.mark.parametrize(
    "token",
    [
        b"",
        b"password",
        b"rg_",
        b"rg_abcdefghijkl",  # no secret
        b"rg_abcdefghijkl_" + b"s" * 39,  # secret too short
        b"rg_abcdefghijkl_" + b"s" * 300,  # too long
        b"xx_abcdefghijkl_" + b"s" * 43,  # wrong prefix
        b"rg_ABCDEFGHIJKL_" + b"s" * 43,  # id outside base32 lowercase
        b"rg_abcdefghijk1_" + b"s" * 43,  # '1' is not base32
        b"rg_abcdefghijklX" + b"s" * 43,  # no separator after the id
        b"rg_abcdefghij\xff\xfe_" + b"s" * 43,  # not ASCII
    ],
)
def test_malformed_tokens_never_reach_the_source(token: bytes) -> None:
    source = DictSource(KEY)
    authenticator = Authenticator(source)
    assert auth(authenticator, token, 0.0) is None
    assert source.asked == []
    assert authenticator.lookups == 0


def test_a_wrong_secret_for_a_known_id_fails() -> None:
    source = DictSource()
    source.add(KEY, "web")
    authenticator = Authenticator(source)
    assert auth(authenticator, fake_token(KEY.key_id), 0.0) is None
    # the record is cached, and a wrong secret still fails against the cached digest
    assert auth(authenticator, fake_token(KEY.key_id), 1.0) is None
    last = "y" if KEY.token.endswith("x") else "x"
    assert auth(authenticator, KEY.token[:-1] + last, 1.0) is None
    assert authenticator.lookups == 1
    assert auth(authenticator, KEY.token, 1.0) is not None
    assert authenticator.lookups == 1


def test_keys_of_one_source_do_not_mix() -> None:
    source = DictSource()
    first = source.add(KEY, "first")
    second = source.add(OTHER, "second")
    authenticator = Authenticator(source)
    assert auth(authenticator, KEY.token, 0.0) is first
    assert auth(authenticator, OTHER.token, 0.0) is second
    # OTHER's secret under KEY's id is a wrong secret
    swapped = KEY.token.replace(KEY.key_id, OTHER.key_id)
    assert auth(authenticator, swapped, 0.0) is None


# --- Positive cache ------------------------------------------------------------------------


def test_positive_cache_serves_until_the_ttl_ends() -> None:
    source = DictSource(KEY)
    authenticator = Authenticator(source, ttl_s=5.0)
    assert auth(authenticator, KEY.token, 100.0) is not None
    assert auth(authenticator, KEY.token, 104.999) is not None
    assert source.asked == [KEY.key_id]
    assert auth(authenticator, KEY.token, 105.0) is not None  # expired: asked again
    assert source.asked == [KEY.key_id] * 2
    assert auth(authenticator, KEY.token, 109.9) is not None
    assert authenticator.lookups == 2


def test_a_key_removed_at_the_source_works_until_the_ttl_ends() -> None:
    source = DictSource(KEY)
    authenticator = Authenticator(source, ttl_s=5.0)
    assert auth(authenticator, KEY.token, 0.0) is not None
    del source.records[KEY.key_id]
    assert auth(authenticator, KEY.token, 4.0) is not None
    assert auth(authenticator, KEY.token, 5.0) is None
    assert auth(authenticator, KEY.token, 5.1) is None  # now negatively cached
    assert authenticator.lookups == 2


# --- Negative cache ------------------------------------------------------------------------


def test_unknown_ids_are_negatively_cached_for_their_ttl() -> None:
    source = DictSource()
    authenticator = Authenticator(source, negative_ttl_s=2.0)
    token = fake_token("aaaaaaaaaaaa")
    for now in (10.0, 10.5, 11.999):
        assert auth(authenticator, token, now) is None
    assert source.asked == ["aaaaaaaaaaaa"]
    assert auth(authenticator, token, 12.0) is None
    assert source.asked == ["aaaaaaaaaaaa"] * 2


def test_a_key_added_at_the_source_works_once_the_negative_entry_expires() -> None:
    source = DictSource()
    authenticator = Authenticator(source, negative_ttl_s=2.0)
    assert auth(authenticator, KEY.token, 0.0) is None
    who = source.add(KEY, "late")
    assert auth(authenticator, KEY.token, 1.0) is None  # still negatively cached
    assert auth(authenticator, KEY.token, 2.0) is who


def test_negative_cache_is_bounded_and_forgets_the_oldest() -> None:
    source = DictSource()
    authenticator = Authenticator(source, negative_ttl_s=60.0, negative_capacity=3)
    ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"]
    for key_id in ids:
        assert auth(authenticator, fake_token(key_id), 0.0) is None
    assert source.asked == ids
    # b, c, d are remembered; a was evicted, so it reaches the source again
    for key_id in ids[1:]:
        assert auth(authenticator, fake_token(key_id), 1.0) is None
    assert source.asked == ids
    assert auth(authenticator, fake_token(ids[0]), 1.0) is None
    assert source.asked == [*ids, ids[0]]
    # a's return evicted b, now the oldest
    assert auth(authenticator, fake_token(ids[1]), 1.0) is None
    assert source.asked == [*ids, ids[0], ids[1]]


def test_flood_of_unknown_ids_stays_within_capacity() -> None:
    source = DictSource(KEY)
    authenticator = Authenticator(source, negative_capacity=100)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    ids = ["".join(alphabet[(i >> (5 * j)) & 31] for j in range(12)) for i in range(1000)]
    for key_id in ids:
        assert auth(authenticator, fake_token(key_id), 0.0) is None
    assert len(source.asked) == 1000
    assert len(authenticator._negative) == 100  # memory stays bounded
    auth(authenticator, fake_token(ids[-1]), 1.0)  # remembered
    auth(authenticator, fake_token(ids[0]), 1.0)  # long forgotten
    assert source.asked[1000:] == [ids[0]]
    assert auth(authenticator, KEY.token, 1.0) is not None


# --- invalidate ----------------------------------------------------------------------------


def test_invalidate_one_key_forgets_its_positive_entry() -> None:
    source = DictSource(KEY, OTHER)
    authenticator = Authenticator(source, ttl_s=60.0)
    auth(authenticator, KEY.token, 0.0)
    auth(authenticator, OTHER.token, 0.0)
    del source.records[KEY.key_id]  # revoked
    authenticator.invalidate(KEY.key_id)
    assert auth(authenticator, KEY.token, 1.0) is None
    assert auth(authenticator, OTHER.token, 1.0) is not None  # still cached
    assert source.asked == [KEY.key_id, OTHER.key_id, KEY.key_id]


def test_invalidate_one_key_forgets_its_negative_entry() -> None:
    source = DictSource()
    authenticator = Authenticator(source, negative_ttl_s=60.0)
    assert auth(authenticator, KEY.token, 0.0) is None
    who = source.add(KEY, "new")
    authenticator.invalidate(KEY.key_id)
    assert auth(authenticator, KEY.token, 1.0) is who


def test_invalidate_everything() -> None:
    source = DictSource(KEY)
    authenticator = Authenticator(source, ttl_s=60.0, negative_ttl_s=60.0)
    auth(authenticator, KEY.token, 0.0)
    auth(authenticator, fake_token("zzzzzzzzzzzz"), 0.0)
    authenticator.invalidate()
    auth(authenticator, KEY.token, 1.0)
    auth(authenticator, fake_token("zzzzzzzzzzzz"), 1.0)
    assert source.asked == [KEY.key_id, "zzzzzzzzzzzz"] * 2
    authenticator.invalidate("never-seen")  # unknown ids are fine


# --- Expiry (wall clock) and TTL 0 ---------------------------------------------------------


def test_expiry_is_checked_on_every_auth_even_when_cached() -> None:
    source = DictSource()
    who = dataclasses.replace(source.add(KEY, "web"), expires_at=1000.0)
    source.records[KEY.key_id] = KeyRecord(KEY.key_id, KEY.digest, who)
    wall = [999.0]
    authenticator = Authenticator(source, ttl_s=60.0, wall_clock=lambda: wall[0])
    assert auth(authenticator, KEY.token, 0.0) is who
    wall[0] = 1000.0  # the loop clock has barely moved; the wall clock passed expires_at
    assert auth(authenticator, KEY.token, 0.1) is None
    assert authenticator.lookups == 1  # refused from the cache, then forgotten
    assert auth(authenticator, KEY.token, 0.2) is None
    assert authenticator.lookups == 2


def test_ttl_zero_asks_the_source_on_every_auth() -> None:
    source = DictSource(KEY)
    authenticator = Authenticator(source, ttl_s=0.0)
    for _ in range(3):
        assert auth(authenticator, KEY.token, 5.0) is not None
    assert authenticator.lookups == 3
    del source.records[KEY.key_id]  # revoked: the very next AUTH fails
    assert auth(authenticator, KEY.token, 5.0) is None
    assert authenticator._positive == {}


def test_take_used_reports_each_authenticated_key_once() -> None:
    source = DictSource(KEY, OTHER)
    authenticator = Authenticator(source)
    auth(authenticator, KEY.token, 0.0)
    auth(authenticator, KEY.token, 0.0)
    auth(authenticator, fake_token(OTHER.key_id), 0.0)  # a wrong secret is not a use
    assert authenticator.take_used() == [KEY.key_id]
    assert authenticator.take_used() == []
    auth(authenticator, OTHER.token, 0.0)
    assert authenticator.take_used() == [OTHER.key_id]
