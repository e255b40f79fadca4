"""The refresh token in an HttpOnly cookie (the web console's flow), with its CSRF check;
the JSON body flow of API users unchanged beside it."""

from __future__ import annotations

import uuid
from http.cookies import SimpleCookie
from typing import Any

from tests.integration.control.conftest import PASSWORD, Api, api_for, control_settings


def cookies_of(headers: Any) -> dict[str, Any]:
    """name -> Morsel of every Set-Cookie header."""
    jar: SimpleCookie = SimpleCookie()
    for value in headers.getall("Set-Cookie", []):
        jar.load(value)
    return dict(jar)


def cookie_header(**values: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in values.items())}


async def login(api: Api, email: str, **extra: Any) -> Any:
    response = await api.post(
        "/v1/auth/login", json={"email": email, "password": PASSWORD, **extra}
    )
    assert response.status == 200, response.body
    api.client.session.cookie_jar.clear()  # each test sends exactly the cookies it means to
    return response


async def test_login_with_cookie_sets_httponly_refresh_and_csrf_cookies(api: Api) -> None:
    user = await api.register()
    response = await login(api, user["email"], cookie=True)
    assert "refresh_token" not in response.body
    assert response.body["access_token"] and response.body["token_type"] == "Bearer"
    got = cookies_of(response.headers)
    refresh, csrf = got["rg_refresh"], got["rg_csrf"]
    assert refresh.value.startswith("rgr_")
    assert refresh["httponly"] and refresh["path"] == "/v1/auth"
    assert refresh["samesite"] == "Strict" and not refresh["secure"]  # plain HTTP here
    assert refresh["max-age"] == ""  # not remembered: a session cookie
    assert not csrf["httponly"] and csrf["path"] == "/" and csrf["samesite"] == "Strict"
    assert len(csrf.value) >= 24
    me = await api.get("/v1/me", token=response.body["access_token"])
    assert me.status == 200


async def test_remembered_login_cookie_has_the_sessions_max_age(api: Api) -> None:
    user = await api.register()
    response = await login(api, user["email"], cookie=True, remember_me=True)
    got = cookies_of(response.headers)
    max_age = int(got["rg_refresh"]["max-age"])
    assert 30 * 86_400 - 60 < max_age <= 30 * 86_400
    assert int(got["rg_csrf"]["max-age"]) == max_age


async def test_register_with_cookie(api: Api) -> None:
    email = f"c-{uuid.uuid4().hex[:8]}@example.com"
    response = await api.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "cookie": True}
    )
    assert response.status == 201
    assert "refresh_token" not in response.body and response.body["access_token"]
    assert set(cookies_of(response.headers)) == {"rg_refresh", "rg_csrf"}


async def test_refresh_with_cookie_needs_the_csrf_header_and_rotates(api: Api) -> None:
    user = await api.register()
    got = cookies_of((await login(api, user["email"], cookie=True)).headers)
    refresh, csrf = got["rg_refresh"].value, got["rg_csrf"].value
    both = cookie_header(rg_refresh=refresh, rg_csrf=csrf)

    for headers in (
        both,  # no header
        {**both, "X-CSRF-Token": "wrong"},
        {**cookie_header(rg_refresh=refresh), "X-CSRF-Token": csrf},  # no rg_csrf cookie
    ):
        refused = await api.post("/v1/auth/refresh", headers=headers)
        assert refused.status == 403
        assert refused.error["code"] == "csrf_failed"

    ok = await api.post("/v1/auth/refresh", headers={**both, "X-CSRF-Token": csrf})
    assert ok.status == 200, ok.body
    assert "refresh_token" not in ok.body and ok.body["expires_in"] == 900
    assert (await api.get("/v1/me", token=ok.body["access_token"])).status == 200
    rotated = cookies_of(ok.headers)
    new_refresh, new_csrf = rotated["rg_refresh"].value, rotated["rg_csrf"].value
    assert new_refresh != refresh and new_csrf != csrf
    api.client.session.cookie_jar.clear()

    again = await api.post(
        "/v1/auth/refresh",
        headers={
            **cookie_header(rg_refresh=new_refresh, rg_csrf=new_csrf),
            "X-CSRF-Token": new_csrf,
        },
    )
    assert again.status == 200
    api.client.session.cookie_jar.clear()
    # The first cookie was rotated away: presenting it again is reuse, and ends the session.
    reused = await api.post("/v1/auth/refresh", headers={**both, "X-CSRF-Token": csrf})
    assert reused.status == 401 and reused.error["code"] == "refresh_token_reused"


async def test_logout_with_cookie_clears_both_cookies(api: Api) -> None:
    user = await api.register()
    got = cookies_of((await login(api, user["email"], cookie=True)).headers)
    refresh, csrf = got["rg_refresh"].value, got["rg_csrf"].value
    headers = cookie_header(rg_refresh=refresh, rg_csrf=csrf)
    refused = await api.post("/v1/auth/logout", headers=headers)
    assert refused.status == 403 and refused.error["code"] == "csrf_failed"
    response = await api.post("/v1/auth/logout", headers={**headers, "X-CSRF-Token": csrf})
    assert response.status == 204
    cleared = cookies_of(response.headers)
    assert cleared["rg_refresh"].value == "" and cleared["rg_refresh"]["max-age"] == "0"
    assert cleared["rg_refresh"]["path"] == "/v1/auth"
    assert cleared["rg_csrf"].value == "" and cleared["rg_csrf"]["max-age"] == "0"
    api.client.session.cookie_jar.clear()
    after = await api.post("/v1/auth/refresh", headers={**headers, "X-CSRF-Token": csrf})
    assert after.status == 401 and after.error["code"] == "invalid_refresh_token"


async def test_body_flow_is_unchanged_and_sets_no_cookie(api: Api) -> None:
    user = await api.register()
    assert not cookies_of(
        (
            await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
        ).headers
    )
    refresh = user["refresh_token"]
    ok = await api.post("/v1/auth/refresh", json={"refresh_token": refresh})
    assert ok.status == 200 and ok.body["refresh_token"] != refresh
    assert not cookies_of(ok.headers)
    # A body token wins over cookies, and needs no CSRF header.
    out = await api.post(
        "/v1/auth/logout",
        json={"refresh_token": ok.body["refresh_token"]},
        headers=cookie_header(rg_refresh="rgr_whatever", rg_csrf="x"),
    )
    assert out.status == 204 and not cookies_of(out.headers)
    missing = await api.post("/v1/auth/refresh", json={})
    assert missing.status == 422
    assert missing.error["details"]["fields"] == {"refresh_token": "is required"}


async def test_secure_flag_follows_tls_through_a_trusted_proxy_only(api: Api) -> None:
    # Plain HTTP without a trusted proxy: X-Forwarded-Proto is not believed.
    user = await api.register()
    response = await api.post(
        "/v1/auth/login",
        json={"email": user["email"], "password": PASSWORD, "cookie": True},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert not cookies_of(response.headers)["rg_refresh"]["secure"]


async def test_secure_behind_a_trusted_tls_proxy(database_url: str) -> None:
    settings = control_settings(database_url, control_trusted_proxies="127.0.0.1")
    async for api in api_for(settings):
        user = await api.register()
        for proto, secure in (("https", True), ("http", False)):
            response = await api.post(
                "/v1/auth/login",
                json={"email": user["email"], "password": PASSWORD, "cookie": True},
                headers={"X-Forwarded-Proto": proto},
            )
            got = cookies_of(response.headers)
            assert bool(got["rg_refresh"]["secure"]) is secure
            assert bool(got["rg_csrf"]["secure"]) is secure
