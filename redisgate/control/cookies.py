"""The refresh token in a cookie, for the web console, with a CSRF check (docs/security.md).

A browser page keeps its access token in memory only; the refresh token lives in an
`HttpOnly` cookie scripts cannot read (`rg_refresh`, `Path=/v1/auth`, `SameSite=Strict`,
`Secure` when the request came over TLS, directly or through a trusted proxy's
`X-Forwarded-Proto: https`). Because a browser attaches that cookie by itself,
the two routes that read it (`POST /v1/auth/refresh` and `/logout`) also require the
double-submit token: header `X-CSRF-Token` equal to the readable `rg_csrf` cookie. Another
site can neither read `rg_csrf` nor set a custom header on a cross-site request without a
CORS preflight this API refuses, and `SameSite=Strict` keeps the cookies off cross-site
requests to begin with. API users keep sending `{"refresh_token": ...}` in the body and never
meet a cookie.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime

from aiohttp import web

from redisgate.control.state import TRUSTED_PROXIES
from redisgate.errors import Forbidden

REFRESH_COOKIE = "rg_refresh"
CSRF_COOKIE = "rg_csrf"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_PATH = "/v1/auth"


def set_session_cookies(
    request: web.Request,
    response: web.StreamResponse,
    refresh_token: str,
    expires_at: datetime | None,
) -> None:
    """Set `rg_refresh` (HttpOnly) and a fresh `rg_csrf`; with `expires_at` (a remembered
    session) both carry a Max-Age, else they are session cookies (gone with the browser)."""
    max_age = None
    if expires_at is not None:
        max_age = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
    secure = came_over_tls(request)
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        path=REFRESH_PATH,
        max_age=max_age,
        httponly=True,
        samesite="Strict",
        secure=secure or None,
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(24),
        path="/",
        max_age=max_age,
        samesite="Strict",
        secure=secure or None,
    )


def came_over_tls(request: web.Request) -> bool:
    """Whether the browser reached us over TLS: directly, or through a trusted proxy
    (`control_trusted_proxies`, the usual TLS terminator) saying `X-Forwarded-Proto: https`."""
    if request.secure:
        return True
    if (request.remote or "") not in request.app[TRUSTED_PROXIES]:
        return False
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    return proto == "https"


def clear_session_cookies(request: web.Request, response: web.StreamResponse) -> None:
    secure = came_over_tls(request) or None
    response.del_cookie(REFRESH_COOKIE, path=REFRESH_PATH, secure=secure, samesite="Strict")
    response.del_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="Strict")


def cookie_refresh_token(request: web.Request) -> str | None:
    """The refresh token of the `rg_refresh` cookie, once the CSRF check passed; None when
    there is no such cookie. Forbidden (403) when the header does not match `rg_csrf`."""
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        return None
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = request.headers.get(CSRF_HEADER, "")
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden(
            f"a request using the {REFRESH_COOKIE} cookie must send header {CSRF_HEADER} "
            f"equal to the {CSRF_COOKIE} cookie",
            code="csrf_failed",
        )
    return token
