"""Local instances' files without processes: specs, redis.conf, state files, exit reasons."""

from __future__ import annotations

import signal
import socket
import stat
from pathlib import Path

import pytest

from redisgate.errors import InvalidSpec, ProvisionError
from redisgate.provision import EVICTION_POLICIES, InstanceSpec, check_instance_id
from redisgate.provision.ports import pick_port
from redisgate.provision.redisconf import (
    InstanceState,
    describe_exit,
    live_settings,
    log_since,
    quote,
    read_state,
    reason_from_log,
    remove_folder,
    render_config,
    start_log,
    write_state,
)


def conf_lines(text: str) -> dict[str, str]:
    pairs = (line.split(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return dict(pairs)


def test_the_eight_redis_7_policies() -> None:
    assert len(EVICTION_POLICIES) == len(set(EVICTION_POLICIES)) == 8
    assert {"noeviction", "allkeys-lru", "allkeys-lfu", "volatile-ttl"} <= set(EVICTION_POLICIES)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory_mb": 0}, r"memory_mb must be a whole number of MB, 1 or more: 0"),
        ({"memory_mb": -5}, r"1 or more: -5"),
        ({"memory_mb": 1.5}, r"1 or more: 1.5"),
        ({"memory_mb": True}, r"1 or more: True"),
        ({"eviction_policy": "lru"}, r"unknown eviction policy 'lru': choose one of volatile-lru"),
        ({"persistence": "yes"}, r"persistence must be true or false"),
        ({"instance_id": "../etc"}, r"instance id '../etc' must be 1-64 letters"),
        ({"instance_id": ""}, r"instance id '' must be"),
        ({"instance_id": "a" * 65}, r"must be 1-64"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"instance_id": "inst-1", "memory_mb": 64, **kwargs}
    with pytest.raises(InvalidSpec, match=message):
        InstanceSpec(**args)  # type: ignore[arg-type]


def test_invalid_spec_is_a_provision_error() -> None:
    assert issubclass(InvalidSpec, ProvisionError)
    assert check_instance_id("in_st-9") == "in_st-9"
    with pytest.raises(InvalidSpec):
        check_instance_id("a/b")


def test_config_without_persistence(tmp_path: Path) -> None:
    spec = InstanceSpec("inst-1", 64, persistence=False)
    text = render_config(spec, host="127.0.0.1", port=7001, password="pw_1-x", folder=tmp_path)
    conf = conf_lines(text)
    assert conf["maxmemory"] == "64mb"
    assert conf["maxmemory-policy"] == "noeviction"
    assert conf["save"] == '""'
    assert conf["appendonly"] == "no"
    assert conf["requirepass"] == "pw_1-x"
    assert conf["port"] == "7001"
    assert conf["bind"] == "127.0.0.1"
    assert conf["protected-mode"] == "yes"
    assert conf["daemonize"] == "no"
    assert conf["dir"] == str(tmp_path)
    assert conf["pidfile"] == str(tmp_path / "redis.pid")
    assert conf["logfile"] == '""'
    assert "{config-file}" in conf["proc-title-template"]
    assert text.startswith("# redis.conf of RedisGate instance inst-1")


def test_config_with_persistence_and_a_policy(tmp_path: Path) -> None:
    spec = InstanceSpec("inst-2", 1024, "allkeys-lfu", persistence=True)
    conf = conf_lines(render_config(spec, host="127.0.0.1", port=1, password="p", folder=tmp_path))
    assert conf["maxmemory"] == "1024mb"
    assert conf["maxmemory-policy"] == "allkeys-lfu"
    assert conf["save"] == '"3600 1 300 100 60 10000"'
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"


def test_live_settings_are_what_config_set_takes() -> None:
    assert live_settings(InstanceSpec("a", 3, "volatile-ttl", persistence=False)) == {
        "maxmemory": "3mb",
        "maxmemory-policy": "volatile-ttl",
        "save": "",
        "appendonly": "no",
        "client-output-buffer-limit": "normal 64mb 0 0",
    }
    assert live_settings(InstanceSpec("a", 100))["client-output-buffer-limit"] == (
        "normal 200mb 0 0"
    )


def test_quote_follows_redis_config_syntax() -> None:
    assert quote("/srv/redis/inst-1") == "/srv/redis/inst-1"
    assert quote("") == '""'
    assert quote("/my data/x") == '"/my data/x"'
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_folder_with_spaces_and_quotes_is_quoted(tmp_path: Path) -> None:
    folder = tmp_path / 'odd "name" dir'
    text = render_config(
        InstanceSpec("a", 1), host="127.0.0.1", port=1, password="p", folder=folder
    )
    escaped = str(folder).replace('"', '\\"')
    assert f'dir "{escaped}"\n' in text


def test_state_file_round_trip_is_private(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None
    state = InstanceState("inst-1", 7001, "pw-secret", 4242)
    write_state(tmp_path, state)
    assert read_state(tmp_path) == state
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600
    assert "pw-secret" not in repr(state)
    write_state(tmp_path, InstanceState("inst-1", 7001, "pw-secret"))
    assert read_state(tmp_path) == InstanceState("inst-1", 7001, "pw-secret", None)


def test_unreadable_state_file_is_a_provision_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ProvisionError, match=r"state file .*state.json is unreadable"):
        read_state(tmp_path)


def test_describe_exit() -> None:
    assert describe_exit(1) == "redis-server exited with code 1"
    assert describe_exit(-signal.SIGKILL) == "redis-server was killed by signal 9 (SIGKILL)"
    assert describe_exit(None) == "redis-server exited"


BIND_FAILURE = """\
77:C 25 Nov 2026 10:00:00.001 * Configuration loaded
77:M 25 Nov 2026 10:00:00.002 # WARNING Memory overcommit must be enabled!
77:M 25 Nov 2026 10:00:00.003 # Warning: Could not create server TCP listening socket \
127.0.0.1:7001: bind: Address already in use
77:M 25 Nov 2026 10:00:00.003 # Failed listening on port 7001 (tcp), aborting.
"""

CONFIG_ERROR = """\

*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***
Reading the configuration file, at line 3
>>> 'maxmemory-policy "bogus"'
argument(s) must be one of the following: volatile-lru, allkeys-lru
"""

KILLED_WHILE_RUNNING = """\
90:M 25 Nov 2026 10:00:00.002 # WARNING Memory overcommit must be enabled!
90:M 25 Nov 2026 10:00:00.004 * Ready to accept connections tcp
"""

CRASHED_WHILE_RUNNING = KILLED_WHILE_RUNNING + (
    "90:M 25 Nov 2026 10:00:09.000 * Background saving started\n"
    "90:M 25 Nov 2026 10:00:09.500 # Write error saving DB on disk: No space left on device\n"
)


def test_reason_for_a_server_that_never_started() -> None:
    assert reason_from_log(BIND_FAILURE, was_ready=False) == (
        "Warning: Could not create server TCP listening socket 127.0.0.1:7001: "
        "bind: Address already in use / Failed listening on port 7001 (tcp), aborting."
    )
    assert reason_from_log(CONFIG_ERROR, was_ready=False) == (
        ">>> 'maxmemory-policy \"bogus\"' / "
        "argument(s) must be one of the following: volatile-lru, allkeys-lru"
    )
    assert reason_from_log("", was_ready=False) == ""


def test_reason_for_a_server_that_died_running_ignores_start_up_warnings() -> None:
    assert reason_from_log(KILLED_WHILE_RUNNING, was_ready=True) == ""
    assert reason_from_log(CRASHED_WHILE_RUNNING, was_ready=True) == (
        "Write error saving DB on disk: No space left on device"
    )


def test_pick_port_skips_ports_in_use_and_ports_taken() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ProvisionError, match=rf"no free port left in .* {port}-{port}"):
            pick_port("127.0.0.1", set(), (port, port))  # someone listens there
    assert pick_port("127.0.0.1", set(), (port, port)) == port
    with pytest.raises(ProvisionError, match=r"no free port left"):
        pick_port("127.0.0.1", {port}, (port, port))  # another instance has it
    assert pick_port("127.0.0.1", {port}, None) != port


def test_log_of_a_run_and_rotation(tmp_path: Path) -> None:
    assert start_log(tmp_path) == 0
    assert log_since(tmp_path, 0) == ""
    log = tmp_path / "redis.log"
    log.write_text("first run\n")
    offset = start_log(tmp_path)
    with log.open("a") as f:
        f.write("second run\n")
    assert log_since(tmp_path, offset) == "second run\n"
    assert log_since(tmp_path, -1) == "first run\nsecond run\n"
    log.write_bytes(b"x" * (10 * 1024 * 1024 + 1))
    assert start_log(tmp_path) == 0
    assert not log.exists() and (tmp_path / "redis.log.1").exists()


def test_remove_folder(tmp_path: Path) -> None:
    folder = tmp_path / "inst"
    (folder / "appendonlydir").mkdir(parents=True)
    (folder / "appendonlydir" / "a.aof").write_text("x")
    remove_folder(folder)
    assert not folder.exists()
    remove_folder(folder)  # gone already: fine


def test_specs_persist_unless_told_not_to(tmp_path: Path) -> None:
    assert InstanceSpec("a", 1).persistence is True
    conf = conf_lines(
        render_config(InstanceSpec("a", 1), host="127.0.0.1", port=1, password="p", folder=tmp_path)
    )
    assert (conf["appendonly"], conf["appendfsync"]) == ("yes", "everysec")


def test_forget_saved_data_removes_the_snapshot_and_the_log_only(tmp_path: Path) -> None:
    from redisgate.provision.redisconf import forget_saved_data

    (tmp_path / "dump.rdb").write_bytes(b"REDIS")
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "a.aof").write_bytes(b"*1\r\n")
    (tmp_path / "redis.conf").write_text("port 1\n")
    forget_saved_data(tmp_path)
    forget_saved_data(tmp_path)  # nothing left to remove is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["redis.conf"]
