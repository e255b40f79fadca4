"""The web console in a real browser: Debian's chromium driven by Playwright, against the
real stack (gateway + control API in one process, `redisgate.stack.running_stack`) on a fresh
migrated database, with the local provisioner starting a redis-server per instance.

The stack runs in a thread of its own with its own event loop (Playwright's sync API owns the
test thread). Instances' redis-servers are forked from that thread, which lives until the end
of the package, so their parent-death signal fires only when the stack is gone.

Playwright's own browser download is not reachable here: the tests launch the system
`chromium` (`make install` installs it: scripts/install-system-deps.sh --optional chromium) and
fail, saying so, when it is missing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from redisgate.launcher.postgres import PostgresServer
from redisgate.signals import StopSignals
from redisgate.stack import Stack, running_stack
from redisgate.store import db
from tests.integration.control.conftest import PASSWORD, control_settings

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"
AXE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "axe-core" / "axe.min.js"
TIMEOUT_MS = 10_000


@dataclass
class RunningStack:
    url: str  # the control API, where the console is served
    stack: Stack
    loop: asyncio.AbstractEventLoop  # the stack's, in its thread

    def sql(self, query: str, *args: Any) -> str:
        """One statement on the stack's database, run on the stack's loop."""

        async def run() -> str:
            assert self.stack.settings.database_url is not None
            async with db.connection(self.stack.settings.database_url) as conn:
                return str(await conn.execute(query, *args))

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """The control API over HTTP, as a script would call it (status, body)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def register(self, name: str = "") -> dict[str, Any]:
        email = f"{name or 'user'}-{uuid.uuid4().hex[:8]}@example.com"
        status, body = self.call(
            "POST", "/v1/auth/register", {"email": email, "password": PASSWORD, "name": name}
        )
        assert status == 201, body
        body["email"] = email
        return dict(body)


def _serve(
    postgres: PostgresServer, template: str, ready: threading.Event, box: dict[str, Any]
) -> None:
    async def main() -> None:
        name = f"rg_console_{uuid.uuid4().hex[:8]}"
        async with db.connection(postgres.dsn()) as admin:
            await db.create_database(admin, name, template=template)
        settings = control_settings(
            postgres.dsn(name),
            proxy_port="0",
            http_port="0",
            control_port="0",
            metrics_enabled="false",
        )
        try:
            stop = asyncio.Event()
            box["stop"] = (asyncio.get_running_loop(), stop)
            async with running_stack(settings, StopSignals()) as stack:
                box["stack"] = stack
                ready.set()
                await stop.wait()
        finally:
            async with db.connection(postgres.dsn()) as admin:
                await db.drop_database(admin, name)

    try:
        asyncio.run(main())
    except BaseException as exc:  # reported to the fixture, which fails the tests with it
        box["error"] = exc
    finally:
        ready.set()


@pytest.fixture(scope="package")
def console_stack(
    postgres_server: PostgresServer, migrated_template: str
) -> Iterator[RunningStack]:
    ready, box = threading.Event(), dict[str, Any]()
    thread = threading.Thread(
        target=_serve, args=(postgres_server, migrated_template, ready, box), daemon=True
    )
    thread.start()
    ready.wait(60)
    if "error" in box or "stack" not in box:
        raise RuntimeError(f"the stack did not start: {box.get('error')!r}")
    stack: Stack = box["stack"]
    try:
        yield RunningStack(stack.control_url, stack, box["stop"][0])
    finally:
        loop, stop = box["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "chromium is not installed: the console tests drive Debian's chromium package. "
            "`make install` installs it when run as root (scripts/install-system-deps.sh "
            "--optional chromium); otherwise: sudo apt-get install chromium"
        )
    with sync_playwright() as playwright:
        yield _launch(playwright, chromium)


def _launch(playwright: Playwright, chromium: str) -> Browser:
    # --no-sandbox: the suite runs as root in containers, where chromium's sandbox cannot start.
    return playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1280, "height": 860})
    made.set_default_timeout(TIMEOUT_MS)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    made = context.new_page()
    errors: list[str] = []
    made.on("pageerror", lambda exc: errors.append(str(exc)))
    made.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    made.errors = errors  # type: ignore[attr-defined]
    return made


@pytest.fixture(scope="package")
def axe_source() -> str:
    """axe-core, pinned in tests/node/package-lock.json and installed by tests/node/install.py."""
    from tests.node.install import ensure_installed

    ensure_installed()
    return AXE.read_text()


def check_accessibility(page: Page, axe_source: str, name: str) -> None:
    """axe-core on the page as it is now: no serious or critical violations. It runs through
    the DevTools protocol, which the page's Content-Security-Policy does not restrict."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: accessibility violations {json.dumps(bad, indent=1)}"


def shot(page: Page, name: str) -> None:
    """A screenshot of the whole page under test-output/console/ (docs/console.md uses some)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => document.querySelectorAll('.toast').forEach(t => t.remove())")
    page.wait_for_timeout(100)  # let focus rings and layout settle
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def page_errors(page: Page) -> list[str]:
    """Script errors and console errors (a Content-Security-Policy refusal is one), less the
    browser's note for each 4xx answer the page expected."""
    errors: list[str] = page.errors  # type: ignore[attr-defined]
    return [e for e in errors if not e.startswith("Failed to load resource")]


def sign_up(page: Page, stack: RunningStack, name: str = "Ada") -> str:
    """Create an account through the console; returns its email (password PASSWORD)."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(stack.url + "/#/register")
    page.get_by_label("Your name (optional)").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Instances", exact=True).wait_for()
    return email


def sign_in(page: Page, stack: RunningStack, email: str) -> None:
    page.goto(stack.url + "/#/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Instances", exact=True).wait_for()
