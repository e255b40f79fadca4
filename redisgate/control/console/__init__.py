"""The web console: one HTML page, its stylesheet and ES modules, served at `/` (docs/console.md).

The console is a client of the public `/v1` API like any other: these handlers only hand out
files. Its pages are hash routes (`/#/orgs/…`), so the document is always `/` and no path of
the API is shadowed. Every console response carries its own Content-Security-Policy, stricter
for scripts than the API's JSON needs and wider in one place: the browser may call the
gateway's HTTP command API (the instances' `rest_url`), which the data browser will use.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from redisgate.control.instances import rest_url
from redisgate.control.spec import Call
from redisgate.errors import NotFound

ASSETS = Path(__file__).parent / "assets"
SCRIPTS = ASSETS / "js"
_SCRIPT_NAME = re.compile(r"^[a-z0-9-]+\.js$")


def _origin(url: str | None) -> str | None:
    if url is None:
        return None
    match = re.match(r"^(https?://[^/]+)", url)
    return match.group(1) if match else None


def content_security_policy(call: Call) -> str:
    """No inline scripts or styles, nothing from elsewhere; fetches go to this API and to the
    gateway's HTTP command API."""
    connect = " ".join(o for o in ("'self'", _origin(rest_url(call))) if o)
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src {connect}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _asset(call: Call, path: Path, content_type: str) -> web.Response:
    response = web.Response(body=path.read_bytes(), content_type=content_type)
    response.headers["Content-Security-Policy"] = content_security_policy(call)
    if content_type != "text/html":  # assets revalidate; the page itself is never stored
        response.headers["Cache-Control"] = "no-cache"
    return response


async def index(call: Call) -> web.StreamResponse:
    return _asset(call, ASSETS / "index.html", "text/html")


async def stylesheet(call: Call) -> web.StreamResponse:
    return _asset(call, ASSETS / "console.css", "text/css")


async def favicon(call: Call) -> web.StreamResponse:
    return _asset(call, ASSETS / "favicon.svg", "image/svg+xml")


async def script(call: Call) -> web.StreamResponse:
    name = call.request.match_info["name"]
    path = SCRIPTS / name
    if not _SCRIPT_NAME.match(name) or not path.is_file():
        raise NotFound(f"the console has no script {name!r}", code="not_found")
    return _asset(call, path, "text/javascript")
