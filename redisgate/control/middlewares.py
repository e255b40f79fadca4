"""What every response goes through: request id, errors as JSON, CORS, security headers.

The headers are set as each response is prepared (`response_headers`, an
`on_response_prepare` hook), so a streamed response (server-sent events) gets them too.

Errors become `{"error": {"code", "message", "details"}}` here and only here; `STATUS` is the
one table from exception type to HTTP status (the most specific class in the MRO wins).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from redisgate import metrics
from redisgate.control.spec import reply
from redisgate.control.state import REQUEST_ID
from redisgate.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    QuotaExceeded,
    RequestError,
    ServiceUnavailable,
    StoreError,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)

log = logging.getLogger(__name__)
access_log = logging.getLogger("redisgate.control.access")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

STATUS: dict[type[Exception], int] = {
    BadRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    QuotaExceeded: 409,
    ValidationFailed: 422,
    TooManyRequests: 429,
    ServiceUnavailable: 503,
    StoreError: 503,
}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # The API serves JSON; /docs is one HTML page with its own stylesheet and no scripts.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}

# Probed every few seconds by orchestrators: logged at debug level only.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})

CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
# Metric label values stay bounded: any other method is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CORS_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_MAX_AGE_S = "600"


def error_body(
    code: str, message: str, details: dict[str, object] | None = None
) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def status_of(exc: Exception) -> int | None:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return None


def _http_error(exc: web.HTTPException) -> web.Response:
    codes = {
        404: ("route_not_found", "no such route; GET /openapi.json lists them"),
        405: ("method_not_allowed", f"this route does not accept {exc.reason}"),
        413: ("body_too_large", "the request body is too large"),
    }
    code, message = codes.get(exc.status, (exc.reason.lower().replace(" ", "_"), exc.reason))
    if exc.status == 405:
        message = "this route does not accept that method"
    response = reply(error_body(code, message), status=exc.status)
    if exc.status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def make_middlewares(cors_origins: frozenset[str]) -> list[web.middleware]:  # type: ignore[valid-type]
    @web.middleware
    async def outer(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request[REQUEST_ID] = request_id
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in cors_origins
        if (
            request.method == "OPTIONS"
            and origin is not None
            and "Access-Control-Request-Method" in request.headers
        ):
            response: web.StreamResponse = web.Response(status=204 if allowed else 403)
            if allowed:
                response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
                response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
                response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE_S
        else:
            response = await _handle(request, handler)
        elapsed = time.perf_counter() - started
        _count(request, response.status, elapsed)
        access_log.log(
            logging.DEBUG if request.path in QUIET_PATHS else logging.INFO,
            "%s %s %s %.1fms request_id=%s",
            request.method,
            request.path,
            response.status,
            elapsed * 1000,
            request_id,
        )
        return response

    return [outer]


def response_headers(
    cors_origins: frozenset[str],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The `on_response_prepare` hook: CORS, security headers and the request id on every
    response, just before its headers are sent."""

    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and origin in cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Retry-After"
        if cors_origins:
            response.headers["Vary"] = "Origin"
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        request_id = request.get(REQUEST_ID)
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id

    return prepare


def _count(request: web.Request, status: int, elapsed: float) -> None:
    """Requests and latency by route template (`/orgs/{org_id}`), never by concrete path."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    method = request.method if request.method in METHODS else "other"
    metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
    metrics.HTTP_LATENCY.labels(method, route).observe(elapsed)


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc)
    except Exception as exc:
        status = status_of(exc)
        request_id = request[REQUEST_ID]
        if status is None:
            log.exception("unexpected error, request_id=%s", request_id)
            return reply(
                error_body("internal_error", f"unexpected error; quote request id {request_id}"),
                status=500,
            )
        if isinstance(exc, RequestError | NotFound | Conflict):
            code = exc.code
            message = exc.message if isinstance(exc, RequestError) else str(exc)
            details = exc.details if isinstance(exc, RequestError | Conflict) else {}
        else:
            # Plain StoreError: the database failed. Its text may hold internals; log it.
            log.warning("database unavailable (request_id=%s): %s", request_id, exc)
            code, message, details = (
                "database_unavailable",
                "PostgreSQL is unavailable; try again shortly",
                {},
            )
        response = reply(error_body(code, message, details), status=status)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
