"""The data browser and command line on every Redis type, through the gateway's HTTP command
API with the console's short-lived key."""

from __future__ import annotations

import re
import time
from typing import Any

import redis
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import (
    RunningStack,
    check_accessibility,
    page_errors,
    shot,
    sign_in,
)


def seeded_instance(stack: RunningStack, name: str) -> tuple[dict[str, Any], str, str, redis.Redis]:
    """A user, their running instance, and redis-py on it with a key of its own (through the
    gateway, as any client), to fill the instance and read back what the console did."""
    user = stack.register(name)
    org, token = user["org"]["id"], user["access_token"]
    _, instance = stack.call(
        "POST", f"/v1/orgs/{org}/instances", {"name": "db", "memory_mb": 8}, token
    )
    path = f"/v1/orgs/{org}/instances/{instance['id']}"
    deadline = time.monotonic() + 30
    while stack.call("GET", path, None, token)[1]["status"] != "running":
        assert time.monotonic() < deadline, "the instance did not start"
        time.sleep(0.2)
    status, key = stack.call("POST", f"{path}/keys", {"name": "seed"}, token)
    assert status == 201, key
    client = redis.Redis.from_url(key["url"], decode_responses=True)
    return user, org, instance["id"], client


def counted(nouns: str, first: int, last: int, total: int) -> str:
    """Above a page of a collection, as "Elements 201\N{EN DASH}400 of 450"."""
    return f"{nouns} {first}\N{EN DASH}{last} of {total}"


def cell(region: Locator, text: str) -> Locator:
    """A table cell by its text alone (below 640 px a cell's name also holds its heading)."""
    return region.locator("td").filter(has_text=re.compile(rf"^{re.escape(text)}$"))


def open_key(page: Page, key: str) -> None:
    page.get_by_label("Keys matching").fill(key)
    page.get_by_role("button", name="Scan").click()
    page.get_by_role("button", name=key, exact=True).click()
    expect(page.get_by_role("region", name="Selected key").locator("[data-key-name]")).to_have_text(
        key
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
        expect(value.get_by_role("cell", name=shown, exact=True)).to_be_visible()

    page.get_by_role("button", name="queue", exact=True).click()
    page.get_by_label("Value", exact=True).fill("third")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("cell", name="third", exact=True)).to_be_visible()

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


