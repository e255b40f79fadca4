"""`make run` as a new user meets it: `redisgate dev` prints the control URL, where the console
is served, and the printed demo login signs in there and finds the demo instance running."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import page_errors, shot
from tests.e2e.test_dev import LINE_COUNT, Dev, processes_mentioning


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    data_dir = tmp_path / "data"
    running = Dev(data_dir)
    try:
        yield running
    finally:
        running.kill()
        for pid in processes_mentioning(str(data_dir)):
            os.kill(pid, signal.SIGKILL)


def test_the_printed_demo_login_works_in_the_console(dev: Dev, page: Page) -> None:
    lines = dev.read_lines()
    assert len(lines) == LINE_COUNT, f"got {lines}; {dev.stderr_path.read_text()[-3000:]}"
    printed = dict(line.split("=", 1) for line in lines if line.startswith("REDISGATE_"))
    email, password = printed["REDISGATE_DEMO_LOGIN"].split(":", 1)
    page.goto(printed["REDISGATE_CONTROL_URL"] + "/#/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Instances", exact=True).wait_for()
    page.get_by_role("link", name="demo", exact=True).wait_for()
    shot(page, "dev-demo-instances")
    assert page_errors(page) == []
    code, err = dev.stop(signal.SIGTERM)
    assert code == 0, err
