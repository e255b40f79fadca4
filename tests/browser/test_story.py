"""The story of issue 17 in a real browser: a new user signs up, creates an instance and a
key, connects with the redis-cli command the console shows, and revokes the key, which cuts
a live session."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import time

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import (
    PASSWORD,
    RunningStack,
    check_accessibility,
    page_errors,
    shot,
)


def redis_cli(command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line as the console shows it (`redis-cli -u redis://…`), plus arguments."""
    argv = shlex.split(command)
    assert argv[:2] == ["redis-cli", "-u"], command
    return subprocess.run(
        [*argv, "--no-auth-warning", *args], capture_output=True, text=True, timeout=10
    )


def live_session(url_command: str) -> socket.socket:
    """A client connected with the key: AUTH and PING answered, then left open."""
    url = shlex.split(url_command)[2]
    secret_and_host = url.removeprefix("redis://default:")
    token, _, address = secret_and_host.partition("@")
    host, _, port_db = address.partition(":")
    sock = socket.create_connection((host, int(port_db.split("/")[0])), timeout=5)
    sock.sendall(f"AUTH default {token}\r\nPING\r\n".encode())
    answer = b""
    while answer.count(b"\r\n") < 2:
        answer += sock.recv(100)
    assert answer == b"+OK\r\n+PONG\r\n", answer
    return sock


def cut_within(sock: socket.socket, seconds: float) -> bool:
    """True when the gateway closes the connection within `seconds`."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(100) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def test_sign_up_create_instance_and_key_connect_revoke(
    context: BrowserContext, page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)

    page.goto(stack.url + "/")
    expect(page.get_by_role("heading", name="Your own Redis in under a minute")).to_be_visible()
    check_accessibility(page, axe_source, "landing")
    shot(page, "landing")

    page.get_by_role("link", name="Create an account").first.click()
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    check_accessibility(page, axe_source, "register")
    shot(page, "register")
    page.get_by_label("Your name (optional)").fill("Ada")
    page.get_by_label("Email").fill("ada-story@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("heading", name="No instances yet")).to_be_visible()
    expect(page.get_by_text("Quota: 0 of 5 instances")).to_be_visible()
    check_accessibility(page, axe_source, "instances (empty)")
    shot(page, "instances-empty")

    page.get_by_role("link", name="Create your first instance").click()
    expect(page.get_by_role("heading", name="Create an instance")).to_be_visible()
    page.get_by_label("Name").fill("cache")
    page.get_by_label("Memory (MB)").fill("32")
    check_accessibility(page, axe_source, "create instance")
    shot(page, "instance-create")
    page.get_by_role("button", name="Create instance").click()

    expect(page.get_by_role("heading", name="cache", exact=True)).to_be_visible()
    expect(page.locator(".page-head .badge")).to_have_text("running")
    expect(page.get_by_text("Ops/s")).to_be_visible()  # live stats arrived
    expect(page.get_by_text("Commands: none in the last 30 days.")).to_be_visible()
    check_accessibility(page, axe_source, "instance overview")
    shot(page, "instance")

    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()
    page.get_by_label("Name").fill("ops")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Key ops created")
    expect(dialog).to_be_visible()
    check_accessibility(page, axe_source, "key created")
    shot(page, "key-created")

    shown = dialog.locator('[data-copy="key-redis-cli"]').inner_text()
    dialog.get_by_role("button", name="Copy redis-cli command").click()
    expect(page.get_by_text("Copied redis-cli command.")).to_be_visible()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == shown and copied.startswith("redis-cli -u redis://default:rg_"), copied
    dialog.get_by_text("Code for your client, with this key").click()
    dialog.get_by_label("Client").select_option(label="redis-py")
    token = copied.split("default:")[1].split("@")[0]
    expect(dialog.locator("pre")).to_contain_text(f'from_url("redis://default:{token}@')
    pong = redis_cli(copied, "PING")
    assert pong.stdout.strip() == "PONG", pong
    assert redis_cli(copied, "SET", "greeting", "hello from redis-cli").stdout.strip() == "OK"
    session = live_session(copied)
    dialog.get_by_role("button", name="I have copied it").click()

    # The data browser shows what redis-cli wrote, and its command line runs commands.
    page.get_by_role("link", name="Data").click()
    page.get_by_role("button", name="greeting").click()
    expect(page.get_by_label("Value")).to_have_value("hello from redis-cli")
    cli = page.get_by_placeholder("GET greeting")
    cli.fill("HSET user:1 name Ada lang 'Python 3'")
    cli.press("Enter")
    expect(page.locator(".cli-output")).to_contain_text("(integer) 2")
    page.get_by_role("button", name="Scan").click()
    page.get_by_role("button", name="user:1").click()
    expect(page.get_by_role("cell", name="Python 3")).to_be_visible()
    check_accessibility(page, axe_source, "data browser")
    shot(page, "data")

    page.get_by_role("link", name="API keys").click()
    row = page.locator("tr", has_text="ops")
    expect(row.get_by_text("active")).to_be_visible()
    shot(page, "keys")
    row.get_by_role("button", name="Revoke ops").click()
    confirm = page.get_by_role("dialog", name="Revoke ops?")
    confirm.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("Revoked ops.")).to_be_visible()
    expect(row.get_by_text("revoked")).to_be_visible()
    assert cut_within(session, 5), "the live session with the revoked key stayed open"
    session.close()
    refused = redis_cli(copied, "PING")
    assert "WRONGPASS" in refused.stdout + refused.stderr or "AUTH failed" in (
        refused.stdout + refused.stderr
    ), refused

    # The gateway counted those commands (flushed every few seconds): the usage chart shows them.
    chart = page.get_by_role("img", name=re.compile(r"^Commands: [1-9][0-9,]* in the last 30 days"))
    deadline = time.monotonic() + 15
    while chart.count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        page.get_by_role("link", name="Settings").click()
        page.get_by_role("heading", name="Settings").wait_for()
        page.get_by_role("link", name="Overview").click()
        page.get_by_text("Usage, last 30 days").wait_for()
        page.wait_for_timeout(300)
    expect(chart).to_be_visible()
    shot(page, "instance-usage")
    assert page_errors(page) == []
