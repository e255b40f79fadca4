"""`redisgate admin create-user`: a real process creating a platform admin who can then log in."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.integration.control.conftest import PASSWORD, TEST_ENV, Api


async def run_cli(
    database_url: str, *args: str, stdin: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `redisgate admin create-user` as a script would: its own session (so no
    controlling terminal), stdin a pipe."""
    inherited = {k: v for k, v in os.environ.items() if k != "REDISGATE_ADMIN_PASSWORD"}
    env = {**inherited, **TEST_ENV, "REDISGATE_DATABASE_URL": database_url, **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redisgate",
        "admin",
        "create-user",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_create_platform_admin(api: Api, database_url: str) -> None:
    code, out, err = await run_cli(
        database_url,
        "--email",
        "ops@example.com",
        "--name",
        "Ops",
        "--admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, err
    assert "platform admin ops@example.com created" in out
    login = await api.post(
        "/v1/auth/login", json={"email": "ops@example.com", "password": PASSWORD}
    )
    me = await api.get("/v1/me", token=login.body["access_token"])
    assert me.body["user"]["is_platform_admin"] is True and me.body["user"]["name"] == "Ops"
    assert len(me.body["orgs"]) == 1


async def test_create_user_refusals(database_url: str) -> None:
    code, _, err = await run_cli(
        database_url, "--email", "weak@example.com", "--password-stdin", stdin="password1\n"
    )
    assert code == 1 and "at least 10 characters" in err
    code, _, err = await run_cli(
        database_url, "--email", "not-an-email", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 1 and "email" in err
    args = ("--email", "dup@example.com", "--password-stdin")
    assert (await run_cli(database_url, *args, stdin=PASSWORD + "\n"))[0] == 0
    code, _, err = await run_cli(database_url, *args, stdin=PASSWORD + "\n")
    assert code == 1 and "already exists" in err


async def test_password_from_the_environment(api: Api, database_url: str) -> None:
    code, out, err = await run_cli(
        database_url,
        "--email",
        "env@example.com",
        stdin="",
        env={"REDISGATE_ADMIN_PASSWORD": PASSWORD},
    )
    assert code == 0, err
    assert "user env@example.com created" in out and err == ""
    login = await api.post(
        "/v1/auth/login", json={"email": "env@example.com", "password": PASSWORD}
    )
    assert login.status == 200


async def test_no_password_and_no_terminal_is_one_clear_line(database_url: str) -> None:
    code, out, err = await run_cli(database_url, "--email", "nope@example.com", stdin="")
    assert code == 2, err
    assert err == (
        "redisgate: no password given and no terminal to ask on: pipe it with "
        "--password-stdin or set REDISGATE_ADMIN_PASSWORD\n"
    )
    assert out == ""
    code, _, err = await run_cli(
        database_url, "--email", "nope@example.com", "--password-stdin", stdin=""
    )
    assert (code, err) == (
        2,
        "redisgate: --password-stdin: stdin is empty; pipe the password in, one line\n",
    )
