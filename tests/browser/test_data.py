"""The data browser and command line on every Redis type, through the gateway's HTTP command
API with the console's short-lived key."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    RunningStack,
    check_accessibility,
    page_errors,
    shot,
    sign_in,
)


def test_every_type_shown_edited_expired_and_deleted(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    user = stack.register("data")
    org, token = user["org"]["id"], user["access_token"]
    _, instance = stack.call(
        "POST", f"/v1/orgs/{org}/instances", {"name": "db", "memory_mb": 8}, token
    )
    sign_in(page, stack, user["email"])
    page.goto(f"{stack.url}/#/orgs/{org}/instances/{instance['id']}/data")
    expect(page.get_by_text("No keys match.")).to_be_visible()
    cli = page.get_by_placeholder("GET greeting")
    output = page.locator(".cli-output")
    for line, answer in (
        ("RPUSH queue first second", "(integer) 2"),
        ("SADD tags red green", "(integer) 2"),
        ("ZADD board 10 ada 20 grace", "(integer) 2"),
        ("XADD events 1-1 kind signup", '"1-1"'),
        ('SET "note:1" "two words"', "OK"),
        ("GET note:1", '"two words"'),
        ("LRANGE queue 0 -1", '1) "first"\n2) "second"'),
        ("NOSUCHCOMMAND", "(error) ERR unknown command"),
    ):
        cli.fill(line)
        cli.press("Enter")
        expect(output).to_contain_text(answer)
    cli.press("ArrowUp")  # the history
    expect(cli).to_have_value("NOSUCHCOMMAND")

    page.get_by_label("Keys matching").fill("*")
    page.get_by_role("button", name="Scan").click()
    expect(page.get_by_text("5 keys.")).to_be_visible()
    views = {
        "queue": ("list", "second"),
        "tags": ("set", "green"),
        "board": ("zset", "grace"),
        "events": ("stream", "kind=signup"),
    }
    for key, (kind, shown) in views.items():
        page.get_by_role("button", name=key, exact=True).click()
        value = page.get_by_role("region", name="Selected key")
        expect(value.get_by_text(kind, exact=True)).to_be_visible()
        expect(value.get_by_role("cell", name=shown)).to_be_visible()

    page.get_by_role("button", name="queue", exact=True).click()
    page.get_by_label("Value", exact=True).fill("third")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("cell", name="third")).to_be_visible()

    page.get_by_role("button", name="note:1").click()
    page.get_by_label("Value", exact=True).fill("edited in the console")
    page.get_by_role("button", name="Save value").click()
    expect(page.get_by_text("Saved note:1.")).to_be_visible()
    page.get_by_label("Expire after (seconds)").fill("500")
    page.get_by_role("button", name="Set TTL").click()
    expect(page.get_by_text(re.compile(r"^(500|499) s$"))).to_be_visible()  # the key's TTL
    check_accessibility(page, axe_source, "data browser, a string")
    shot(page, "data-string")
    page.get_by_role("button", name="Delete key").click()
    page.get_by_role("dialog", name="Delete note:1?").get_by_role(
        "button", name="Delete key"
    ).click()
    expect(page.get_by_text("Deleted note:1.")).to_be_visible()
    expect(page.get_by_text("4 keys.")).to_be_visible()

    page.get_by_label("Keys matching").fill("t*")
    page.get_by_role("button", name="Scan").click()
    expect(page.get_by_text("1 key.")).to_be_visible()
    cli.fill("GET note:1")
    cli.press("Enter")
    expect(output).to_contain_text("(nil)")
    assert page_errors(page) == []
