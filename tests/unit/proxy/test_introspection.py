"""What a tenant sees of its server: the INFO, CONFIG GET, SLOWLOG GET and ROLE rewrites
(bytes in, bytes out)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from redisgate.proxy.commands import introspection
from redisgate.proxy.commands.introspection import ClientCounts
from tests.unit.proxy.test_intercept import bulk, one_frame, parse, verbatim


def encode_reply(value: object) -> bytes:
    """RESP2 for ints, strings and lists (what Redis sends for these replies)."""
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(encode_reply(v) for v in value)
    assert isinstance(value, str)
    return bulk(value.encode())


INFO_TEXT = (
    b"# Server\r\n"
    b"redis_version:7.0.15\r\n"
    b"redis_mode:standalone\r\n"
    b"os:Linux 6.1.0-18-amd64 x86_64\r\n"
    b"arch_bits:64\r\n"
    b"process_id:4242\r\n"
    b"run_id:0123456789abcdef\r\n"
    b"tcp_port:6379\r\n"
    b"uptime_in_seconds:99\r\n"
    b"executable:/usr/bin/redis-server\r\n"
    b"config_file:/etc/redis/redis.conf\r\n"
    b"\r\n"
    b"# Clients\r\n"
    b"connected_clients:12\r\n"
    b"maxclients:10000\r\n"
    b"blocked_clients:3\r\n"
    b"tracking_clients:0\r\n"
    b"\r\n"
    b"# Memory\r\n"
    b"used_memory:100000\r\n"
    b"total_system_memory:8000000000\r\n"
    b"total_system_memory_human:7.45G\r\n"
    b"\r\n"
    b"# Replication\r\n"
    b"role:master\r\n"
    b"connected_slaves:1\r\n"
    b"slave0:ip=10.0.0.9,port=6380,state=online,offset=1,lag=0\r\n"
    b"master_replid:abc\r\n"
    b"\r\n"
    b"# Modules\r\n"
    b"\r\n"
    b"# Cluster\r\n"
    b"cluster_enabled:0\r\n"
    b"\r\n"
    b"# Keyspace\r\n"
    b"db0:keys=1,expires=0,avg_ttl=0\r\n"
    b"db1:keys=2,expires=0,avg_ttl=0\r\n"
    b"db3:keys=5,expires=1,avg_ttl=77\r\n"
    b"db13:keys=9,expires=0,avg_ttl=0\r\n"
)
RUN_ID = introspection.instance_run_id("inst-1")
COUNTS = ClientCounts(connected=2, blocked=1, tracking=0)

OWNED_DB3 = (
    b"# Server\r\n"
    b"redis_version:7.0.15\r\n"
    b"redis_mode:standalone\r\n"
    b"os:Linux\r\n"
    b"arch_bits:64\r\n"
    b"run_id:" + RUN_ID.encode() + b"\r\n"
    b"tcp_port:7000\r\n"
    b"uptime_in_seconds:99\r\n"
    b"\r\n"
    b"# Clients\r\n"
    b"connected_clients:2\r\n"
    b"maxclients:10000\r\n"
    b"blocked_clients:1\r\n"
    b"tracking_clients:0\r\n"
    b"\r\n"
    b"# Memory\r\n"
    b"used_memory:100000\r\n"
    b"\r\n"
    b"# Replication\r\n"
    b"role:master\r\n"
    b"connected_slaves:1\r\n"
    b"master_replid:abc\r\n"
    b"\r\n"
    b"# Modules\r\n"
    b"\r\n"
    b"# Cluster\r\n"
    b"cluster_enabled:0\r\n"
    b"\r\n"
    b"# Keyspace\r\n"
    b"db0:keys=5,expires=1,avg_ttl=77\r\n"
)
SHARED_DB3 = (
    b"# Server\r\n"
    b"redis_version:7.0.15\r\n"
    b"redis_mode:standalone\r\n"
    b"os:Linux\r\n"
    b"arch_bits:64\r\n"
    b"run_id:" + RUN_ID.encode() + b"\r\n"
    b"tcp_port:7000\r\n"
    b"uptime_in_seconds:99\r\n"
    b"\r\n"
    b"# Clients\r\n"
    b"connected_clients:2\r\n"
    b"blocked_clients:1\r\n"
    b"tracking_clients:0\r\n"
    b"\r\n"
    b"# Replication\r\n"
    b"role:master\r\n"
    b"\r\n"
    b"# Cluster\r\n"
    b"cluster_enabled:0\r\n"
    b"\r\n"
    b"# Keyspace\r\n"
    b"db0:keys=5,expires=1,avg_ttl=77\r\n"
)


def info(db: int = 3, *, shared: bool = False) -> Callable[[bytes], bytes]:
    return introspection.info_transform(
        db=db, shared=shared, clients=COUNTS, run_id=RUN_ID, port=7000
    )


@pytest.mark.parametrize(("shared", "expected"), [(False, OWNED_DB3), (True, SHARED_DB3)])
def test_info_owned_and_shared(shared: bool, expected: bytes) -> None:
    out = info(shared=shared)(bulk(INFO_TEXT))
    assert out == one_frame(bulk(expected))
    out = info(shared=shared)(verbatim(INFO_TEXT))
    assert out == one_frame(verbatim(expected))


@pytest.mark.parametrize(
    ("db", "line"),
    [
        (0, b"db0:keys=1,expires=0,avg_ttl=0"),
        (1, b"db0:keys=2,expires=0,avg_ttl=0"),  # not db13, which also starts with "db1"
        (13, b"db0:keys=9,expires=0,avg_ttl=0"),
    ],
)
def test_info_other_dbs_are_dropped(db: int, line: bytes) -> None:
    for shared in (False, True):
        out = parse(info(db, shared=shared)(bulk(INFO_TEXT)))
        assert isinstance(out, bytes)
        assert out.split(b"# Keyspace\r\n", 1)[1] == line + b"\r\n"


def test_info_own_db_empty_leaves_an_empty_keyspace_section() -> None:
    for shared in (False, True):
        out = info(7, shared=shared)(bulk(INFO_TEXT))
        text = parse(out)
        assert isinstance(text, bytes) and text.endswith(b"cluster_enabled:0\r\n\r\n# Keyspace\r\n")


def test_info_a_section_with_nothing_of_the_instance_is_left_out_on_a_shared_server() -> None:
    text = b"# Memory\r\nused_memory:1\r\n"
    assert info(shared=True)(bulk(text)) == b"$0\r\n\r\n"
    assert info(shared=True)(verbatim(text)) == b"=4\r\ntxt:\r\n"
    assert info()(bulk(text)) == bulk(text)


def test_info_empty_reply_stays_empty() -> None:  # INFO nosuchsection
    assert info()(b"$0\r\n\r\n") == b"$0\r\n\r\n"


def test_info_non_ascii_values_keep_byte_lengths() -> None:
    text = b"# Server\r\nredis_version:7.0.15-\xc3\xa9t\xc3\xa9\r\n"
    assert info()(bulk(text)) == bulk(text)


@pytest.mark.parametrize("frame", [b"-NOPERM no\r\n", b"-ERR syntax error\r\n", b":1\r\n"])
def test_info_other_frames_pass_unchanged(frame: bytes) -> None:
    assert info()(frame) == frame


def test_run_id_is_stable_and_looks_like_redis() -> None:
    assert introspection.instance_run_id("a") == introspection.instance_run_id("a")
    assert introspection.instance_run_id("a") != introspection.instance_run_id("b")
    assert len(RUN_ID) == 40 and int(RUN_ID, 16) >= 0


# --- CONFIG GET ------------------------------------------------------------------------------


@pytest.mark.parametrize("resp3", [False, True])
def test_config_get_leaves_out_withheld_parameters(resp3: bool) -> None:
    pairs = [("maxmemory", "0"), ("dir", "/var/lib/x"), ("requirepass", "s3cret"), ("hz", "10")]
    if resp3:
        frame = b"%%%d\r\n" % len(pairs) + b"".join(
            bulk(k.encode()) + bulk(v.encode()) for k, v in pairs
        )
        expected = b"%2\r\n" + bulk(b"maxmemory") + bulk(b"0") + bulk(b"hz") + bulk(b"10")
    else:
        frame = encode_reply([x for pair in pairs for x in pair])
        expected = encode_reply(["maxmemory", "0", "hz", "10"])
    assert introspection.config_get_transform(frame) == one_frame(expected)


def test_config_get_withholds_every_secret_and_path() -> None:
    assert {
        "requirepass",
        "masterauth",
        "dir",
        "logfile",
        "pidfile",
        "unixsocket",
        "aclfile",
    } <= set(introspection.WITHHELD_CONFIG)


# --- SLOWLOG GET and ROLE --------------------------------------------------------------------


def test_slowlog_get_blanks_client_address_and_name() -> None:
    entry = encode_reply([4, 1796529476, 12, ["get", "x"], "127.0.0.1:49482", "gw"])
    frame = b"*1\r\n" + entry
    out = introspection.slowlog_transform(frame)
    assert parse(one_frame(out)) == [[4, 1796529476, 12, [b"get", b"x"], b"", b""]]
    assert introspection.slowlog_transform(b"*0\r\n") == b"*0\r\n"


def test_role_of_a_master_lists_no_replica_address() -> None:
    frame = encode_reply(["master", 3129659, [["10.0.0.9", "6380", "3129242"]]])
    assert parse(one_frame(introspection.role_transform(frame))) == [b"master", 3129659, []]


def test_role_of_a_replica_hides_its_master_address() -> None:
    frame = encode_reply(["slave", "10.0.0.1", 6379, "connected", 3167038])
    out = parse(one_frame(introspection.role_transform(frame)))
    assert out == [b"slave", b"?", 0, b"connected", 3167038]
