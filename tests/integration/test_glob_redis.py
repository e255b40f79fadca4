"""Differential test: our glob matching against a real redis-server's, through SCAN MATCH.

Keys go into a database of their own. SCAN with a COUNT larger than the database returns
every key that matches the pattern, which shows us Redis's `stringmatchlen` directly. For
each pattern, the set of keys Redis returns must equal the set our compiled matcher (and the
reference port) accepts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import cast

import pytest
import redis

from redisgate.glob import compile_glob, glob_match
from redisgate.launcher.redis import RedisServer
from tests.glob_cases import CASES

DB = 13  # the proxy tests pick 1..15 in turn but flush theirs first; we flush ours both ends
SEED = 20261125

_KEY_BYTES = [
    *[b"a", b"b", b"A", b"-", b"]", b"^", b"\\", b"*", b"[", b"?"],
    *[b"\x00", b"\xff", b"\x80"],
]
_PATTERN_TOKENS = [
    *[b"*", b"?", b"[", b"]", b"^", b"\\", b"-"],
    *[b"a", b"b", b"A", b"\x00", b"\xff", b"\x80"],
]


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis(
        host=redis_server.host, port=redis_server.port, password=redis_server.password, db=DB
    ) as conn:
        conn.flushdb()
        try:
            yield conn
        finally:
            conn.flushdb()


def scan_match(client: redis.Redis, pattern: bytes) -> set[bytes]:
    found: set[bytes] = set()
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor, match=pattern, count=100_000)
        found.update(cast(list[bytes], keys))  # decode_responses is off: bytes
        if cursor == 0:
            return found


def corpus(rng: random.Random) -> set[bytes]:
    keys = {b"", *(subject for _, subject, _ in CASES)}
    while len(keys) < 200 + len(CASES):
        keys.add(b"".join(rng.choices(_KEY_BYTES, k=rng.randint(1, 6))))
    return keys


def random_patterns(rng: random.Random, count: int) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(count):
        tokens = rng.choices(_PATTERN_TOKENS, k=rng.randint(0, 8))
        if rng.random() < 0.3:  # ranges, with plain or binary ends
            first, last = rng.choices([b"a", b"b", b"A", b"\x00", b"\x80", b"\xff", b"]"], k=2)
            tokens.insert(rng.randint(0, len(tokens)), b"[" + first + b"-" + last + b"]")
        out.append(b"".join(tokens))
    return out


def test_scan_match_agrees_with_compiled_glob(client: redis.Redis) -> None:
    rng = random.Random(SEED)
    keys = corpus(rng)
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, b"")
        pipe.execute()
    assert client.dbsize() == len(keys)

    patterns = [*dict.fromkeys(pattern for pattern, _, _ in CASES), *random_patterns(rng, 400)]
    disagreements = []
    matched_something = 0
    answers: dict[bytes, set[bytes]] = {}
    for pattern in patterns:
        from_redis = answers[pattern] = scan_match(client, pattern)
        glob = compile_glob(pattern)
        ours = {key for key in keys if glob.match(key)}
        if pattern == b"*":
            # SCAN (like KEYS and ACL `~*`) skips the matcher for the exact pattern `*`, so
            # the empty key is listed too. stringmatchlen("*", "") itself is false.
            assert from_redis == keys
            assert ours == keys - {b""}
            continue
        if from_redis != ours:
            disagreements.append((pattern, sorted(from_redis - ours), sorted(ours - from_redis)))
        assert ours == {key for key in keys if glob_match(pattern, key)}
        matched_something += bool(from_redis)
    assert disagreements == []
    assert matched_something > len(patterns) // 4  # the corpus exercises the patterns

    # Every expected value in the shared case table is Redis's answer.
    for pattern, subject, expected in CASES:
        if pattern != b"*":
            assert (subject in answers[pattern]) is expected, (pattern, subject)