def test_remove_a_field_an_element_and_members_after_a_keyboard_confirmation(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    user, org, instance, r = seeded_instance(stack, "remove")
    r.hset("profile", mapping={"name": "ada", "lang": "en"})
    r.rpush("queue", "x", "y", "x", "z")
    r.sadd("tags", "red", "green", "blue")
    r.zadd("board", {"ada": 10, "grace": 20})
    sign_in(page, stack, user["email"])
    page.goto(f"{stack.url}/#/orgs/{org}/instances/{instance}/data")
    value = page.get_by_role("region", name="Selected key")

    open_key(page, "profile")
    expect(value.get_by_text(counted("Fields", 1, 2, 2))).to_be_visible()
    page.get_by_role("button", name="Remove field lang").click()
    dialog = page.get_by_role("dialog", name="Remove field lang?")
    check_accessibility(page, axe_source, "data browser, removing a field")
    dialog.get_by_role("button", name="Cancel").click()
    assert r.hgetall("profile") == {"name": "ada", "lang": "en"}
    page.get_by_role("button", name="Remove field lang").click()
    dialog.get_by_role("button", name="Remove").click()
    expect(value.get_by_text(counted("Fields", 1, 1, 1))).to_be_visible()
    expect(value.get_by_role("cell", name="lang", exact=True)).to_have_count(0)
    assert r.hgetall("profile") == {"name": "ada"}

    # By keyboard alone: Enter opens the confirmation, Escape leaves it with the focus back
    # on the button, Enter on the dialog's focused "Remove" confirms.
    open_key(page, "queue")
    expect(value.get_by_text(counted("Elements", 1, 4, 4))).to_be_visible()
    second_x = value.get_by_role("button", name="Remove element x").nth(1)
    second_x.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Remove element x?")
    expect(dialog).to_contain_text("LREM count 1")
    expect(dialog.get_by_role("button", name="Remove")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(second_x).to_be_focused()
    assert r.lrange("queue", 0, -1) == ["x", "y", "x", "z"]
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Remove")).to_be_focused()
    page.keyboard.press("Enter")
    expect(value.get_by_text(counted("Elements", 1, 3, 3))).to_be_visible()
    expect(value.locator("[data-count]")).to_be_focused()  # not lost with the removed row
    assert r.lrange("queue", 0, -1) == ["y", "x", "z"]  # the first x from the head

    open_key(page, "tags")
    page.get_by_role("button", name="Remove member green").click()
    page.get_by_role("dialog", name="Remove member green?").get_by_role(
        "button", name="Remove"
    ).click()
    expect(value.get_by_text(counted("Members", 1, 2, 2))).to_be_visible()
    assert r.smembers("tags") == {"red", "blue"}

    open_key(page, "board")
    for member, left in (("grace", [("ada", 10.0)]), ("ada", [])):
        page.get_by_role("button", name=f"Remove member {member}").click()
        page.get_by_role("dialog", name=f"Remove member {member}?").get_by_role(
            "button", name="Remove"
        ).click()
        expect(value.get_by_role("cell", name=member, exact=True)).to_have_count(0)
        assert r.zrange("board", 0, -1, withscores=True) == left
    expect(page.get_by_text("board no longer exists.")).to_be_visible()  # with its last member
    assert page_errors(page) == []


def test_collections_page_forward_and_back_with_their_size(
    browser: Browser, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    user, org, instance, r = seeded_instance(stack, "paging")
    names = [f"item-{i:03}" for i in range(450)]
    r.rpush("biglist", *names)
    r.zadd("bigzset", {name: i for i, name in enumerate(names)})
    # values past hash-max-listpack-value, so that HSCAN pages (a listpack answers whole)
    r.hset("bighash", mapping={name: f"{i:03}" * 30 for i, name in enumerate(names)})
    r.sadd("bigset", *names)
    for i in range(1, 451):
        r.xadd("bigstream", {"n": str(i)}, id=f"{i}-1")
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        sign_in(page, stack, user["email"])
        page.goto(f"{stack.url}/#/orgs/{org}/instances/{instance}/data")
        value = page.get_by_role("region", name="Selected key")
        forward = value.get_by_role("button", name="Next page")
        back = value.get_by_role("button", name="Previous page")

        # Lists and sorted sets page by offset (LRANGE, ZRANGE): exactly 200 a page.
        for key, nouns in (("biglist", "Elements"), ("bigzset", "Members")):
            open_key(page, key)
            expect(value.get_by_text(counted(nouns, 1, 200, 450))).to_be_visible()
            expect(back).to_be_disabled()
            expect(cell(value, "item-199")).to_be_visible()
            expect(cell(value, "item-200")).to_have_count(0)
            forward.click()
            expect(value.get_by_text(counted(nouns, 201, 400, 450))).to_be_visible()
            expect(cell(value, "item-200")).to_be_visible()
            forward.click()
            expect(value.get_by_text(counted(nouns, 401, 450, 450))).to_be_visible()
            expect(cell(value, "item-449")).to_be_visible()
            expect(forward).to_be_disabled()
            if key == "biglist":
                check_accessibility(page, axe_source, "data browser, a list's last page at 375 px")
                width = page.evaluate("() => document.documentElement.scrollWidth")
                assert width <= 375, f"the data browser is {width} px wide at a 375 px screen"
                shot(page, "data-paging-mobile")
            back.click()
            expect(value.get_by_text(counted(nouns, 201, 400, 450))).to_be_visible()
            back.click()
            expect(value.get_by_text(counted(nouns, 1, 200, 450))).to_be_visible()
            expect(cell(value, "item-000")).to_be_visible()

        # Hashes and sets page by SCAN cursor: about 200 a page, every element once.
        for key, nouns, column in (("bighash", "Fields", "Field"), ("bigset", "Members", "Member")):
            open_key(page, key)
            count = value.locator("[data-count]")
            expect(count).to_have_text(re.compile(f"^{nouns} 1\u2013\\d+ of 450$"))
            seen: list[str] = []
            pages: list[str] = []
            while True:
                cells = value.locator(f"td[data-label={column}]")
                expect(cells.first).to_be_visible()
                seen += cells.all_inner_texts()
                pages.append(count.inner_text())
                if forward.is_disabled():
                    break
                forward.click()
                expect(count).not_to_have_text(pages[-1])
            assert sorted(seen) == names, f"{key}: {len(seen)} shown, {len(set(seen))} distinct"
            assert len(pages) >= 2 and pages[-1].endswith(f"{len(seen)} of 450"), pages
            back.click()
            expect(count).to_have_text(pages[-2])

        # A stream pages newest first by exclusive end id (XREVRANGE key (id - COUNT).
        open_key(page, "bigstream")
        expect(value.get_by_text(counted("Entries", 1, 200, 450))).to_be_visible()
        expect(cell(value, "450-1")).to_be_visible()
        expect(cell(value, "251-1")).to_be_visible()
        expect(cell(value, "250-1")).to_have_count(0)
        forward.click()
        expect(value.get_by_text(counted("Entries", 201, 400, 450))).to_be_visible()
        expect(cell(value, "250-1")).to_be_visible()
        expect(cell(value, "251-1")).to_have_count(0)
        forward.click()
        expect(value.get_by_text(counted("Entries", 401, 450, 450))).to_be_visible()
        expect(cell(value, "1-1")).to_be_visible()
        expect(forward).to_be_disabled()
        back.click()
        expect(value.get_by_text(counted("Entries", 201, 400, 450))).to_be_visible()

        # A removal on a later page stays on that page.
        open_key(page, "biglist")
        forward.click()
        page.get_by_role("button", name="Remove element item-300").click()
        page.get_by_role("dialog", name="Remove element item-300?").get_by_role(
            "button", name="Remove"
        ).click()
        expect(value.get_by_text(counted("Elements", 201, 400, 449))).to_be_visible()
        expect(cell(value, "item-300")).to_have_count(0)
        assert r.llen("biglist") == 449 and "item-300" not in r.lrange("biglist", 0, -1)
        assert errors == []
    finally:
        context.close()


def test_stream_entries_added_with_their_fields_and_shown_with_their_ids(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    user, org, instance, r = seeded_instance(stack, "streams")
    first = r.xadd("events", {"kind": "signup"})
    sign_in(page, stack, user["email"])
    page.goto(f"{stack.url}/#/orgs/{org}/instances/{instance}/data")
    value = page.get_by_role("region", name="Selected key")
    open_key(page, "events")
    expect(value.get_by_text(counted("Entries", 1, 1, 1))).to_be_visible()
    expect(value.get_by_role("cell", name=first, exact=True)).to_be_visible()

    pairs = page.get_by_label("Fields and values")
    pairs.fill("kind login user")  # a field without its value
    page.get_by_role("button", name="Add entry").click()
    expect(pairs).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Fields and values must be pairs")).to_be_visible()
    assert r.xlen("events") == 1

    pairs.fill('kind login user "Ada L"')
    page.get_by_role("button", name="Add entry").click()
    expect(value.get_by_text(counted("Entries", 1, 2, 2))).to_be_visible()
    [(added, fields)] = r.xrevrange("events", count=1)
    assert fields == {"kind": "login", "user": "Ada L"} and added != first
    expect(
        value.get_by_role("cell", name=added, exact=True)
    ).to_be_visible()  # its id, newest first
    expect(value.get_by_role("row").nth(1)).to_contain_text("kind=login user=Ada L")
    expect(pairs).to_have_value("")
    check_accessibility(page, axe_source, "data browser, a stream")
    shot(page, "data-stream")

    page.get_by_role("button", name=f"Remove entry {first}").click()
    page.get_by_role("dialog", name=f"Remove entry {first}?").get_by_role(
        "button", name="Remove"
    ).click()
    expect(value.get_by_text(counted("Entries", 1, 1, 1))).to_be_visible()
    expect(value.get_by_role("cell", name=first, exact=True)).to_have_count(0)
    assert [entry for entry, _ in r.xrange("events")] == [added]
    assert page_errors(page) == []


def test_a_viewer_sees_collections_without_remove_or_add(
    page: Page, console_stack: RunningStack
) -> None:
    stack = console_stack
    owner, org, instance, r = seeded_instance(stack, "owner")
    viewer = stack.register("viewer")
    status, _ = stack.call(
        "POST",
        f"/v1/orgs/{org}/members",
        {"email": viewer["email"], "role": "viewer"},
        owner["access_token"],
    )
    assert status == 201
    r.hset("profile", mapping={"name": "ada"})
    r.xadd("events", {"kind": "signup"})
    sign_in(page, stack, viewer["email"])
    page.goto(f"{stack.url}/#/orgs/{org}/instances/{instance}/data")
    value = page.get_by_role("region", name="Selected key")
    open_key(page, "profile")
    expect(value.get_by_role("cell", name="ada", exact=True)).to_be_visible()
    expect(value.get_by_role("button", name="Remove field name")).to_have_count(0)
    expect(value.get_by_role("button", name="Add")).to_have_count(0)
    open_key(page, "events")
    expect(value.get_by_text(counted("Entries", 1, 1, 1))).to_be_visible()
    expect(page.get_by_label("Fields and values")).to_have_count(0)
    assert page_errors(page) == []
