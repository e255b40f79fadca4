"""`/openapi.json` and `/docs`, both built once at start-up from the route table."""

from __future__ import annotations

from aiohttp import web

from redisgate.control.docs_page import STATIC
from redisgate.control.spec import Call, reply
from redisgate.control.state import OPENAPI
from redisgate.metrics.endpoint import metrics_response

DOCS_HTML = web.AppKey("docs_html", str)


async def openapi_json(call: Call) -> web.StreamResponse:
    return reply(call.request.app[OPENAPI])


async def docs(call: Call) -> web.StreamResponse:
    return web.Response(text=call.request.app[DOCS_HTML], content_type="text/html")


async def docs_css(call: Call) -> web.StreamResponse:
    return web.Response(text=(STATIC / "docs.css").read_text(), content_type="text/css")


async def prometheus_metrics(call: Call) -> web.StreamResponse:
    """The process's metrics registry (both planes' metrics under `redisgate serve`)."""
    return metrics_response()
