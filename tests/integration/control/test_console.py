"""The web console as the control API serves it: the page, its assets, their
Content-Security-Policy, and nothing but the console's own scripts."""

from __future__ import annotations

import re

from redisgate.control.console import SCRIPTS
from tests.integration.control.conftest import Api


async def test_the_control_url_is_the_console(api: Api) -> None:
    page = await api.get("/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="/console/js/app.js">' in page.body
    # nothing inline, nothing from elsewhere
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.body)
    assert "style=" not in page.body and "<style" not in page.body
    assert all(src.startswith("/") for src in re.findall(r'(?:href|src)="([^"#]+)"', page.body))
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert page.headers["Cache-Control"] == "no-store"


async def test_connect_src_allows_the_http_command_api(api: Api) -> None:
    policy = (await api.get("/")).headers["Content-Security-Policy"]
    connect = re.search(r"connect-src ([^;]+);", policy)
    assert connect is not None
    # the instances' rest_url origin (docs/http.md), which the data browser calls
    assert connect.group(1) == "'self' http://127.0.0.1:7379"


async def test_every_script_is_served_and_imports_only_its_siblings(api: Api) -> None:
    names = sorted(p.name for p in SCRIPTS.glob("*.js"))
    assert "app.js" in names and "auth.js" in names
    for name in names:
        script = await api.get(f"/console/js/{name}")
        assert script.status == 200, name
        assert script.headers["Content-Type"].startswith("text/javascript")
        assert script.headers["Cache-Control"] == "no-cache"
        assert "Content-Security-Policy" in script.headers
        for imported in re.findall(r'from "\./([^"]+)"', script.body):
            assert imported in names, f"{name} imports {imported}, which is not served"
        # markup only from data, tokens only in memory (auth.js)
        assert not re.search(
            r"\.(inner|outer)HTML\b|insertAdjacentHTML|document\.write", script.body
        ), name
        assert not re.search(r"\b(local|session)Storage\s*[.\[]", script.body), name
    css = await api.get("/console/console.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    icon = await api.get("/console/favicon.svg")
    assert icon.status == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")


async def test_unknown_or_crafted_script_names_are_404(api: Api) -> None:
    for name in ("nope.js", "..%2F__init__.py", "app.mjs", "APP.js", ".js"):
        response = await api.get(f"/console/js/{name}")
        assert response.status == 404, name
        assert response.error["code"] == "not_found"
    traversal = await api.client.get("/console/js/../../__init__.py")
    assert traversal.status == 404
