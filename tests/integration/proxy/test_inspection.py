"""A tenant inspecting its own server through the gateway (issue 14, items 3 and 4): INFO like
Redis, CONFIG GET, SLOWLOG, CLIENT LIST/KILL/UNBLOCK over its own gateway connections, RESTORE
with sanitized payloads, and the refusals on a shared server.

A private redis-server (its slow log, config and clients are its own) behind one gateway with
three instances: `own` and `other` (each owning its server, as the local provisioner gives)
and `shared` (one db of a server other tenants share).
"""

# redis-py leaves execute_command untyped.
# mypy: allow-untyped-calls

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from redisgate.launcher.redis import RedisServer
from redisgate.proxy.commands.introspection import WITHHELD_CONFIG, WITHHELD_INFO
from tests.integration.proxy.conftest import RunningGateway, run_gateway

SECTIONS = [
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
    "errorstats", "cluster", "keyspace", "commandstats", "latencystats",
]  # fmt: skip


# Keys allowed every command (the `full` preset leaves out @admin and @dangerous, where
# Redis files CLIENT LIST, SLOWLOG, CONFIG GET, RESTORE …); what the gateway refuses whatever
# the scope is what these tests are about.
SCOPES: dict[str, str | tuple[str, str]] = {
    "own": ("own", "+@all allkeys allchannels"),
    "other": ("other", "+@all allkeys allchannels"),
    "shared": ("shared", "+@all allkeys allchannels"),
}


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("inspect-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def gw(
    own_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    with run_gateway(
        own_server,
        tmp_path_factory.mktemp("inspect"),
        instances=("own", "other", "shared"),
        shared=("shared",),
        scopes=SCOPES,
    ) as running:
        yield running


def raw(client: redis.Redis, *args: str | bytes) -> object:
    """The reply without redis-py's callbacks (INFO as its text), or the error."""
    conn = client.connection
    assert conn is not None
    conn.send_command(*args)
    try:
        return conn.read_response()
    except redis.ResponseError as exc:
        return exc


def one(gw: RunningGateway, instance: str = "own") -> redis.Redis:
    """One connection with a key of `instance` allowed every command."""
    return gw.scoped_client(instance, single_connection_client=True, socket_timeout=10)


def direct(gw: RunningGateway, instance: str = "own") -> redis.Redis:
    """One connection straight to the backend db of `instance`."""
    backend = gw.backend
    return redis.Redis(
        port=backend.port, password=backend.password, db=gw.dbs[instance],
        single_connection_client=True,
    )  # fmt: skip


def sections(text: object) -> dict[str, dict[str, str]]:
    """INFO text as {section: {field: value}}."""
    assert isinstance(text, bytes), text
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            current = found.setdefault(line[2:].lower(), {})
        elif line:
            name, _, value = line.partition(":")
            current[name] = value
    return found


# --- INFO --------------------------------------------------------------------------------------


def test_info_has_every_field_redis_has_or_withholds_it(gw: RunningGateway) -> None:
    """The differential test: every field of every section direct Redis returns is there
    through the gateway, or listed as withheld (the list docs/commands.md prints)."""
    with direct(gw) as backend, one(gw) as client:
        backend.set("k", "v")
        for args in (["everything"], []):
            expected = sections(raw(backend, "INFO", *args))
            got = sections(raw(client, "INFO", *args))
            assert list(got) == list(expected)
            missing = []
            for section, fields in expected.items():
                withheld = WITHHELD_INFO.get(section, {})
                for name in fields:
                    if section == "keyspace":
                        continue  # the instance's db, shown as db0 (below)
                    if name in withheld or re.fullmatch(r"slave\d+", name):
                        continue
                    if name not in got[section]:
                        missing.append((section, name))
            assert missing == []
            own_line = expected["keyspace"][f"db{gw.dbs['own']}"]
            assert got["keyspace"] == {"db0": own_line}


@pytest.mark.parametrize(
    "args",
    [
        ["memory"], ["MEMORY"], ["all"], ["everything"], ["default"], ["server", "clients"],
        ["Keyspace", "stats", "cpu"], ["nosuchsection"], *([s] for s in SECTIONS),
    ],
)  # fmt: skip
def test_info_sections_as_redis_answers_them(gw: RunningGateway, args: list[str]) -> None:
    with direct(gw) as backend, one(gw) as client:
        expected = list(sections(raw(backend, "INFO", *args)))
        assert list(sections(raw(client, "INFO", *args))) == expected
    if args == ["nosuchsection"]:
        assert expected == []


def test_info_counts_the_tenants_own_gateway_connections(gw: RunningGateway) -> None:
    clients = [one(gw) for _ in range(3)]
    stranger = one(gw, "other")
    blocked_done = threading.Event()
    try:
        for client in [*clients, stranger]:
            client.ping()
        stats = sections(raw(clients[0], "INFO", "clients"))["clients"]
        assert stats["connected_clients"] == "3"
        assert stats["blocked_clients"] == "0"
        waiter = clients[2]

        def block() -> None:
            waiter.blpop(["inspect:never"], timeout=5)
            blocked_done.set()

        thread = threading.Thread(target=block)
        thread.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            stats = sections(raw(clients[0], "INFO", "clients"))["clients"]
            if stats["blocked_clients"] == "1":
                break
            time.sleep(0.02)
        assert stats["blocked_clients"] == "1"
        other_stats = sections(raw(stranger, "INFO", "clients"))["clients"]
        assert other_stats["connected_clients"] == "1" and other_stats["blocked_clients"] == "0"
        with direct(gw) as backend:
            backend.lpush("inspect:never", "x")
        thread.join(5)
        assert blocked_done.is_set()
    finally:
        for client in [*clients, stranger]:
            client.close()


def test_info_shows_nothing_of_the_host(gw: RunningGateway, own_server: RedisServer) -> None:
    with one(gw) as client, direct(gw) as backend:
        text = raw(client, "INFO", "everything")
        server = sections(raw(backend, "INFO", "server"))["server"]
    assert isinstance(text, bytes)
    info = sections(text)
    assert str(own_server.data_dir).encode() not in text
    assert own_server.password.encode() not in text
    assert b"redis-server" not in text and b"process_id" not in text
    assert info["server"]["tcp_port"] == str(gw.port)
    assert info["server"]["run_id"] != server["run_id"] and len(info["server"]["run_id"]) == 40
    assert info["server"]["os"] == server["os"].split()[0]
    assert "total_system_memory" not in info["memory"]


def test_info_on_a_shared_server_shows_only_the_instances_own(gw: RunningGateway) -> None:
    with direct(gw, "shared") as backend:
        backend.set("s", "1")
    with one(gw, "shared") as client:
        info = sections(raw(client, "INFO", "everything"))
        assert set(info) == {"server", "clients", "replication", "cluster", "keyspace"}
        assert info["keyspace"] == {"db0": "keys=1,expires=0,avg_ttl=0"}
        assert set(info["clients"]) == {"connected_clients", "blocked_clients", "tracking_clients"}
        assert info["clients"]["connected_clients"] == "1"
        assert info["replication"] == {"role": "master"}
        assert "used_memory" not in str(info) and "uptime_in_seconds" in info["server"]
        assert sections(raw(client, "INFO", "memory")) == {}


def test_redis_cli_stat_shows_real_numbers(gw: RunningGateway) -> None:
    cli = [  # stdbuf: redis-cli buffers a pipe's output, which a killed process loses
        "stdbuf", "-oL", "redis-cli", "-p", str(gw.port), "--user", "default",
        "--pass", gw.tokens["own"], "--no-auth-warning", "--stat", "-i", "0.2",
    ]  # fmt: skip
    with direct(gw) as backend:
        backend.set("stat:1", "x")
    process = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = process.communicate(timeout=1.5)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    text = out.decode()
    assert "-9223372036854775808" not in text, text
    rows = [line.split() for line in text.splitlines() if re.match(r"^\d+\s", line)]
    assert rows, text
    keys, mem, clients, blocked = rows[-1][:4]
    assert int(keys) >= 1 and mem[0].isdigit() and int(clients) >= 1 and blocked == "0"


# --- CONFIG GET, SLOWLOG, LATENCY, the rest ----------------------------------------------------


def test_config_get_answers_all_but_the_withheld(gw: RunningGateway) -> None:
    with one(gw) as client:
        everything = client.config_get("*")
        assert "maxmemory" in everything and "sanitize-dump-payload" in everything
        assert not set(everything) & set(WITHHELD_CONFIG)
        assert client.config_get("dir") == {} and client.config_get("requirepass") == {}
        assert gw.backend.password not in str(everything)
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.config_set("maxmemory", "1")


def test_slowlog_shows_the_instances_commands_without_addresses(gw: RunningGateway) -> None:
    with direct(gw) as backend, one(gw) as client:
        backend.config_set("slowlog-log-slower-than", 0)
        try:
            client.slowlog_reset()
            client.get("slow:key")
            entries = raw(client, "SLOWLOG", "GET", "10")
            assert client.slowlog_len() >= 1
        finally:
            backend.config_set("slowlog-log-slower-than", 10000)
    assert isinstance(entries, list)
    commands = {tuple(entry[3]): entry for entry in entries}
    entry = commands[(b"GET", b"slow:key")]
    assert entry[4] == b"" and entry[5] == b""


def test_read_only_questions_about_the_own_server(gw: RunningGateway) -> None:
    with one(gw) as client:
        assert isinstance(client.lastsave(), object)
        assert isinstance(raw(client, "LATENCY", "LATEST"), list)
        assert isinstance(raw(client, "LATENCY", "DOCTOR"), bytes)
        assert isinstance(raw(client, "MEMORY", "MALLOC-STATS"), bytes)
        assert isinstance(raw(client, "MEMORY", "DOCTOR"), bytes)
        assert raw(client, "ROLE")[:1] == [b"master"]  # type: ignore[index]
        assert isinstance(raw(client, "TIME"), list)
        assert b"get" in raw(client, "COMMAND", "LIST")  # type: ignore[operator]
        assert raw(client, "COMMAND", "GETKEYS", "SET", "a", "b") == [b"a"]
        client.set("obj", "12345")
        assert raw(client, "OBJECT", "ENCODING", "obj") == b"int"


@pytest.mark.parametrize(
    "args",
    [
        ("SLOWLOG", "GET"), ("SLOWLOG", "LEN"), ("CONFIG", "GET", "*"), ("LATENCY", "LATEST"),
        ("LASTSAVE",), ("MEMORY", "MALLOC-STATS"), ("MEMORY", "DOCTOR"),
        ("RESTORE", "k", "0", "x"), ("CONFIG", "RESETSTAT"),
    ],
)  # fmt: skip
def test_a_shared_server_refuses_what_shows_other_tenants(
    gw: RunningGateway, args: tuple[str, ...]
) -> None:
    with one(gw, "shared") as client:
        reply = raw(client, *args)
    assert isinstance(reply, redis.exceptions.NoPermissionError), reply


# --- CLIENT LIST / KILL / UNBLOCK --------------------------------------------------------------


def client_lines(text: object) -> list[dict[str, str]]:
    assert isinstance(text, bytes)
    return [
        dict(field.split("=", 1) for field in line.split(" "))
        for line in text.decode().splitlines()
    ]


def test_client_list_shows_only_the_instances_own_connections(gw: RunningGateway) -> None:
    mine = [one(gw) for _ in range(2)]
    theirs = one(gw, "other")
    try:
        ids = {client.client_id() for client in mine}
        their_id = theirs.client_id()
        listed = client_lines(raw(mine[0], "CLIENT", "LIST"))
        assert {int(line["id"]) for line in listed} == ids
        assert their_id not in {int(line["id"]) for line in listed}
        me = next(line for line in listed if int(line["id"]) == mine[0].client_id())
        assert me["cmd"] == "client|list" and me["laddr"].endswith(f":{gw.port}")
        assert me["user"] == raw(mine[0], "ACL", "WHOAMI").decode()  # type: ignore[union-attr]
        by_id = client_lines(raw(mine[0], "CLIENT", "LIST", "ID", str(their_id)))
        assert by_id == []
        with direct(gw) as backend:  # the gateway's backend connections are not there
            backend_ids = {int(c["id"]) for c in backend.client_list()}
        assert not backend_ids & {int(line["id"]) for line in listed} - ids
        assert len(client_lines(raw(theirs, "CLIENT", "LIST"))) == 1
    finally:
        for client in [*mine, theirs]:
            client.close()


def test_client_kill_of_a_second_connection_of_the_same_tenant(gw: RunningGateway) -> None:
    killer, victim, stranger = one(gw), one(gw), one(gw, "other")
    try:
        victim_id, stranger_id = victim.client_id(), stranger.client_id()
        assert raw(killer, "CLIENT", "KILL", "ID", str(stranger_id)) == 0
        assert raw(killer, "CLIENT", "KILL", "ID", str(victim_id)) == 1
        with pytest.raises(redis.ConnectionError):
            victim.ping()
        assert stranger.ping() is True
        assert killer.ping() is True  # SKIPME yes by default
        addr = client_lines(raw(killer, "CLIENT", "INFO"))[0]["addr"]
        assert raw(killer, "CLIENT", "KILL", "ADDR", addr) == 0  # skipped: it is the caller
        assert isinstance(raw(killer, "CLIENT", "KILL", "1.2.3.4:5"), redis.ResponseError)
    finally:
        for client in (killer, victim, stranger):
            client.close()


def test_client_unblock_of_a_blocked_blpop_of_the_same_tenant(gw: RunningGateway) -> None:
    blocked, unblocker, stranger = one(gw), one(gw), one(gw, "other")
    result: list[object] = []
    try:
        blocked_id = blocked.client_id()
        thread = threading.Thread(
            target=lambda: result.append(blocked.blpop(["unblock:never"], timeout=20))
        )
        started = time.monotonic()
        thread.start()
        answered = 0
        while time.monotonic() - started < 5 and not answered:
            assert raw(stranger, "CLIENT", "UNBLOCK", str(blocked_id)) == 0  # not its client
            answered = raw(unblocker, "CLIENT", "UNBLOCK", str(blocked_id))  # type: ignore[assignment]
            time.sleep(0.02)
        thread.join(5)
        assert answered == 1 and result == [None]  # as a timeout
        assert time.monotonic() - started < 10
        assert raw(unblocker, "CLIENT", "UNBLOCK", str(blocked_id)) == 0  # not blocked now
        assert blocked.ping() is True
    finally:
        for client in (blocked, unblocker, stranger):
            client.close()


def test_client_no_evict_is_kept_and_shown(gw: RunningGateway) -> None:
    with one(gw) as client:
        assert raw(client, "CLIENT", "NO-EVICT", "on") == b"OK"
        assert "e" in client_lines(raw(client, "CLIENT", "INFO"))[0]["flags"]
        assert isinstance(raw(client, "CLIENT", "NO-EVICT", "maybe"), redis.ResponseError)


# --- RESTORE ---------------------------------------------------------------------------------

_CRC64_TABLE: list[int] = []


def crc64(data: bytes) -> int:
    """Redis's CRC-64 (Jones polynomial, reflected), as DUMP payloads end with."""
    if not _CRC64_TABLE:
        for byte in range(256):
            crc = byte
            for _ in range(8):
                crc = (crc >> 1) ^ 0x95AC9329AC4BC9B5 if crc & 1 else crc >> 1
            _CRC64_TABLE.append(crc)
    crc = 0
    for byte in data:
        crc = _CRC64_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def corrupt_hash_payload(payload: bytes) -> bytes:
    """A DUMP of a small listpack hash whose listpack header claims 3 entries (of 4), with
    a valid version and checksum: only a deep check of the payload finds it."""
    assert payload[0] == 16  # RDB_TYPE_HASH_LISTPACK
    length = payload[1]
    assert length < 64  # a 6-bit length: the listpack follows at once, uncompressed
    listpack = bytearray(payload[2 : 2 + length])
    assert listpack[4:6] == b"\x04\x00"
    listpack[4:6] = b"\x03\x00"
    body = payload[:2] + bytes(listpack) + payload[2 + length : -8]
    return body + crc64(body).to_bytes(8, "little")


def test_restore_round_trip_and_a_crafted_payload_refused(gw: RunningGateway) -> None:
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    with one(gw) as client, direct(gw) as backend:
        client.delete("r:src", "r:copy", "r:bad")
        client.hset("r:src", mapping={"a": "1", "b": "2"})
        payload = client.dump("r:src")
        assert payload is not None
        assert int.from_bytes(payload[-8:], "little") == crc64(payload[:-8])
        assert client.restore("r:copy", 0, payload) == b"OK"
        assert client.hgetall("r:copy") == {b"a": b"1", b"b": b"2"}
        bad = corrupt_hash_payload(payload)
        with pytest.raises(redis.ResponseError, match="Bad data format"):
            client.restore("r:bad", 0, bad)
        assert client.exists("r:bad") == 0
        # The payload passes every check but the deep one: without it Redis takes it.
        assert backend.config_get("sanitize-dump-payload") == {"sanitize-dump-payload": "yes"}
        backend.config_set("sanitize-dump-payload", "no")
        try:
            assert backend.restore("r:bad", 0, bad) == b"OK"
            backend.delete("r:bad")
        finally:
            backend.config_set("sanitize-dump-payload", "yes")
