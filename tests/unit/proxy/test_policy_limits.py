"""Token buckets and the limit registry, with a clock passed in (no loop, no sleeping)."""

from __future__ import annotations

import pytest

from redisgate import metrics
from redisgate.backends import Backend
from redisgate.limits import Limits
from redisgate.proxy.clients.decisions import Answer, AuthRequest, Close, Forward, Pin
from redisgate.proxy.clients.session import Session
from redisgate.proxy.keys.principals import Instance, Principal
from redisgate.proxy.policy.rates import (
    Admission,
    LimitRegistry,
    RateGate,
    TokenBucket,
    bucket_shape,
)
from redisgate.proxy.wire.requests import Command, RequestFramer

INSTANCE = Instance("i1", "cache", Backend("127.0.0.1", 6379))
LIMITED = b"-ERR max requests limit exceeded (limit 10 commands per second, burst 3)\r\n"


def allow(gate: RateGate, now: float) -> bytes | None:
    """One command through the gate: None if it may run, else the refusal."""
    granted = gate.take(now, 1)
    return granted if isinstance(granted, bytes) else None


def principal(key_id: str = "abcdefghijkl", **limits: int) -> Principal:
    return Principal(key_id, "web", INSTANCE, limits=Limits(**limits))


def test_bucket_allows_its_burst_then_refuses_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(4, 3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(100.125)  # half a token
    assert bucket.take(100.25)  # 0.25 s at 4/s: one more
    assert not bucket.take(100.25)
    assert bucket.refill(200.0) == 3  # never beyond the burst


def test_bucket_reconfigured_live_keeps_its_tokens_within_the_new_burst() -> None:
    bucket = TokenBucket(10, 10, now=0.0)
    bucket.configure(1, 2)
    assert bucket.tokens == 2 and bucket.reply.startswith(b"-ERR max requests limit exceeded")
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.5)
    assert bucket.take(1.0)


def test_bucket_shape_defaults_the_burst_to_one_second_and_zero_refuses_all() -> None:
    assert bucket_shape(Limits()) is None
    assert bucket_shape(Limits(burst=5)) is None  # a burst alone limits nothing
    assert bucket_shape(Limits(ops_per_second=50)) == (50, 50)
    assert bucket_shape(Limits(ops_per_second=50, burst=5)) == (50, 5)
    zero = TokenBucket(*bucket_shape(Limits(ops_per_second=0)) or (1, 1), now=0.0)
    assert not zero.take(0.0) and not zero.take(1000.0)


def test_gate_takes_from_every_bucket_only_when_all_have_a_token() -> None:
    key, instance = TokenBucket(10, 3, 0.0), TokenBucket(10, 1, 0.0)
    gate = RateGate((key, instance))
    before = metrics.LIMITED["ops_per_second"]
    assert allow(gate, 0.0) is None
    assert allow(gate, 0.0) == instance.reply  # the instance's bucket is empty
    assert key.tokens == 2  # the refused command took nothing from the key's
    assert metrics.LIMITED["ops_per_second"] == before + 1


def test_registry_resolves_key_instance_org_and_settings_defaults() -> None:
    registry = LimitRegistry(Limits(ops_per_second=100, max_connections=5))
    who = Principal(
        "abcdefghijkl",
        "web",
        INSTANCE,
        limits=Limits(ops_per_second=1000),  # a key cannot loosen its instance's limit
        instance_limits=Limits(ops_per_second=500, max_request_bytes=4096),
        org_limits=Limits(ops_per_second=200),  # the org's default replaces the settings'
    )
    key, instance = registry.effective(who)
    assert key == Limits(ops_per_second=1000, burst=1000)
    assert instance == Limits(
        ops_per_second=200, burst=200, max_connections=5, max_request_bytes=4096
    )
    admitted = registry.admit(1, who, 0.0)
    assert isinstance(admitted, Admission) and admitted.max_request_bytes == 4096
    assert admitted.gate is not None and len(admitted.gate.buckets) == 2


def test_an_unset_burst_is_one_second_of_the_rate_set_at_the_same_level() -> None:
    registry = LimitRegistry(Limits(ops_per_second=1000, burst=5000))
    who = Principal("abcdefghijkl", "web", INSTANCE, instance_limits=Limits(ops_per_second=10))
    # The settings' burst belongs to the settings' rate: it cannot loosen the instance's 10/s.
    assert registry.effective(who)[1] == Limits(ops_per_second=10, burst=10)
    org_burst = Principal("abcdefghijkl", "web", INSTANCE, org_limits=Limits(burst=50))
    assert registry.effective(org_burst)[1] == Limits(ops_per_second=1000, burst=50)


def test_registry_shares_buckets_per_key_and_per_instance() -> None:
    registry = LimitRegistry()
    a = registry.admit(1, principal(ops_per_second=10, burst=3), 0.0)
    b = registry.admit(2, principal(ops_per_second=10, burst=3), 0.0)
    other = registry.admit(3, principal("bbbbbbbbbbbb", ops_per_second=10, burst=3), 0.0)
    assert isinstance(a, Admission) and isinstance(b, Admission) and isinstance(other, Admission)
    assert a.gate is not None and b.gate is not None and other.gate is not None
    assert a.gate.buckets[0] is b.gate.buckets[0]
    assert other.gate.buckets[0] is not a.gate.buckets[0]
    assert [allow(a.gate, 0.0), allow(b.gate, 0.0), allow(a.gate, 0.0)] == [None, None, None]
    assert allow(b.gate, 0.0) == LIMITED
    assert allow(other.gate, 0.0) is None


