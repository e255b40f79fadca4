"""/v1/me and the caller's sessions."""

from __future__ import annotations

import uuid

from tests.integration.control.conftest import PASSWORD, Api


async def test_patch_name(api: Api) -> None:
    user = await api.register(name="Old")
    response = await api.patch("/v1/me", token=user["access_token"], json={"name": "New"})
    assert response.status == 200 and response.body["user"]["name"] == "New"
    assert (await api.get("/v1/me", token=user["access_token"])).body["user"]["name"] == "New"


async def test_patch_validation(api: Api) -> None:
    user = await api.register()
    token = user["access_token"]
    empty = await api.patch("/v1/me", token=token, json={})
    assert empty.status == 422
    unknown = await api.patch("/v1/me", token=token, json={"email": "x@example.com"})
    assert unknown.error["details"]["fields"] == {"email": "is not a known field"}
    no_current = await api.patch("/v1/me", token=token, json={"password": "a-new-password-1"})
    assert "current_password" in no_current.error["details"]["fields"]
    wrong = await api.patch(
        "/v1/me",
        token=token,
        json={"password": "a-new-password-1", "current_password": "not-the-password"},
    )
    assert wrong.status == 422
    assert wrong.error["details"]["fields"]["current_password"] == "is not your current password"
    common = await api.patch(
        "/v1/me", token=token, json={"password": "1234567890", "current_password": PASSWORD}
    )
    assert "most common" in common.error["details"]["fields"]["password"]


async def test_password_change_ends_other_sessions(api: Api) -> None:
    user = await api.register()
    other = await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    response = await api.patch(
        "/v1/me",
        token=user["access_token"],
        json={"password": "a-brand-new-passphrase", "current_password": PASSWORD},
    )
    assert response.status == 200
    assert (await api.get("/v1/me", token=user["access_token"])).status == 200
    assert (await api.get("/v1/me", token=other.body["access_token"])).status == 401
    old = await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert old.status == 401
    new = await api.post(
        "/v1/auth/login", json={"email": user["email"], "password": "a-brand-new-passphrase"}
    )
    assert new.status == 200


async def test_sessions_list_page_and_delete(api: Api) -> None:
    user = await api.register()
    for _ in range(4):
        await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    token = user["access_token"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await api.get("/v1/me/sessions", token=token, params=params)
        assert page.status == 200 and len(page.body["items"]) <= 2
        seen += [s["id"] for s in page.body["items"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    listing = (await api.get("/v1/me/sessions", token=token)).body["items"]
    assert sum(s["current"] for s in listing) == 1
    victim = next(s["id"] for s in listing if not s["current"])
    assert (await api.delete(f"/v1/me/sessions/{victim}", token=token)).status == 204
    again = await api.delete(f"/v1/me/sessions/{victim}", token=token)
    assert again.status == 404 and again.error["code"] == "session_not_found"
    assert (await api.delete(f"/v1/me/sessions/{uuid.uuid4()}", token=token)).status == 404
    assert (await api.delete("/v1/me/sessions/not-a-uuid", token=token)).status == 404
    remaining = (await api.get("/v1/me/sessions", token=token)).body["items"]
    assert victim not in [s["id"] for s in remaining] and len(remaining) == 4


async def test_cannot_end_another_users_session(api: Api) -> None:
    alice, bob = await api.register(), await api.register()
    bob_sessions = await api.get("/v1/me/sessions", token=bob["access_token"])
    sid = bob_sessions.body["items"][0]["id"]
    response = await api.delete(f"/v1/me/sessions/{sid}", token=alice["access_token"])
    assert response.status == 404
    assert (await api.get("/v1/me", token=bob["access_token"])).status == 200


async def test_bad_query_parameters(api: Api) -> None:
    user = await api.register()
    token = user["access_token"]
    for params, field in (
        ({"limit": "x"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"cursor": "!!!"}, "cursor"),
        ({"sort": "asc"}, "sort"),
    ):
        response = await api.get("/v1/me/sessions", token=token, params=params)
        assert response.status == 422, params
        assert field in response.error["details"]["fields"]


async def test_guessing_the_current_password_is_throttled(api: Api) -> None:
    """A stolen access token must not give unlimited tries at the password."""
    user = await api.register()
    token = user["access_token"]
    body = {"password": "a brand new passphrase", "current_password": "not the password"}
    statuses = [(await api.patch("/v1/me", token=token, json=body)).status for _ in range(6)]
    assert statuses == [422] * 5 + [429]  # login_free_failures_per_email is 5
