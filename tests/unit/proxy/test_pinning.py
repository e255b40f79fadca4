"""DedicatedTracker: commands sent and frames received in, reply slots and REPLY/PASS out."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisgate.proxy.backend.pinning import DedicatedTracker, Frame

REPLY, PASS = Frame.REPLY, Frame.PASS
OK = b"+OK\r\n"
QUEUED = b"+QUEUED\r\n"

ADDING = {"subscribe": "channels", "psubscribe": "patterns", "ssubscribe": "shard"}
REMOVING = {"unsubscribe": "channels", "punsubscribe": "patterns", "sunsubscribe": "shard"}
KIND_OF = {**ADDING, **REMOVING}


def bulk(value: bytes | None, protocol: int = 2) -> bytes:
    if value is None:
        return b"_\r\n" if protocol == 3 else b"$-1\r\n"
    return b"$%d\r\n%s\r\n" % (len(value), value)


def pubsub(protocol: int, *items: bytes | int | None) -> bytes:
    """A pub/sub frame as Redis sends it: an array in RESP2, a push in RESP3."""
    head = b">" if protocol == 3 else b"*"
    body = b"".join(b":%d\r\n" % i if isinstance(i, int) else bulk(i, protocol) for i in items)
    return head + b"%d\r\n" % len(items) + body


def send(tracker: DedicatedTracker, *args: str) -> int:
    raw = [a.encode() for a in args]
    return tracker.on_send(raw[0].lower(), raw)


def subscribed(tracker: DedicatedTracker, protocol: int, kind: str, *names: str) -> None:
    """Subscribe and feed the confirmations."""
    assert send(tracker, kind, *names) == 0
    for i, name in enumerate(names, 1):
        assert tracker.on_frame(pubsub(protocol, kind.encode(), name.encode(), i)) is PASS


def subs(
    channels: Iterable[bytes] = (), patterns: Iterable[bytes] = (), shard: Iterable[bytes] = ()
) -> dict[str, set[bytes]]:
    return {"channels": set(channels), "patterns": set(patterns), "shard": set(shard)}


# --- Reply slots per command ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "slots"),
    [
        (("GET", "k"), 1),
        (("set", "k", "v"), 1),
        (("MULTI",), 1),
        (("WATCH", "k"), 1),
        (("BLPOP", "k", "0"), 1),
        (("PING",), 1),
        (("CLIENT", "TRACKING", "ON"), 1),
        (("CLIENT", "REPLY", "ON"), 1),
        (("CLIENT", "REPLY", "OFF"), 0),
        (("client", "reply", "skip"), 0),
        (("SUBSCRIBE", "a", "b"), 0),
        (("PSUBSCRIBE", "p*"), 0),
        (("SSUBSCRIBE", "s"), 0),
        (("UNSUBSCRIBE",), 0),
        (("PUNSUBSCRIBE", "p*"), 0),
        (("SUNSUBSCRIBE",), 0),
    ],
)
@pytest.mark.parametrize("protocol", [2, 3])
def test_reply_slots_per_command(args: tuple[str, ...], slots: int, protocol: int) -> None:
    tracker = DedicatedTracker(protocol)
    assert send(tracker, *args) == slots
    assert len(tracker.awaiting) == slots


def test_a_plain_reply_completes_the_oldest_slot() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "GET", "k")
    send(tracker, "BLPOP", "l", "0")
    assert not tracker.clean
    assert tracker.on_frame(b"$1\r\nv\r\n") is REPLY
    assert list(tracker.awaiting) == [b"blpop"]
    assert tracker.on_frame(b"*2\r\n$1\r\nl\r\n$1\r\nx\r\n") is REPLY
    assert tracker.clean


# --- RESP2 pub/sub -------------------------------------------------------------------------


def test_resp2_subscribe_confirmations_messages_and_unsubscribe_all() -> None:
    tracker = DedicatedTracker(2)
    assert send(tracker, "SUBSCRIBE", "a", "b") == 0
    assert not tracker.clean  # confirmations outstanding
    assert tracker.on_frame(pubsub(2, b"subscribe", b"a", 1)) is PASS
    assert tracker.subscriptions == subs({b"a"})
    assert tracker.on_frame(pubsub(2, b"subscribe", b"b", 2)) is PASS
    assert tracker.subscriptions == subs({b"a", b"b"})
    assert tracker.on_frame(pubsub(2, b"message", b"a", b"hello")) is PASS
    assert tracker.subscriptions == subs({b"a", b"b"})
    assert not tracker.clean
    assert send(tracker, "UNSUBSCRIBE") == 0
    assert tracker.on_frame(pubsub(2, b"unsubscribe", b"b", 1)) is PASS
    assert not tracker.clean  # one more confirmation to come
    assert tracker.on_frame(pubsub(2, b"unsubscribe", b"a", 0)) is PASS
    assert tracker.subscriptions == subs()
    assert tracker.clean


def test_unsubscribe_without_arguments_and_no_subscription_gets_one_confirmation() -> None:
    tracker = DedicatedTracker(2)
    assert send(tracker, "UNSUBSCRIBE") == 0
    assert not tracker.clean
    assert tracker.on_frame(pubsub(2, b"unsubscribe", None, 0)) is PASS
    assert tracker.clean
    # the connection is back to plain request/reply: an array reply is a reply
    send(tracker, "LRANGE", "l", "0", "-1")
    assert tracker.on_frame(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n") is REPLY
    assert tracker.clean


def test_unsubscribe_without_arguments_counts_only_its_own_kind() -> None:
    tracker = DedicatedTracker(2)
    subscribed(tracker, 2, "subscribe", "a")
    subscribed(tracker, 2, "psubscribe", "p*")
    assert send(tracker, "PUNSUBSCRIBE") == 0
    assert tracker.on_frame(pubsub(2, b"punsubscribe", b"p*", 1)) is PASS
    assert tracker.subscriptions == subs({b"a"})
    assert tracker.subscribed and not tracker.clean
    assert send(tracker, "UNSUBSCRIBE", "a", "zzz") == 0
    assert tracker.on_frame(pubsub(2, b"unsubscribe", b"a", 0)) is PASS
    assert not tracker.clean  # the confirmation for zzz is still owed
    assert tracker.on_frame(pubsub(2, b"unsubscribe", b"zzz", 0)) is PASS
    assert tracker.clean


def test_pipelined_unsubscribe_then_subscribe() -> None:
    tracker = DedicatedTracker(2)
    subscribed(tracker, 2, "subscribe", "a")
    send(tracker, "UNSUBSCRIBE", "a")
    send(tracker, "SUBSCRIBE", "b")
    assert tracker.on_frame(pubsub(2, b"unsubscribe", b"a", 0)) is PASS
    assert tracker.subscriptions == subs()
    assert not tracker.clean  # SUBSCRIBE b is still being confirmed
    assert tracker.on_frame(pubsub(2, b"subscribe", b"b", 1)) is PASS
    assert tracker.subscriptions == subs({b"b"})
    assert not tracker.clean


def test_pipelined_unsubscribe_all_then_subscribe() -> None:
    tracker = DedicatedTracker(2)
    subscribed(tracker, 2, "subscribe", "a", "c")
    send(tracker, "UNSUBSCRIBE")
    send(tracker, "SUBSCRIBE", "b")
    for frame in [
        pubsub(2, b"unsubscribe", b"c", 1),
        pubsub(2, b"unsubscribe", b"a", 0),
        pubsub(2, b"subscribe", b"b", 1),
    ]:
        assert tracker.on_frame(frame) is PASS
    assert tracker.subscriptions == subs({b"b"})
    send(tracker, "UNSUBSCRIBE", "b")
    assert tracker.on_frame(pubsub(2, b"unsubscribe", b"b", 0)) is PASS
    assert tracker.clean


def test_resp2_patterns_and_shard_channels() -> None:
    tracker = DedicatedTracker(2)
    subscribed(tracker, 2, "psubscribe", "news.*")
    subscribed(tracker, 2, "ssubscribe", "s1")
    assert tracker.subscriptions == subs(patterns={b"news.*"}, shard={b"s1"})
    assert tracker.on_frame(pubsub(2, b"pmessage", b"news.*", b"news.a", b"x")) is PASS
    assert tracker.on_frame(pubsub(2, b"smessage", b"s1", b"y")) is PASS
    send(tracker, "SUNSUBSCRIBE")
    assert tracker.on_frame(pubsub(2, b"sunsubscribe", b"s1", 0)) is PASS
    send(tracker, "PUNSUBSCRIBE", "news.*")
    assert tracker.on_frame(pubsub(2, b"punsubscribe", b"news.*", 0)) is PASS
    assert tracker.subscriptions == subs()
    assert tracker.clean


def test_resp2_ping_and_errors_in_subscribed_mode_are_replies() -> None:
    tracker = DedicatedTracker(2)
    subscribed(tracker, 2, "subscribe", "a")
    assert send(tracker, "PING") == 1
    assert tracker.on_frame(pubsub(2, b"message", b"a", b"m")) is PASS
    assert tracker.on_frame(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n") is REPLY
    assert send(tracker, "GET", "k") == 1
    error = (
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        b"RESET are allowed in this context\r\n"
    )
    assert tracker.on_frame(error) is REPLY
    assert not tracker.awaiting
    assert tracker.subscriptions == subs({b"a"})


# --- RESP3 ---------------------------------------------------------------------------------


def test_resp3_pushes_pass_and_replies_answer() -> None:
    tracker = DedicatedTracker(3)
    subscribed(tracker, 3, "subscribe", "a")
    # RESP3 allows any command while subscribed; only pushes are out of band
    assert send(tracker, "LRANGE", "l", "0", "-1") == 1
    assert tracker.on_frame(pubsub(3, b"message", b"a", b"m")) is PASS
    assert tracker.on_frame(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n") is REPLY
    assert not tracker.awaiting
    assert tracker.subscriptions == subs({b"a"})
    assert send(tracker, "PING") == 1
    assert tracker.on_frame(b"+PONG\r\n") is REPLY
    send(tracker, "UNSUBSCRIBE")
    assert tracker.on_frame(pubsub(3, b"unsubscribe", b"a", 0)) is PASS
    assert tracker.clean


def test_resp3_unsubscribe_with_nothing_subscribed() -> None:
    tracker = DedicatedTracker(3)
    send(tracker, "SUNSUBSCRIBE")
    assert tracker.on_frame(pubsub(3, b"sunsubscribe", None, 0)) is PASS
    assert tracker.clean


def test_resp3_tracking_and_invalidations() -> None:
    tracker = DedicatedTracker(3)
    assert send(tracker, "CLIENT", "TRACKING", "on") == 1
    assert tracker.on_frame(OK) is REPLY
    assert tracker.tracking and not tracker.clean
    send(tracker, "GET", "k")
    invalidation = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
    assert tracker.on_frame(invalidation) is PASS
    assert list(tracker.awaiting) == [b"get"]
    assert tracker.on_frame(b"$1\r\nv\r\n") is REPLY
    assert tracker.on_frame(b">2\r\n$10\r\ninvalidate\r\n_\r\n") is PASS  # flush: null keys
    assert tracker.tracking
    assert send(tracker, "CLIENT", "TRACKING", "OFF") == 1
    assert tracker.on_frame(OK) is REPLY
    assert not tracker.tracking
    assert tracker.clean


def test_failed_tracking_on_leaves_tracking_off() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab")
    assert tracker.on_frame(b"-ERR Prefix 'ab' overlaps with an existing prefix 'a'\r\n") is REPLY
    assert not tracker.tracking
    assert tracker.clean


# --- Transactions and WATCH ----------------------------------------------------------------


def test_multi_exec() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "MULTI")
    assert tracker.in_multi and not tracker.clean
    send(tracker, "SET", "k", "v")
    send(tracker, "EXEC")
    assert not tracker.in_multi
    assert not tracker.clean  # three replies owed
    assert tracker.on_frame(OK) is REPLY
    assert tracker.on_frame(QUEUED) is REPLY
    assert not tracker.clean
    assert tracker.on_frame(b"*1\r\n+OK\r\n") is REPLY
    assert tracker.clean


def test_multi_discard() -> None:
    tracker = DedicatedTracker(2)
    for args in [("MULTI",), ("INCR", "n"), ("DISCARD",)]:
        send(tracker, *args)
    for frame in [OK, QUEUED, OK]:
        assert tracker.on_frame(frame) is REPLY
    assert tracker.clean


def test_watch_until_unwatch() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "WATCH", "k")
    tracker.on_frame(OK)
    assert tracker.watching and not tracker.clean
    send(tracker, "UNWATCH")
    tracker.on_frame(OK)
    assert not tracker.watching
    assert tracker.clean


def test_failed_watch_watches_nothing() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "WATCH")
    tracker.on_frame(b"-ERR wrong number of arguments for 'watch' command\r\n")
    assert not tracker.watching
    assert tracker.clean


@pytest.mark.parametrize("end", ["EXEC", "DISCARD"])
@pytest.mark.parametrize(
    "exec_reply", [b"*0\r\n", b"*-1\r\n", b"-EXECABORT Transaction discarded\r\n"]
)
def test_transaction_end_clears_watch(end: str, exec_reply: bytes) -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "WATCH", "k")
    send(tracker, "MULTI")
    send(tracker, end)
    tracker.on_frame(OK)
    tracker.on_frame(OK)
    assert tracker.watching
    tracker.on_frame(exec_reply if end == "EXEC" else OK)
    assert not tracker.watching
    assert tracker.clean


@pytest.mark.parametrize(
    ("end", "error"),
    [
        ("EXEC", b"-ERR EXEC without MULTI\r\n"),
        ("DISCARD", b"-ERR DISCARD without MULTI\r\n"),
    ],
)
def test_exec_without_multi_keeps_watch(end: str, error: bytes) -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "WATCH", "k")
    tracker.on_frame(OK)
    send(tracker, end)
    assert tracker.on_frame(error) is REPLY
    assert tracker.watching
    assert not tracker.clean


def test_watch_inside_multi_watches_nothing() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "MULTI")
    send(tracker, "WATCH", "k")
    send(tracker, "EXEC")
    tracker.on_frame(OK)
    tracker.on_frame(b"-ERR WATCH inside MULTI is not allowed\r\n")
    assert not tracker.watching
    tracker.on_frame(b"*0\r\n")
    assert not tracker.watching
    assert tracker.clean


# --- CLIENT REPLY --------------------------------------------------------------------------


def test_client_reply_off_then_on() -> None:
    tracker = DedicatedTracker(2)
    assert send(tracker, "CLIENT", "REPLY", "OFF") == 0
    assert tracker.reply_off and not tracker.clean
    assert send(tracker, "SET", "k", "v") == 0
    assert send(tracker, "GET", "k") == 0
    assert not tracker.awaiting
    assert send(tracker, "client", "reply", "on") == 1
    assert not tracker.reply_off
    assert not tracker.clean
    assert tracker.on_frame(OK) is REPLY
    assert tracker.clean


def test_client_reply_skip_skips_exactly_one_reply() -> None:
    tracker = DedicatedTracker(2)
    assert send(tracker, "CLIENT", "REPLY", "SKIP") == 0
    assert not tracker.clean
    assert send(tracker, "SET", "k", "v") == 0
    assert tracker.clean
    assert send(tracker, "GET", "k") == 1
    assert tracker.on_frame(b"$1\r\nv\r\n") is REPLY
    assert tracker.clean


def test_client_reply_on_after_skip_is_answered() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "CLIENT", "REPLY", "SKIP")
    assert send(tracker, "CLIENT", "REPLY", "ON") == 1
    assert tracker.on_frame(OK) is REPLY
    assert tracker.clean


def test_repr() -> None:
    tracker = DedicatedTracker(3)
    assert repr(tracker) == "<DedicatedTracker RESP3 plain [0 subscriptions, 0 awaiting]>"
    send(tracker, "MULTI")
    send(tracker, "CLIENT", "REPLY", "OFF")
    assert repr(tracker) == (
        "<DedicatedTracker RESP3 in_multi reply_off [0 subscriptions, 1 awaiting]>"
    )


# --- Known bugs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("SUBSCRIBE",), b"-ERR wrong number of arguments for 'subscribe' command\r\n"),
        (
            ("SUBSCRIBE", "a", "b"),
            b"-NOPERM this user has no permissions to access one of the channels used as "
            b"arguments\r\n",
        ),
    ],
)
@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribe_answered_by_an_error(args: tuple[str, ...], error: bytes, protocol: int) -> None:
    tracker = DedicatedTracker(protocol)
    slots = send(tracker, *args)
    frame = tracker.on_frame(error)
    assert (slots, frame) in {(0, PASS), (1, REPLY)}
    assert not tracker.subscribed
    assert tracker.clean


def test_resp2_reply_sent_before_a_subscribe_is_still_a_reply() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "WATCH", "k")
    tracker.on_frame(OK)
    assert send(tracker, "LRANGE", "l", "0", "-1") == 1
    send(tracker, "SUBSCRIBE", "c")
    assert tracker.on_frame(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n$1\r\ny\r\n") is REPLY
    assert not tracker.awaiting
    assert tracker.subscriptions == subs()


# --- Property: subscriptions follow Redis --------------------------------------------------

NAMES = [b"a", b"b", b"c"]
VERBS = sorted(KIND_OF)


class RedisPubSubModel:
    """What Redis keeps per connection: one set per kind, and the frames it sends."""

    def __init__(self, protocol: int) -> None:
        self.protocol = protocol
        self.sets: dict[str, set[bytes]] = {"channels": set(), "patterns": set(), "shard": set()}

    def _count(self, kind: str) -> int:
        if kind == "shard":
            return len(self.sets["shard"])
        return len(self.sets["channels"]) + len(self.sets["patterns"])

    def execute(self, verb: str, names: list[bytes]) -> list[bytes]:
        kind = KIND_OF[verb]
        current = self.sets[kind]
        frames = []
        if verb in ADDING:
            for name in names:
                current.add(name)
                frames.append(pubsub(self.protocol, verb.encode(), name, self._count(kind)))
        elif names:
            for name in names:
                current.discard(name)
                frames.append(pubsub(self.protocol, verb.encode(), name, self._count(kind)))
        elif not current:
            frames.append(pubsub(self.protocol, verb.encode(), None, self._count(kind)))
        else:
            for name in sorted(current):
                current.discard(name)
                frames.append(pubsub(self.protocol, verb.encode(), name, self._count(kind)))
        return frames

    def publish(self) -> list[bytes]:
        """Messages for what is subscribed now (they may arrive between confirmations)."""
        frames = []
        if self.sets["channels"]:
            channel = min(self.sets["channels"])
            frames.append(pubsub(self.protocol, b"message", channel, b"m"))
        if self.sets["patterns"]:
            pattern = min(self.sets["patterns"])
            frames.append(pubsub(self.protocol, b"pmessage", pattern, b"c", b"m"))
        if self.sets["shard"]:
            frames.append(pubsub(self.protocol, b"smessage", min(self.sets["shard"]), b"m"))
        return frames


def _command(draw: st.DrawFn) -> tuple[str, list[bytes], bool]:
    verb = draw(st.sampled_from(VERBS))
    least = 1 if verb in ADDING else 0  # SUBSCRIBE with no channel is an error (see above)
    names = draw(st.lists(st.sampled_from(NAMES), min_size=least, max_size=3))
    return verb, names, draw(st.booleans())


commands = st.composite(_command)()
pipelines = st.lists(st.lists(commands, min_size=1, max_size=4), min_size=1, max_size=6)


@settings(max_examples=250, deadline=None)
@given(protocol=st.sampled_from([2, 3]), batches=pipelines)
def test_subscriptions_follow_redis(
    protocol: int, batches: list[list[tuple[str, list[bytes], bool]]]
) -> None:
    tracker = DedicatedTracker(protocol)
    model = RedisPubSubModel(protocol)
    for batch in batches:
        frames: list[bytes] = []
        for verb, names, publish in batch:  # pipelined: all sent before any frame arrives
            assert tracker.on_send(verb.encode(), [verb.encode(), *names]) == 0
            frames += model.execute(verb, names)
            if publish:
                frames += model.publish()
        for frame in frames:
            assert tracker.on_frame(frame) is PASS
        assert tracker.subscriptions == model.sets
        has_any = any(model.sets.values())
        assert tracker.subscribed == has_any
        assert tracker.clean == (not has_any)
        assert not tracker.awaiting


def test_client_no_touch_keeps_the_connection_from_being_lent_again() -> None:
    tracker = DedicatedTracker(2)
    assert tracker.on_send(b"client", [b"CLIENT", b"NO-TOUCH", b"on"]) == 1
    assert tracker.on_frame(b"+OK\r\n") is REPLY
    assert not tracker.clean


def test_blocked_while_a_blocking_command_awaits_its_reply() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "XREAD", "STREAMS", "s", "0")
    assert not tracker.blocked  # XREAD without BLOCK answers at once
    send(tracker, "BLPOP", "l", "0")
    send(tracker, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    assert tracker.blocked
    tracker.on_frame(b"*-1\r\n")  # the first XREAD
    tracker.on_frame(b"*-1\r\n")  # BLPOP
    assert tracker.blocked
    tracker.on_frame(b"*-1\r\n")  # XREAD BLOCK
    assert not tracker.blocked and tracker.clean


def test_blocking_commands_queued_in_multi_do_not_block() -> None:
    tracker = DedicatedTracker(2)
    send(tracker, "MULTI")
    send(tracker, "BLPOP", "l", "0")
    send(tracker, "WAIT", "1", "0")
    assert not tracker.blocked
