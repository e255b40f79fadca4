"""The cookie flags and the CSRF check of cookies.py, on mocked requests (TLS included)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from redisgate.control import cookies
from redisgate.control.state import TRUSTED_PROXIES
from redisgate.errors import Forbidden


def request(headers: dict[str, str] | None = None, *, tls: bool = False) -> web.Request:
    app = web.Application()
    app[TRUSTED_PROXIES] = frozenset()
    context = ssl.create_default_context() if tls else None
    return make_mocked_request(
        "POST", "/v1/auth/login", headers=headers, app=app, sslcontext=context
    )


def test_cookies_over_tls_are_secure_and_remembered_ones_have_a_max_age() -> None:
    response = web.Response()
    expires = datetime.now(UTC) + timedelta(days=30)
    cookies.set_session_cookies(request(tls=True), response, "rgr_x", expires)
    refresh, csrf = response.cookies["rg_refresh"], response.cookies["rg_csrf"]
    assert refresh.value == "rgr_x" and refresh["secure"] and refresh["httponly"]
    assert csrf["secure"] and not csrf["httponly"]
    assert 30 * 86_400 - 5 <= int(refresh["max-age"]) <= 30 * 86_400


def test_plain_http_cookies_are_not_secure() -> None:
    response = web.Response()
    cookies.set_session_cookies(request(), response, "rgr_x", None)
    assert not response.cookies["rg_refresh"].get("secure")
    assert not response.cookies["rg_refresh"].get("max-age")


@pytest.mark.parametrize(
    "cookie, header",
    [("rg_refresh=t; rg_csrf=abc", ""), ("rg_refresh=t; rg_csrf=abc", "abd"), ("rg_refresh=t", "")],
)
def test_csrf_refusals(cookie: str, header: str) -> None:
    headers = {"Cookie": cookie}
    if header:
        headers["X-CSRF-Token"] = header
    with pytest.raises(Forbidden) as caught:
        cookies.cookie_refresh_token(request(headers))
    assert caught.value.code == "csrf_failed"


def test_csrf_pass_and_no_cookie() -> None:
    ok = request({"Cookie": "rg_refresh=t; rg_csrf=abc", "X-CSRF-Token": "abc"})
    assert cookies.cookie_refresh_token(ok) == "t"
    assert cookies.cookie_refresh_token(request({"X-CSRF-Token": "abc"})) is None
