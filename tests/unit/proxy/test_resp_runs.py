"""Runs: the leading commands of a read that the caller forwards as they are come out as one
slice of the input, with exactly the bytes, names and order the per-command path gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from redisgate.proxy.wire.requests import Command, RequestFramer, split_commands
from redisgate.proxy.wire.runs import Forwardable, Run
from tests.unit.proxy.test_resp import ref_encode, requests, split_at

GETS = Forwardable(frozenset({b"GET"}))


def get(key: bytes) -> bytes:
    return ref_encode(b"GET", key)


def test_a_pipelined_read_of_forwarded_commands_is_one_run_of_the_input() -> None:
    framer = RequestFramer()
    data = b"".join(get(b"k%d" % i) for i in range(16))
    framer.feed(data)
    run = framer.next_command(GETS, 100)
    assert run == Run(data, [b"GET"] * 16)
    assert framer.next_command(GETS, 100) is None


def test_a_run_stops_at_the_first_other_command_and_never_resumes_after_it() -> None:
    framer = RequestFramer()
    framer.feed(get(b"a") + ref_encode(b"MULTI") + get(b"b") + get(b"c"))
    fast = GETS
    assert framer.next_command(fast, 100) == Run(get(b"a"), [b"GET"])
    # What follows MULTI may need the dedicated connection once MULTI ran: plain commands.
    assert framer.next_command(fast, 100) == Command([b"MULTI"], ref_encode(b"MULTI"))
    assert framer.next_command(fast, 100) == Command([b"GET", b"b"], get(b"b"))
    assert framer.next_command(fast, 100) == Command([b"GET", b"c"], get(b"c"))


def test_a_run_holds_at_most_room_commands() -> None:
    framer = RequestFramer()
    framer.feed(get(b"a") + get(b"b") + get(b"c"))
    assert framer.next_command(GETS, 2) == Run(get(b"a") + get(b"b"), [b"GET", b"GET"])
    assert framer.next_command(GETS, 2) == Command([b"GET", b"c"], get(b"c"))


def test_no_run_after_a_command_completed_from_an_earlier_read() -> None:
    framer = RequestFramer()
    multi = ref_encode(b"MULTI")
    framer.feed(multi[:3])
    assert framer.next_command(GETS, 100) is None
    framer.feed(multi[3:] + get(b"a"))
    assert framer.next_command(GETS, 100) == Command([b"MULTI"], multi)
    assert framer.next_command(GETS, 100) == Command([b"GET", b"a"], get(b"a"))


def test_keyed_commands_join_a_run_only_while_their_keys_fit() -> None:
    """A key limited to patterns: SET/GET whose keys fit run together; the first that does
    not ends the run (the session then refuses it, with the reason)."""

    def fits(plan: int, args: list[bytes]) -> bool:
        return args[plan].startswith(b"app:")

    fast = Forwardable(frozenset({b"PING"}), {b"GET": 1, b"SET": 1}, fits)
    framer = RequestFramer()
    head = ref_encode(b"SET", b"app:1", b"v") + ref_encode(b"PING") + get(b"app:1")
    framer.feed(head + get(b"other:1") + get(b"app:2"))
    assert framer.next_command(fast, 100) == Run(head, [b"SET", b"PING", b"GET"])
    assert framer.next_command(fast, 100) == Command([b"GET", b"other:1"], get(b"other:1"))
    assert framer.next_command(fast, 100) == Command([b"GET", b"app:2"], get(b"app:2"))


def test_a_run_the_caller_cannot_take_goes_back_as_commands_in_order() -> None:
    framer = RequestFramer()
    framer.feed(get(b"a") + get(b"b") + ref_encode(b"PING"))
    run = framer.next_command(GETS, 100)
    assert isinstance(run, Run)
    framer.requeue(split_commands(run.raw))
    assert [c.args for c in framer.drain()] == [[b"GET", b"a"], [b"GET", b"b"], [b"PING"]]


@settings(max_examples=200, deadline=None)
@given(
    requests=requests,
    cuts=st.lists(st.integers(min_value=0), max_size=8),
    picks=st.lists(st.booleans(), min_size=12, max_size=12),
    room=st.integers(min_value=1, max_value=6),
)
def test_runs_give_the_same_commands_as_the_per_command_path(
    requests: list[tuple[list[bytes], bool]], cuts: list[int], picks: list[bool], room: int
) -> None:
    stream = b""
    expected = []
    for args, inline in requests:
        stream += b" ".join(args) + b"\r\n" if inline else ref_encode(*args)
        expected.append(Command(args, ref_encode(*args)))
    names = {args[0] for (args, _), pick in zip(requests, picks, strict=False) if pick}
    fast = Forwardable(names)
    framer, got = RequestFramer(), []
    for piece in split_at(stream, cuts):
        framer.feed(piece)
        while True:
            parsed_ahead = len(framer.queued)
            item = framer.next_command(fast, room)
            if item is None:
                break
            if isinstance(item, Run):
                assert parsed_ahead == 0  # only ever the first thing a parse hands out
                commands = split_commands(item.raw)
                assert 1 <= len(commands) <= room
                assert item.names == [c.args[0] for c in commands]
                assert all(name in names for name in item.names)
                got.extend(commands)
            else:
                got.append(item)
    assert got == expected
