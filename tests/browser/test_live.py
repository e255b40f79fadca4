"""What makes the console feel alive and safe: a reload keeps the session (refresh token in
an HttpOnly cookie, access token in memory only), and changes made elsewhere appear without
a reload."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    PASSWORD,
    TIMEOUT_MS,
    RunningStack,
    check_accessibility,
    page_errors,
    sign_in,
    sign_up,
)


def test_a_reload_keeps_the_session_and_no_token_is_stored_where_scripts_read(
    page: Page, console_stack: RunningStack
) -> None:
    sign_up(page, console_stack, "Reload")
    page.reload()
    expect(page.get_by_role("heading", name="No instances yet")).to_be_visible()
    stored = page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]")
    assert stored[0] == 0 and stored[1] == 0, stored
    assert "rg_csrf=" in stored[2] and "rg_refresh" not in stored[2]  # HttpOnly: not readable
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Your own Redis in under a minute")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Your own Redis in under a minute")).to_be_visible()
    page.goto(console_stack.url + "/#/profile")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page_errors(page) == []


def test_changes_elsewhere_appear_without_a_reload(
    browser: Browser, page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    user = stack.register("live")
    org, token = user["org"]["id"], user["access_token"]
    sign_in(page, stack, user["email"])
    other = browser.new_context()
    other.set_default_timeout(TIMEOUT_MS)
    try:
        second = other.new_page()
        sign_in(second, stack, user["email"])
        second.get_by_role("link", name="Create your first instance").click()
        second.get_by_label("Name").fill("from-the-other-tab")
        second.get_by_role("button", name="Create instance").click()
        expect(second.get_by_role("heading", name="from-the-other-tab")).to_be_visible()
    finally:
        other.close()
    row = page.locator("tr", has_text="from-the-other-tab")
    expect(row.get_by_text("running")).to_be_visible()

    # A key made through the API shows on the open keys page, and its revocation too.
    instance = page.get_by_role("link", name="from-the-other-tab")
    instance.click()
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()
    _, listed = stack.call("GET", f"/v1/orgs/{org}/instances", token=token)
    instance_id = listed["items"][0]["id"]
    path = f"/v1/orgs/{org}/instances/{instance_id}/keys"
    status, key = stack.call("POST", path, {"name": "from-a-script"}, token)
    assert status == 201
    expect(page.locator("tr", has_text="from-a-script").get_by_text("active")).to_be_visible()
    stack.call("DELETE", f"{path}/{key['id']}", token=token)
    expect(page.locator("tr", has_text="from-a-script").get_by_text("revoked")).to_be_visible()
    check_accessibility(page, axe_source, "keys, live")
    assert page_errors(page) == []


def test_a_member_removed_elsewhere_leaves_the_organization_at_once(
    page: Page, console_stack: RunningStack
) -> None:
    stack = console_stack
    owner, member = stack.register("boss"), stack.register("temp")
    org, token = owner["org"]["id"], owner["access_token"]
    status, _ = stack.call(
        "POST", f"/v1/orgs/{org}/members", {"email": member["email"], "role": "member"}, token
    )
    assert status == 201
    sign_in(page, stack, member["email"])
    page.get_by_label("Organization").select_option(label="boss's organization (member)")
    expect(page.get_by_role("heading", name="No instances yet")).to_be_visible()
    status, _ = stack.call(
        "PATCH", f"/v1/orgs/{org}/members/{member['user']['id']}", {"role": "viewer"}, token
    )
    assert status == 200
    expect(page.get_by_text("Your role here is now viewer.")).to_be_visible()
    expect(page.get_by_role("option", name="boss's organization (viewer)")).to_be_attached()
    expect(page.get_by_role("link", name="Create your first instance")).to_have_count(0)
    status, _ = stack.call("DELETE", f"/v1/orgs/{org}/members/{member['user']['id']}", token=token)
    assert status == 204
    expect(page.get_by_text("You no longer have access to that organization.")).to_be_visible()
    expect(page.get_by_role("option", name="boss's organization (viewer)")).to_have_count(0)
    expect(page.get_by_label("Organization")).to_have_value(member["org"]["id"])


def test_a_session_ended_elsewhere_leads_back_to_sign_in(
    page: Page, console_stack: RunningStack
) -> None:
    stack = console_stack
    user = stack.register("ended")
    sign_in(page, stack, user["email"])
    # The user ends every other session from another device (a password change does).
    status, _ = stack.call(
        "PATCH",
        "/v1/me",
        {"current_password": PASSWORD, "password": "a brand new passphrase here"},
        user["access_token"],
    )
    assert status == 200
    # No click needed, nor waited for: the live stream is told, ends, and its next connect
    # (401, and no refresh) signs the console out. (Clicking a link raced this: the page
    # could already be on its way to the sign-in form, and the link gone.)
    expect(page.get_by_text("Your session has ended. Sign in again.")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
