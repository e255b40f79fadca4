"""The console's pages one by one: errors at the right field, quotas, roles, a phone-sized
screen, and the organization's and the user's own pages. Each page is checked with axe-core
and photographed (test-output/console/)."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    PASSWORD,
    TIMEOUT_MS,
    RunningStack,
    check_accessibility,
    page_errors,
    shot,
    sign_in,
    sign_up,
)


def test_sign_up_and_sign_in_errors_are_shown_at_their_fields(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    taken = stack.register("taken")["email"]
    page.goto(stack.url + "/#/register")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Email is required.")).to_be_visible()
    expect(page.get_by_text("Password must be at least 10 characters.")).to_be_visible()
    expect(page.get_by_label("Email")).to_be_focused()

    page.get_by_label("Email").fill("not-an-email@nowhere")
    page.get_by_label("Password").fill("password1234")
    page.get_by_role("button", name="Create account").click()
    expect(
        page.get_by_text("Email must be an email address like name@example.com.")
    ).to_be_visible()
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Email").fill("someone@example.com")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Password is one of the most common passwords")).to_be_visible()
    check_accessibility(page, axe_source, "register errors")
    shot(page, "register-errors")

    page.get_by_label("Email").fill(taken)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Email is already registered: sign in instead")).to_be_visible()

    page.goto(stack.url + "/#/login")
    page.get_by_label("Email").fill(taken)
    page.get_by_label("Password").fill("not the right password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or password is wrong.")
    check_accessibility(page, axe_source, "login error")
    shot(page, "login-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="No instances yet")).to_be_visible()
    assert page_errors(page) == []


def test_instance_form_validates_and_shows_the_quota_refusal(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    user = stack.register("quota")
    sign_in(page, stack, user["email"])
    page.get_by_role("link", name="Create your first instance").click()
    expect(page.get_by_text("1,024 MB of 1,024 MB left")).to_be_visible()
    page.get_by_label("Name").fill("")
    page.get_by_label("Memory (MB)").fill("5000")
    page.get_by_role("button", name="Create instance").click()
    expect(page.get_by_text("Name is required.")).to_be_visible()
    expect(page.get_by_text("Memory (MB) must be at most 1024")).to_be_visible()

    # Meanwhile the organization's memory is taken from elsewhere (the API, another tab).
    org, token = user["org"]["id"], user["access_token"]
    status, body = stack.call(
        "POST", f"/v1/orgs/{org}/instances", {"name": "big", "memory_mb": 1000}, token
    )
    assert status == 201, body
    page.get_by_label("Name").fill("cache")
    page.get_by_label("Memory (MB)").fill("64")
    page.get_by_role("button", name="Create instance").click()
    expect(
        page.get_by_text("over the organization's quota: it uses 1000 of 1024 MB")
    ).to_be_visible()
    expect(page.get_by_label("Memory (MB)")).to_have_attribute("aria-invalid", "true")
    check_accessibility(page, axe_source, "quota refusal")
    shot(page, "instance-create-quota")

    page.get_by_role("link", name="Cancel").click()
    row = page.locator("tr", has_text="big")
    expect(row.get_by_text("running")).to_be_visible()
    expect(page.get_by_text("Quota: 1 of 5 instances, 1,000 of 1,024 MB")).to_be_visible()
    check_accessibility(page, axe_source, "instances")
    shot(page, "instances")
    assert page_errors(page) == []


def test_key_rules_refused_by_the_api_are_marked_where_they_fail(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    user = stack.register("scopes")
    org, token = user["org"]["id"], user["access_token"]
    _, instance = stack.call(
        "POST", f"/v1/orgs/{org}/instances", {"name": "app", "memory_mb": 8}, token
    )
    sign_in(page, stack, user["email"])
    page.goto(f"{stack.url}/#/orgs/{org}/instances/{instance['id']}/keys")
    page.get_by_label("Name").fill("reader")
    page.get_by_text("Custom rules").click()
    expect(page.get_by_label("Only keys starting with (optional)")).to_be_hidden()
    rules = page.get_by_role("textbox", name="ACL rules")
    rules.fill("+@read ~app:* +gte")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("(column 15)")).to_be_visible()
    expect(rules).to_be_focused()
    assert page.evaluate("() => document.activeElement.selectionStart") == 14
    check_accessibility(page, axe_source, "scope error")
    shot(page, "key-scope-error")

    page.get_by_text("Read only").click()
    page.get_by_label("Only keys starting with (optional)").fill("app:")
    page.get_by_label("Name").fill("reader")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("button", name="I have copied it").click()
    row = page.locator("tr", has_text="reader")
    expect(row.locator("code").nth(1)).to_contain_text("~app:*")

    row.get_by_role("button", name="Edit reader").click()
    edit = page.get_by_role("dialog", name="Edit reader")
    edit.get_by_role("textbox", name="ACL rules").fill("+@read ~other:* +nope")
    edit.get_by_role("button", name="Save key").click()
    expect(edit.get_by_text("Unknown command 'nope'")).to_be_visible()
    edit.get_by_role("textbox", name="ACL rules").fill("+@read ~other:*")
    edit.get_by_role("button", name="Save key").click()
    expect(page.get_by_text("Saved reader.")).to_be_visible()
    expect(row.locator("code").nth(1)).to_contain_text("~other:*")
    assert page_errors(page) == []


def test_a_viewer_sees_no_write_buttons_and_the_api_refuses_writes(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    owner, viewer = stack.register("owner"), stack.register("viewer")
    org, token = owner["org"]["id"], owner["access_token"]
    _, instance = stack.call(
        "POST", f"/v1/orgs/{org}/instances", {"name": "shared", "memory_mb": 8}, token
    )
    status, _ = stack.call(
        "POST", f"/v1/orgs/{org}/members", {"email": viewer["email"], "role": "viewer"}, token
    )
    assert status == 201
    sign_in(page, stack, viewer["email"])
    page.get_by_label("Organization").select_option(label="owner's organization (viewer)")
    expect(page.get_by_role("link", name="shared")).to_be_visible()
    expect(page.get_by_role("link", name="Create instance")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    page.get_by_role("link", name="shared").click()
    expect(page.get_by_role("heading", name="shared", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Overview")).to_be_visible()
    expect(page.get_by_role("link", name="API keys")).to_have_count(0)
    expect(page.get_by_role("link", name="Data")).to_be_visible()  # read-only: a viewer's key
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    expect(page.get_by_text("Ask a member of the organization for a key.")).to_be_visible()
    check_accessibility(page, axe_source, "viewer instance")
    shot(page, "viewer-instance")
    page.get_by_role("link", name="Data").click()
    expect(page.get_by_text("Your role can read the data, not change it.")).to_be_visible()
    expect(page.get_by_role("button", name="New string key")).to_have_count(0)
    cli = page.get_by_placeholder("GET greeting")
    cli.fill("SET mine 1")
    cli.press("Enter")
    expect(page.locator(".cli-output")).to_contain_text("(error) NOPERM")
    page.goto(f"{stack.url}/#/orgs/{org}/instances/new")
    expect(page.get_by_text("Your role (viewer) cannot create instances.")).to_be_visible()
    page.goto(f"{stack.url}/#/orgs/{org}/members")
    expect(page.get_by_role("heading", name="Add a member")).to_have_count(0)
    expect(page.get_by_role("combobox", name=f"Role of {owner['email']}")).to_have_count(0)

    # The API refuses the same writes, whatever a page shows.
    vt = viewer["access_token"]
    for method, path, body in (
        ("POST", f"/v1/orgs/{org}/instances", {"name": "x", "memory_mb": 8}),
        ("PATCH", f"/v1/orgs/{org}/instances/{instance['id']}", {"memory_mb": 16}),
        ("DELETE", f"/v1/orgs/{org}/instances/{instance['id']}", None),
        ("POST", f"/v1/orgs/{org}/instances/{instance['id']}/keys", {"name": "k"}),
    ):
        status, refused = stack.call(method, path, body, vt)
        assert status == 403 and refused["error"]["code"] == "insufficient_role", (path, refused)
    assert page_errors(page) == []


def test_usable_at_375_px(browser: Browser, console_stack: RunningStack, axe_source: str) -> None:
    stack = console_stack
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        sign_up(page, stack, "Phone")
        page.get_by_role("link", name="Create your first instance").click()
        page.get_by_label("Name").fill("pocket")
        page.get_by_role("button", name="Create instance").click()
        expect(page.locator(".page-head .badge")).to_have_text("running")
        expect(page.get_by_text("Ops/s")).to_be_visible()
        check_accessibility(page, axe_source, "instance at 375 px")
        shot(page, "mobile-instance")
        for where in ("instance", "keys", "key dialog", "instances"):
            if where == "keys":
                page.get_by_role("link", name="API keys").click()
                page.get_by_role("heading", name="Create an API key").wait_for()
            if where == "key dialog":
                page.get_by_label("Name").fill("phone")
                page.get_by_role("button", name="Create key").click()
                dialog = page.get_by_role("dialog", name="Key phone created")
                expect(dialog).to_be_visible()
                box = dialog.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
                assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth"), "content overflows"
                expect(dialog.get_by_role("button", name="Copy token")).to_be_in_viewport()
                check_accessibility(page, axe_source, "key dialog at 375 px")
                shot(page, "mobile-key-created")
                dialog.get_by_role("button", name="I have copied it").click()
            if where == "instances":
                page.get_by_role("link", name="Instances", exact=True).first.click()
                page.get_by_role("link", name="pocket").wait_for()
                shot(page, "mobile-instances")
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 375, f"{where}: the page is {width} px wide at a 375 px screen"
    finally:
        context.close()


def test_members_audit_organization_and_profile_pages(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    colleague = stack.register("colleague")
    email = sign_up(page, stack, "Grace")
    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("cell", name=email)).to_be_visible()
    page.get_by_label("Email").fill("nobody-here@example.com")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_text("Email has no account yet")).to_be_visible()
    page.get_by_label("Email").fill(colleague["email"])
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_text(f"Added {colleague['email']} as viewer.")).to_be_visible()
    expect(page.get_by_label("Role", exact=True)).to_have_value(
        "member"
    )  # the form's default again
    role = page.get_by_label(f"Role of {colleague['email']}")
    role.select_option("member")
    expect(page.get_by_text(f"{colleague['email']} is now member.")).to_be_visible()
    check_accessibility(page, axe_source, "members")
    shot(page, "members")

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("cell", name="member.update")).to_be_visible()
    page.get_by_label("Action").fill("member.add")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("1 entry shown.")).to_be_visible()
    expect(page.get_by_role("button", name="Load older entries")).to_be_hidden()
    check_accessibility(page, axe_source, "audit log")
    shot(page, "audit")

    page.get_by_role("link", name="Organization").click()
    expect(page.get_by_role("heading", name="Quota")).to_be_visible()
    expect(page.get_by_text("0 / 5")).to_be_visible()
    check_accessibility(page, axe_source, "organization")
    shot(page, "organization")
    page.get_by_role("textbox", name="Name").fill("  ")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_text("Name is required")).to_be_visible()
    page.get_by_role("textbox", name="Name").fill("Grace's lab")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_text("Renamed the organization.")).to_be_visible()
    expect(page.get_by_role("heading", name="Grace's lab")).to_be_visible()
    page.get_by_label("Organization").select_option(label="+ New organization…")
    page.get_by_role("textbox", name="Name").fill("Second org")
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_text("Created Second org.")).to_be_visible()
    page.get_by_role("heading", name="Instances", exact=True).wait_for()

    page.get_by_role("link", name="Grace").click()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    expect(page.get_by_text("this session")).to_be_visible()
    page.get_by_label("Current password").fill("wrong password, certainly")
    page.get_by_label("New password").fill("another good passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Current password is not your current password.")).to_be_visible()
    check_accessibility(page, axe_source, "profile")
    shot(page, "profile")
    assert page_errors(page) == []


def test_instance_settings_edit_and_typed_delete(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    user = stack.register("edit")
    org, token = user["org"]["id"], user["access_token"]
    _, instance = stack.call(
        "POST", f"/v1/orgs/{org}/instances", {"name": "tmp", "memory_mb": 8}, token
    )
    sign_in(page, stack, user["email"])
    page.goto(f"{stack.url}/#/orgs/{org}/instances/{instance['id']}/settings")
    page.get_by_label("Memory (MB)").fill("16")
    page.get_by_label("When memory is full").select_option("allkeys-lru")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Saved tmp.")).to_be_visible()
    _, stored = stack.call("GET", f"/v1/orgs/{org}/instances/{instance['id']}", token=token)
    assert (stored["memory_mb"], stored["eviction_policy"]) == (16, "allkeys-lru")

    page.get_by_text("Limits for all of its keys together").click()
    page.get_by_label("Commands per second").fill("100")
    page.get_by_label("Burst").fill("0")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Burst must be at least 1.")).to_be_visible()
    page.get_by_label("Burst").fill("")
    for toast in page.get_by_role("button", name="Dismiss").all():
        toast.click()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Saved tmp.")).to_be_visible()
    _, stored = stack.call("GET", f"/v1/orgs/{org}/instances/{instance['id']}", token=token)
    assert stored["limits"]["ops_per_second"] == 100 and stored["limits"]["burst"] is None
    check_accessibility(page, axe_source, "instance settings")
    shot(page, "instance-settings")

    page.get_by_role("button", name="Delete instance").click()
    dialog = page.get_by_role("dialog", name="Delete tmp?")
    confirm = dialog.get_by_role("button", name="Delete instance")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Type tmp to confirm").fill("tm")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Type tmp to confirm").fill("tmp")
    check_accessibility(page, axe_source, "delete dialog")
    shot(page, "instance-delete")
    confirm.click()
    expect(page.get_by_role("heading", name="No instances yet")).to_be_visible()
    status, _ = stack.call("GET", f"/v1/orgs/{org}/instances/{instance['id']}", token=token)
    assert status == 404
    assert page_errors(page) == []


def test_a_platform_admin_edits_the_quota(
    page: Page, console_stack: RunningStack, axe_source: str
) -> None:
    stack = console_stack
    admin = stack.register("admin")
    assert stack.sql(
        "UPDATE users SET is_platform_admin = true WHERE id = $1", admin["user"]["id"]
    ).endswith("1")
    sign_in(page, stack, admin["email"])
    page.get_by_role("link", name="Organization").click()
    form = page.get_by_role("form", name="Edit quota")
    form.get_by_label("Instances").fill("7")
    form.get_by_role("button", name="Save quota").click()
    expect(page.get_by_text("Saved the quota.")).to_be_visible()
    expect(page.get_by_text("0 / 7")).to_be_visible()
    check_accessibility(page, axe_source, "quota, platform admin")
    shot(page, "quota-admin")
    user = stack.register("plain")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    sign_in(page, stack, user["email"])
    page.get_by_role("link", name="Organization").click()
    expect(page.get_by_text("A platform administrator can raise these limits.")).to_be_visible()
    expect(page.get_by_role("form", name="Edit quota")).to_have_count(0)
    assert page_errors(page) == []


def test_keyboard_only_sign_in_and_skip_link(page: Page, console_stack: RunningStack) -> None:
    stack = console_stack
    user = stack.register("keys")
    page.goto(stack.url + "/#/")
    page.get_by_role("link", name="Sign in").first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign in")).to_be_focused()  # where a page starts
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(user["email"])
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Instances", exact=True)).to_be_focused()
    skip = page.get_by_role("link", name="Skip to content")
    skip.focus()  # the first Tab stop of every page
    expect(skip).to_be_in_viewport()  # shown while focused
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    assert page.url.endswith("/instances"), page.url  # the route stays
    assert page_errors(page) == []