def test_connections_of_one_key_share_one_gate_until_its_limits_or_buckets_change() -> None:
    registry = LimitRegistry()
    limited = principal(ops_per_second=10, burst=3)
    a, b = registry.admit(1, limited, 0.0), registry.admit(2, limited, 0.0)
    assert isinstance(a, Admission) and isinstance(b, Admission) and a.gate is b.gate
    quota = registry.admit(3, principal(ops_per_second=10, burst=3, daily_commands=5), 0.0)
    assert isinstance(quota, Admission) and quota.gate is not a.gate  # a quota joins the gate
    assert quota.gate is not None and len(quota.gate.quotas) == 1
    for client in (1, 2, 3):
        registry.release(client)
    registry.sweep(10.0, registry.quotas.day)  # nobody holds the key: gate and buckets go
    again = registry.admit(4, limited, 10.0)
    assert isinstance(again, Admission) and again.gate is not a.gate
    assert again.gate is not None and again.gate.buckets[0] is not a.gate.buckets[0]


def test_registry_caps_connections_per_key_and_instance_and_forgets_closed_ones() -> None:
    registry = LimitRegistry()
    who = principal(max_connections=2)
    assert isinstance(registry.admit(1, who, 0.0), Admission)
    assert isinstance(registry.admit(1, who, 0.0), Admission)  # AUTH again: still one
    assert isinstance(registry.admit(2, who, 0.0), Admission)
    refused = registry.admit(3, who, 0.0)
    assert refused == b"-ERR max concurrent connections exceeded (limit 2)\r\n"
    registry.release(1)
    assert isinstance(registry.admit(3, who, 0.0), Admission)
    assert registry.connections("key", who.key_id) == 2
    assert registry.connections("instance", "i1") == 2
    capped = Principal("cccccccccccc", "x", INSTANCE, instance_limits=Limits(max_connections=2))
    assert (
        registry.admit(4, capped, 0.0) == b"-ERR max concurrent connections exceeded (limit 2)\r\n"
    )


def test_registry_sweep_drops_only_full_buckets_nobody_uses() -> None:
    registry = LimitRegistry()
    admitted = registry.admit(1, principal(ops_per_second=1, burst=1), 0.0)
    assert isinstance(admitted, Admission) and admitted.gate is not None
    assert allow(admitted.gate, 0.0) is None
    registry.release(1)
    registry.sweep(
        0.5, registry.quotas.day
    )  # not full yet: reconnecting must not buy a fresh burst
    again = registry.admit(1, principal(ops_per_second=1, burst=1), 0.5)
    assert isinstance(again, Admission) and again.gate is not None
    assert allow(again.gate, 0.5) is not None
    registry.release(1)
    registry.sweep(5.0, registry.quotas.day)
    assert repr(registry) == "<LimitRegistry [0 buckets, 0 connections]>"


def cmd(*args: bytes) -> Command:
    framer = RequestFramer()
    framer.feed(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    command = framer.next_command()
    assert command is not None
    return command


@pytest.fixture
def session() -> Session:
    from redisgate.proxy.commands.table import CommandTable

    now = [0.0]
    s = Session(CommandTable.from_snapshot(), client_id=1, clock=lambda: now[0])
    s.auth_result(AuthRequest(b"t"), principal())
    s.rate = RateGate((TokenBucket(10, 3, 0.0),))
    return s


def test_session_refuses_commands_over_the_rate_locally_and_in_order(session: Session) -> None:
    kinds = [type(session.handle(cmd(b"GET", b"k"))) for _ in range(3)]
    assert kinds == [Forward] * 3
    assert session.handle(cmd(b"PING")) == Answer(LIMITED)
    assert isinstance(session.handle(cmd(b"QUIT")), Close)  # never refused


def test_session_over_the_rate_inside_multi_dooms_the_transaction(session: Session) -> None:
    assert isinstance(session.handle(cmd(b"MULTI")), Pin)
    from redisgate.proxy.backend.pinning import DedicatedTracker

    session.tracker = DedicatedTracker(2)
    session.tracker.in_multi = True
    session.handle(cmd(b"SET", b"a", b"1"))
    session.handle(cmd(b"SET", b"a", b"2"))
    assert session.handle(cmd(b"SET", b"a", b"3")) == Answer(LIMITED)
    assert session.tracker.queue_error
    decision = session.handle(cmd(b"EXEC"))  # not refused: answered -EXECABORT
    assert isinstance(decision, Pin) and decision.transform is not None


def test_a_pipeline_is_checked_once_per_read_and_exactly_the_burst_runs(
    session: Session,
) -> None:
    """The session takes a whole read's worth at its first command (one check), runs the
    burst, refuses the rest in order, and `settle` returns what a read stopped early left."""
    assert session.rate is not None
    bucket = session.rate.buckets[0]
    framer = RequestFramer()
    session.queued = framer.queued
    framer.feed(b"".join(cmd(b"GET", b"k").raw for _ in range(5)))
    kinds = []
    while (command := framer.next_command()) is not None:
        kinds.append(type(session.handle(command)))
    assert kinds == [Forward] * 3 + [Answer] * 2
    assert session.credit == 0 and bucket.tokens == 0.0
    bucket.tokens = 3.0
    framer.feed(b"".join(cmd(b"GET", b"k").raw for _ in range(3)))
    first = framer.next_command()
    assert first is not None and isinstance(session.handle(first), Forward)
    assert session.credit == 2 and bucket.tokens == 0.0
    session.settle()  # the read stopped after one command
    assert session.credit == 0 and bucket.tokens == 2.0
