"""Registration, login, refresh rotation and reuse, logout, throttling, token expiry."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import jwt
from argon2 import PasswordHasher

from redisgate.control.passwords import default_concurrency
from redisgate.control.state import PASSWORDS, THROTTLE
from redisgate.control.tokens import AUDIENCE, ISSUER, key_id
from redisgate.store import db
from tests.integration.control.conftest import PASSWORD, TEST_ENV, Api, api_for, control_settings


async def test_register_creates_user_personal_org_and_tokens(api: Api) -> None:
    result = await api.register("Alice@Example.com", name="Alice")
    assert result["user"]["email"] == "Alice@example.com"  # the domain is lowered
    assert result["user"]["name"] == "Alice"
    assert result["org"]["role"] == "owner"
    assert result["token_type"] == "Bearer" and result["expires_in"] == 900
    me = await api.get("/v1/me", token=result["access_token"])
    assert me.status == 200
    assert me.body["orgs"] == [result["org"]]


async def test_register_duplicate_email_any_case_is_409(api: Api) -> None:
    await api.register("bob@example.com")
    response = await api.post(
        "/v1/auth/register", json={"email": "BOB@example.com", "password": PASSWORD}
    )
    assert response.status == 409
    assert response.error["code"] == "email_taken"
    assert response.error["details"] == {}


async def test_register_validation_names_each_field(api: Api) -> None:
    response = await api.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": 5, "extra": 1}
    )
    assert response.status == 422
    fields = response.error["details"]["fields"]
    assert set(fields) == {"email", "password", "extra"}
    assert "email" in fields["email"] and fields["extra"] == "is not a known field"
    response = await api.post("/v1/auth/register", json={})
    assert response.error["details"]["fields"] == {
        "email": "is required",
        "password": "is required",
    }


async def test_register_refuses_short_and_common_passwords(api: Api) -> None:
    for password, words in (("short", "at least 10"), ("password123", "most common")):
        response = await api.post(
            "/v1/auth/register", json={"email": "c@example.com", "password": password}
        )
        assert response.status == 422
        assert words in response.error["details"]["fields"]["password"]


async def test_bad_json_and_non_object_bodies_are_400(api: Api) -> None:
    response = await api.post(
        "/v1/auth/login", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400 and response.error["code"] == "invalid_json"
    response = await api.post("/v1/auth/login", json=[1, 2])
    assert response.status == 400 and "JSON object" in response.error["message"]


async def test_oversized_body_is_a_json_413(api: Api) -> None:
    big = {"email": "a@example.com", "password": "x" * (70 * 1024)}
    response = await api.post("/v1/auth/login", json=big)
    assert response.status == 413
    assert response.error["code"] == "body_too_large"


async def test_login_ok_and_wrong_password_and_unknown_email(api: Api) -> None:
    user = await api.register()
    response = await api.post(
        "/v1/auth/login", json={"email": user["email"].upper(), "password": PASSWORD}
    )
    assert response.status == 200, response.body
    assert set(response.body) == {"access_token", "refresh_token", "expires_in", "token_type"}
    wrong = await api.post("/v1/auth/login", json={"email": user["email"], "password": "x" * 12})
    unknown = await api.post(
        "/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong.status == unknown.status == 401
    assert wrong.body == unknown.body  # the answer does not tell which emails exist


async def test_remember_me_sets_session_length(api: Api) -> None:
    user = await api.register()
    for remember, days in ((True, 30), (False, 1)):
        login = await api.post(
            "/v1/auth/login",
            json={"email": user["email"], "password": PASSWORD, "remember_me": remember},
        )
        sessions = await api.get("/v1/me/sessions", token=login.body["access_token"])
        current = next(s for s in sessions.body["items"] if s["current"])
        assert current["remember_me"] is remember
        from datetime import datetime

        length = datetime.fromisoformat(current["expires_at"]) - datetime.fromisoformat(
            current["created_at"]
        )
        assert abs(length.total_seconds() - days * 86400) < 60


async def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    user = await api.register()
    first = user["refresh_token"]
    rotated = await api.post("/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status == 200
    second = rotated.body["refresh_token"]
    assert second != first
    assert (await api.get("/v1/me", token=rotated.body["access_token"])).status == 200
    # The first token again: theft assumed, the whole session ends.
    reuse = await api.post("/v1/auth/refresh", json={"refresh_token": first})
    assert reuse.status == 401 and reuse.error["code"] == "refresh_token_reused"
    after = await api.post("/v1/auth/refresh", json={"refresh_token": second})
    assert after.status == 401 and after.error["code"] == "invalid_refresh_token"
    # Access tokens of the revoked session stop working too.
    me = await api.get("/v1/me", token=rotated.body["access_token"])
    assert me.status == 401 and me.error["code"] == "session_ended"
    # Other sessions of the user are untouched.
    login = await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert (await api.get("/v1/me", token=login.body["access_token"])).status == 200


async def test_refresh_with_unknown_token_is_401(api: Api) -> None:
    response = await api.post("/v1/auth/refresh", json={"refresh_token": "rgr_nope"})
    assert response.status == 401 and response.error["code"] == "invalid_refresh_token"


async def test_logout_ends_the_session(api: Api) -> None:
    user = await api.register()
    response = await api.post("/v1/auth/logout", json={"refresh_token": user["refresh_token"]})
    assert response.status == 204
    again = await api.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert again.status == 401
    me = await api.get("/v1/me", token=user["access_token"])
    assert me.status == 401 and me.error["code"] == "session_ended"
    # Idempotent for a known token; unknown tokens are refused.
    repeat = await api.post("/v1/auth/logout", json={"refresh_token": user["refresh_token"]})
    assert repeat.status == 204
    unknown = await api.post("/v1/auth/logout", json={"refresh_token": "rgr_unknown"})
    assert unknown.status == 401


async def test_access_token_checks(api: Api) -> None:
    user = await api.register()
    claims = jwt.decode(
        user["access_token"],
        TEST_ENV["REDISGATE_JWT_SECRET"],
        algorithms=["HS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
    )
    assert claims["sub"] == user["user"]["id"] and claims["exp"] - claims["iat"] == 900
    header = jwt.get_unverified_header(user["access_token"])
    assert header["kid"] == key_id(TEST_ENV["REDISGATE_JWT_SECRET"])
    secret = TEST_ENV["REDISGATE_JWT_SECRET"]
    now = int(time.time())
    base = {**claims, "iat": now - 1000, "exp": now - 100}
    expired = jwt.encode(base, secret, algorithm="HS256", headers={"kid": header["kid"]})
    response = await api.get("/v1/me", token=expired)
    assert response.status == 401 and response.error["code"] == "token_expired"
    forged = jwt.encode(
        {**claims}, "another-secret-" + "y" * 40, algorithm="HS256", headers={"kid": header["kid"]}
    )
    assert (await api.get("/v1/me", token=forged)).error["code"] == "invalid_token"
    wrong_aud = jwt.encode(
        {**claims, "aud": "elsewhere"}, secret, algorithm="HS256", headers={"kid": header["kid"]}
    )
    assert (await api.get("/v1/me", token=wrong_aud)).status == 401
    no_kid = jwt.encode(claims, secret, algorithm="HS256")
    assert (await api.get("/v1/me", token=no_kid)).status == 401
    assert (await api.get("/v1/me")).error["code"] == "unauthenticated"
    assert (await api.get("/v1/me", token="garbage")).status == 401


async def test_previous_key_still_verifies_after_rotation(database_url: str) -> None:
    old = "old-secret-" + "o" * 40
    async for api in api_for(control_settings(database_url, jwt_secret=old)):
        user = await api.register()
    rotated = control_settings(
        database_url, jwt_secret="new-secret-" + "n" * 40, jwt_previous_secrets=old
    )
    async for api in api_for(rotated):
        assert (await api.get("/v1/me", token=user["access_token"])).status == 200
        refreshed = await api.post(
            "/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}
        )
        new_kid = jwt.get_unverified_header(refreshed.body["access_token"])["kid"]
        assert new_kid == key_id("new-secret-" + "n" * 40)
    unrelated = control_settings(database_url, jwt_secret="new-secret-" + "n" * 40)
    async for api in api_for(unrelated):
        assert (await api.get("/v1/me", token=user["access_token"])).status == 401


async def test_generated_secret_is_kept_0600(database_url: str, tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    settings = control_settings(database_url, data_dir=str(folder))
    settings = type(settings)(
        **{k: getattr(settings, k) for k in settings.masked() if k != "jwt_secret"}
    )
    async for api in api_for(settings):
        user = await api.register()
    key = folder / "jwt-secret"
    assert key.stat().st_mode & 0o777 == 0o600
    async for api in api_for(settings):  # the same key after a restart
        assert (await api.get("/v1/me", token=user["access_token"])).status == 200


def cpus() -> int:
    return len(os.sched_getaffinity(0))


def _from(addr: str) -> dict[str, str]:
    return {"X-Forwarded-For": addr}


async def test_guesses_slow_down_but_the_owner_logs_in_from_elsewhere(database_url: str) -> None:
    settings = control_settings(
        database_url, login_free_failures_per_email="3", control_trusted_proxies="127.0.0.1"
    )
    async for api in api_for(settings):
        user = await api.register()
        wrong = {"email": user["email"], "password": "wrong-password"}
        right = {"email": user["email"], "password": PASSWORD}
        for _ in range(3):
            bad = await api.post("/v1/auth/login", json=wrong, headers=_from("203.0.113.6"))
            assert bad.status == 401
        # Inside the wait even the right password is refused from the guessing address, and
        # without being hashed.
        hashed = api.client.app[PASSWORDS].computed
        held = await api.post("/v1/auth/login", json=right, headers=_from("203.0.113.6"))
        assert held.status == 429
        assert held.error["details"]["retry_after_s"] == int(held.headers["Retry-After"]) == 1
        assert api.client.app[PASSWORDS].computed == hashed
        # The owner, from their own address, logs in at once.
        owner = await api.post("/v1/auth/login", json=right, headers=_from("198.51.100.7"))
        assert owner.status == 200
        # The guesser's waits double: 1 s, 2 s, 4 s ... (the clock is moved, not slept on).
        throttle = api.client.app[THROTTLE]
        waits = []
        now = time.monotonic()
        for _ in range(4):
            wait = throttle.retry_after(user["email"], "203.0.113.6", now)
            waits.append(wait)
            throttle.failed(user["email"], "203.0.113.6", now + wait)
            now += wait
        assert waits == [1, 2, 4, 8]


async def test_login_throttled_per_address(database_url: str) -> None:
    settings = control_settings(database_url, login_free_failures_per_addr="4")
    async for api in api_for(settings):
        for i in range(4):
            await api.post(
                "/v1/auth/login", json={"email": f"u{i}@example.com", "password": "wrong-pass"}
            )
        blocked = await api.post(
            "/v1/auth/login", json={"email": "fresh@example.com", "password": "wrong-pass"}
        )
        assert blocked.status == 429 and "Retry-After" in blocked.headers


async def test_rehash_on_login_when_parameters_change(database_url: str) -> None:
    async for api in api_for(control_settings(database_url)):
        user = await api.register()
    stronger = control_settings(database_url, argon2_time_cost="2")
    async for api in api_for(stronger):
        response = await api.post(
            "/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
        )
        assert response.status == 200
    async with db.connection(database_url) as conn:
        stored = await conn.fetchval(
            "SELECT password_hash FROM users WHERE id = $1", uuid.UUID(user["user"]["id"])
        )
    assert "t=2" in stored and stored.startswith("$argon2id$")
    assert not PasswordHasher(time_cost=2, memory_cost=64, parallelism=1).check_needs_rehash(stored)


async def test_first_login_without_org_creates_one(api: Api, database_url: str) -> None:
    user = await api.register()
    async with db.connection(database_url) as conn:
        await conn.execute("DELETE FROM organizations")
    login = await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    me = await api.get("/v1/me", token=login.body["access_token"])
    assert len(me.body["orgs"]) == 1 and me.body["orgs"][0]["role"] == "owner"


async def test_an_expired_session_cannot_refresh_or_call(api: Api, database_url: str) -> None:
    user = await api.register()
    async with db.connection(database_url) as conn:
        await conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    refresh = await api.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert refresh.status == 401 and refresh.error["code"] == "invalid_refresh_token"
    me = await api.get("/v1/me", token=user["access_token"])
    assert me.status == 401 and me.error["code"] == "session_ended"
    listing = await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    sessions = await api.get("/v1/me/sessions", token=listing.body["access_token"])
    assert len(sessions.body["items"]) == 1  # the expired one is not listed


async def test_concurrent_refresh_with_one_token_lets_one_win(api: Api) -> None:
    import asyncio

    user = await api.register()
    body = {"refresh_token": user["refresh_token"]}
    results = await asyncio.gather(*(api.post("/v1/auth/refresh", json=body) for _ in range(5)))
    assert sorted(r.status for r in results) == [200, 401, 401, 401, 401]
    # The losers presented a used token: the session is revoked, the winner's tokens too.
    winner = next(r for r in results if r.status == 200)
    again = await api.post("/v1/auth/refresh", json={"refresh_token": winner.body["refresh_token"]})
    assert again.status == 401


async def test_ended_sessions_are_pruned_after_a_week(api: Api, database_url: str) -> None:
    from redisgate.store import sessions

    user = await api.register()
    for _ in range(3):
        await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    async with db.connection(database_url) as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM sessions ORDER BY created_at")]
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '8 days' WHERE id = $1", ids[0]
        )
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() - interval '8 days', revoked_why = 'user' "
            "WHERE id = $1",
            ids[1],
        )
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 day' WHERE id = $1", ids[2]
        )
        assert await sessions.prune(conn, 7 * 86400) == 2
        left = {r["id"] for r in await conn.fetch("SELECT id FROM sessions")}
        assert left == {ids[2], ids[3]}
        tokens = await conn.fetchval("SELECT count(*) FROM refresh_tokens")
        assert tokens == 2


async def test_registrations_throttled_per_address(database_url: str) -> None:
    async for api in api_for(control_settings(database_url, register_max_per_addr="2")):
        await api.register()
        duplicate = await api.post(
            "/v1/auth/register", json={"email": "taken@example.com", "password": PASSWORD}
        )
        assert duplicate.status == 201
        third = await api.post(
            "/v1/auth/register", json={"email": "taken@example.com", "password": PASSWORD}
        )
        assert third.status == 429 and int(third.headers["Retry-After"]) > 0
        login = await api.post(
            "/v1/auth/login", json={"email": "taken@example.com", "password": PASSWORD}
        )
        assert login.status == 200  # logins have their own counts


async def test_concurrent_logins_never_hash_more_than_the_bound(database_url: str) -> None:
    """A burst of logins queues for the hasher, so the gateway in the same process keeps a
    core: the real hasher counts how many hashes run at once."""
    settings = control_settings(
        database_url,
        control_trusted_proxies="127.0.0.1",
        argon2_memory_kib="8192",
        argon2_time_cost="2",
    )
    async for api in api_for(settings):
        passwords = api.client.app[PASSWORDS]
        assert passwords.max_concurrent == default_concurrency() == max(1, cpus() - 1)
        user = await api.register()
        before = passwords.computed
        bodies = [
            {"email": user["email"], "password": PASSWORD if i % 2 else "wrong-password"}
            for i in range(12)
        ]
        answers = await asyncio.gather(
            *(
                api.post("/v1/auth/login", json=body, headers=_from(f"192.0.2.{i}"))
                for i, body in enumerate(bodies)
            )
        )
        assert sorted(a.status for a in answers) == [200] * 6 + [401] * 6
        assert passwords.computed - before == 12
        assert 1 <= passwords.peak_running <= passwords.max_concurrent


async def test_the_hash_bound_is_a_setting(database_url: str) -> None:
    """The same instrument sees hashes overlap when the bound allows it (so the assertion
    above is not vacuous)."""
    settings = control_settings(
        database_url,
        control_trusted_proxies="127.0.0.1",
        argon2_memory_kib="8192",
        argon2_time_cost="2",
        password_hash_concurrency="4",
    )
    async for api in api_for(settings):
        passwords = api.client.app[PASSWORDS]
        assert passwords.max_concurrent == 4
        await asyncio.gather(
            *(
                api.post(
                    "/v1/auth/login",
                    json={"email": f"nobody{i}@example.com", "password": "wrong-password"},
                    headers=_from(f"192.0.2.{i}"),
                )
                for i in range(12)
            )
        )
        assert 2 <= passwords.peak_running <= 4


async def test_weak_passwords_are_refused_naming_the_field(api: Api) -> None:
    for weak in ("aaaaaaaaaa", "qwertyuiop", "1234567890"):
        response = await api.post(
            "/v1/auth/register", json={"email": "weak@example.com", "password": weak}
        )
        assert response.status == 422, weak
        assert response.error["details"]["fields"]["password"].startswith(
            ("is too easy to guess", "is one of the most common")
        )
