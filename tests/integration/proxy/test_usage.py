"""Usage through a real gateway into real PostgreSQL: exact counts, idempotent flushes,
nothing lost at shutdown, and the daily series of the control API."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.wire.encode import encode_command
from redisgate.store import db, instances, usage
from tests.integration.control.conftest import api_for, control_settings
from tests.integration.proxy.test_pg_source import (
    backend_of,
    new_instance,
    new_key,
    run_pg_gateway,
)


def send_commands(port: int, token: str, commands: list[list[bytes]]) -> bytes:
    """AUTH, then the commands, pipelined on a raw socket; returns every reply byte."""
    wire = encode_command([b"AUTH", token.encode()]) + b"".join(map(encode_command, commands))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(wire)
        data = b""
        while data.count(b"\r\n") < len(commands) + 1:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    return data


async def rows_of(conn: asyncpg.Connection, key_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM usage_daily WHERE key_id = $1", key_id)


async def test_counts_are_exact_and_survive_shutdown(
    database_url: str, redis_server: RedisServer
) -> None:
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance, scopes="+@all ~app:* resetchannels")
        commands = [[b"SET", b"app:%d" % i, b"v"] for i in range(40)]
        commands += [[b"GET", b"other:1"]]  # denied
        with run_pg_gateway(database_url) as gw:
            replies = send_commands(gw.port, key.token, commands)
            assert replies.count(b"+OK") == 41 and b"-NOPERM" in replies
            # no explicit flush: shutdown (the `with` exit) must flush what was counted
        rows = await rows_of(conn, key.key_id)
    assert len(rows) == 1
    row = rows[0]
    assert row["day"] == datetime.now(UTC).date()
    assert (row["commands"], row["denied"], row["limited"]) == (41, 1, 0)  # AUTH not counted
    assert row["bytes_in"] == sum(len(encode_command(c)) for c in commands)
    assert row["bytes_out"] == len(replies)  # AUTH's reply is written once the key is in use
    assert row["instance_id"] == instance.id and row["org_id"] == instance.org_id


async def test_a_retried_batch_is_counted_once(database_url: str) -> None:
    row = usage.UsageRow(datetime.now(UTC).date(), "abcdefghijkl", uuid.uuid4(), uuid.uuid4(), 5)
    async with db.connection(database_url) as conn:
        assert await usage.record(conn, "gw-1", 1, [row])
        assert not await usage.record(conn, "gw-1", 1, [row])  # the same batch again
        assert await usage.record(conn, "gw-2", 1, [row])  # another gateway's first batch
        rows = await rows_of(conn, "abcdefghijkl")
    assert rows[0]["commands"] == 10


async def test_the_control_api_returns_daily_series(
    database_url: str, redis_server: RedisServer
) -> None:
    async for api in api_for(control_settings(database_url)):
        user = await api.register()
        org, token = user["org"]["id"], user["access_token"]
        async with db.connection(database_url) as conn:
            # an instance of this org on the test Redis, as the static provisioner makes them
            async with conn.transaction():
                made = await instances.create_instance(
                    conn,
                    uuid.UUID(org),
                    name="cache",
                    memory_mb=8,
                    eviction_policy="noeviction",
                    persistence=False,
                    provisioner="static",
                    created_by=None,
                )
            instance = await instances.set_status(
                conn, made.id, "running", backend=backend_of(redis_server)
            )
            assert instance is not None
            key = await new_key(conn, instance)
        with run_pg_gateway(database_url) as gw:
            send_commands(gw.port, key.token, [[b"PING"]] * 7)
        year = datetime.now(UTC).year
        series = await api.get(
            f"/v1/orgs/{org}/usage?from={year}-01-01&to={year}-12-31", token=token
        )
        assert series.status == 200 and len(series.body["days"]) in (365, 366)
        today = datetime.now(UTC).date().isoformat()
        by_day = {d["date"]: d for d in series.body["days"]}
        assert by_day[today]["commands"] == 7
        assert sum(d["commands"] for d in series.body["days"]) == 7
        one = await api.get(f"/v1/orgs/{org}/instances/{instance.id}/usage", token=token)
        assert one.status == 200 and len(one.body["days"]) == 30
        assert one.body["days"][-1] == by_day[today]
        bad = await api.get(f"/v1/orgs/{org}/usage?from={year}-02-01&to={year}-01-01", token=token)
        assert bad.status == 422


async def test_http_usage_counts_with_resp_usage(
    database_url: str, redis_server: RedisServer
) -> None:
    """A key's commands over the HTTP command API land in the same daily row as its RESP
    ones, counted the same way (a pipeline's commands each count, bytes are RESP's)."""
    async with db.connection(database_url) as conn:
        instance = await new_instance(conn, backend_of(redis_server))
        key = await new_key(conn, instance, scopes="+@all ~app:* resetchannels")
        with run_pg_gateway(database_url) as gw:
            send_commands(gw.port, key.token, [[b"SET", b"app:1", b"v"]] * 3)
            url = f"http://127.0.0.1:{gw.gateway.http_port}"
            headers = {"Authorization": f"Bearer {key.token}"}
            one = post_json(f"{url}/", headers, ["GET", "app:1"])
            assert one == (200, {"result": "v"})
            batch = [["INCR", "app:n"], ["INCR", "app:n"], ["GET", "other"]]
            status, answer = post_json(f"{url}/pipeline", headers, batch)
            assert status == 200 and answer[:2] == [{"result": 1}, {"result": 2}]
            assert answer[2]["error"].startswith("NOPERM")
        rows = await rows_of(conn, key.key_id)
    assert len(rows) == 1
    assert (rows[0]["commands"], rows[0]["denied"]) == (3 + 1 + 3, 1)
    rest_in = sum(
        len(encode_command(c))
        for c in [[b"GET", b"app:1"], [b"INCR", b"app:n"], [b"INCR", b"app:n"], [b"GET", b"other"]]
    )
    assert rows[0]["bytes_in"] == 3 * len(encode_command([b"SET", b"app:1", b"v"])) + rest_in


def post_json(url: str, headers: dict[str, str], body: object) -> tuple[int, Any]:
    """POST `body` as JSON; the status and the decoded JSON answer (errors included)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
