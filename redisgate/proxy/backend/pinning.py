"""What a dedicated upstream connection is doing, so we know which frames answer which command.

Theory of operation
-------------------
A client that starts a transaction, subscribes, blocks, or turns on client-side caching gets
an upstream connection of its own. On it, Redis does not always send one reply per command:

- SUBSCRIBE-family commands are answered by one confirmation per channel (RESP2 arrays, RESP3
  pushes), and an UNSUBSCRIBE without arguments by one per current subscription (or one if
  there is none);
- published messages and tracking invalidations arrive whenever they like;
- CLIENT REPLY OFF/SKIP suppress replies.

`DedicatedTracker` follows the connection exactly as Redis does. `on_send` says how many reply
slots a command takes (0 or 1); `on_frame` says whether a frame answers the oldest slot
(`REPLY`) or goes to the client as it is (`PASS`), and updates the state. `clean` says when
the connection has no state left (no transaction, watch, subscription, tracking, reply mode,
or outstanding reply), so it can go back to the pool for another client.

Frame kinds are told apart without guessing: in RESP3, pushes start with `>`; in RESP2, while a
subscription exists or is being confirmed, Redis allows only pub/sub commands, PING, QUIT and
RESET, so an array whose first element is a pub/sub kind is a pub/sub frame.

This module is sans-IO: bytes and command names in, decisions out.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

import hiredis

from redisgate.proxy.wire.replies import is_error, is_push

SUBSCRIBE_KINDS = {
    b"subscribe": "channels",
    b"unsubscribe": "channels",
    b"psubscribe": "patterns",
    b"punsubscribe": "patterns",
    b"ssubscribe": "shard",
    b"sunsubscribe": "shard",
}
MESSAGE_KINDS = frozenset({b"message", b"pmessage", b"smessage"})
_PUBSUB_FRAME_KINDS = frozenset(SUBSCRIBE_KINDS) | MESSAGE_KINDS
_ADDING = frozenset({b"subscribe", b"psubscribe", b"ssubscribe"})
# Commands that wait on other clients (or replicas) before they answer; XREAD[GROUP] only
# with BLOCK. Inside MULTI they are queued and never wait.
BLOCKING = frozenset(
    {
        b"blpop", b"brpop", b"brpoplpush", b"blmove", b"blmpop", b"bzpopmin", b"bzpopmax",
        b"bzmpop", b"wait", b"waitaof",
    }
)  # fmt: skip
_XREADS = frozenset({b"xread", b"xreadgroup"})


class _BlockingTag(bytes):
    """The expected-reply tag (the command's name) of a command that may wait indefinitely."""


class Frame(Enum):
    REPLY = "reply"  # completes the oldest reply slot
    PASS = "pass"  # out-of-band: goes to the client as it is


def _parse(frame: bytes) -> object:
    reader = hiredis.Reader()
    reader.feed(frame)
    return reader.gets()


class _Confirming:
    """Confirmations still expected for one pub/sub command (`remaining` None: not yet known)."""

    __slots__ = ("kind", "remaining")

    def __init__(self, kind: str, remaining: int | None) -> None:
        self.kind = kind
        self.remaining = remaining


class DedicatedTracker:
    """State of one dedicated connection, as Redis sees it."""

    def __init__(self, protocol: int) -> None:
        self.protocol = protocol
        self.in_multi = False
        self.queue_error = False  # a command of this MULTI was refused: EXEC must abort
        self.watching = False
        self.tracking = False
        self.no_touch = False  # once set, the connection is not lent again
        self.reply_off = False
        self._skip_next = False
        # subscriptions by kind, as confirmed by Redis
        self.subscriptions: dict[str, set[bytes]] = {
            "channels": set(),
            "patterns": set(),
            "shard": set(),
        }
        # What Redis still owes, in the order the commands were sent: a reply (the command's
        # lowercase name, as a tag) or the confirmations of a pub/sub command.
        self._expect: deque[bytes | _Confirming] = deque()
        self._blocking = 0  # `_BlockingTag`s in `_expect`

    def __repr__(self) -> str:
        flags = [
            name
            for name in ("in_multi", "watching", "tracking", "reply_off")
            if getattr(self, name)
        ]
        subs = sum(len(s) for s in self.subscriptions.values())
        return (
            f"<DedicatedTracker RESP{self.protocol} {' '.join(flags) or 'plain'} "
            f"[{subs} subscriptions, {len(self.awaiting)} awaiting]>"
        )

    @property
    def awaiting(self) -> tuple[bytes, ...]:
        """Tags of the commands whose replies are still expected, oldest first."""
        return tuple(e for e in self._expect if isinstance(e, bytes))

    @property
    def blocked(self) -> bool:
        """A command is waiting on the server for data (BLPOP, XREAD BLOCK, WAIT …): its reply
        may never come, so a client that leaves must not be waited for."""
        return self._blocking > 0

    @property
    def subscribed(self) -> bool:
        return any(self.subscriptions.values()) or any(
            isinstance(e, _Confirming) for e in self._expect
        )

    @property
    def clean(self) -> bool:
        """Nothing left on the connection that another client could inherit."""
        return not (
            self.in_multi
            or self.watching
            or self.tracking
            or self.no_touch
            or self.reply_off
            or self._skip_next
            or self._expect
            or any(self.subscriptions.values())
        )

    # --- Commands going out -----------------------------------------------------------------

    def on_send(self, name: bytes, args: list[bytes]) -> int:
        """Account for a command sent on the connection; return its reply slots (0 or 1)."""
        if name in SUBSCRIBE_KINDS:
            # Answered by confirmations (pub/sub frames) or one error, never by a reply slot.
            # The session refuses these inside MULTI, where Redis would queue them instead.
            count: int | None = len(args) - 1
            if count == 0:
                count = 1 if name in _ADDING else None  # resolved when Redis answers
            self._expect.append(_Confirming(SUBSCRIBE_KINDS[name], count))
            return 0
        tag = name
        if name == b"multi":
            if not self.in_multi:  # a nested MULTI is refused by Redis and changes nothing
                self.in_multi = True
                self.queue_error = False
        elif name in (b"exec", b"discard"):
            self.queue_error = False
            # Ends the transaction and every WATCH, but only if there was a MULTI: after
            # "EXEC without MULTI" Redis keeps the watched keys.
            tag = name if self.in_multi else b"exec-without-multi"
            self.in_multi = False
        elif name == b"watch" and self.in_multi:
            tag = b"watch-inside-multi"  # refused by Redis; watches nothing
        elif name == b"client" and len(args) >= 3:
            sub, mode = args[1].lower(), args[2].lower()
            if sub == b"reply":
                if mode == b"off":
                    self.reply_off = True
                    return 0
                if mode == b"skip":
                    self._skip_next = True
                    return 0
                if mode == b"on":
                    self.reply_off = self._skip_next = False
            elif sub == b"tracking":
                tag = b"tracking-on" if mode == b"on" else b"tracking-off"
            elif sub == b"no-touch":  # Redis 7.2: a mode that must not pass to the next client
                self.no_touch = mode == b"on" or self.no_touch
        if self.reply_off:
            return 0
        if self._skip_next:
            self._skip_next = False
            return 0
        if not self.in_multi and (
            name in BLOCKING or (name in _XREADS and any(a.lower() == b"block" for a in args))
        ):
            tag = _BlockingTag(name)
            self._blocking += 1
        self._expect.append(tag)
        return 1

    # --- Frames coming in -------------------------------------------------------------------

    def on_frame(self, frame: bytes) -> Frame:
        """Classify one frame from Redis and update the state.

        Redis answers in the order commands were sent, so the oldest expectation says what
        a frame can be, with two exceptions that arrive at any time: RESP3 pushes, and (in
        RESP2) messages while a subscription exists.
        """
        expect = self._expect
        head = expect[0] if expect else None
        confirming = isinstance(head, _Confirming)
        if is_push(frame):
            self._on_pubsub_frame(_parse(frame))
            return Frame.PASS
        if (
            self.protocol == 2
            and frame[:1] == b"*"
            and (confirming or any(self.subscriptions.values()))
        ):
            parsed = _parse(frame)
            if isinstance(parsed, list) and parsed and parsed[0] in _PUBSUB_FRAME_KINDS:
                self._on_pubsub_frame(parsed)
                return Frame.PASS
        if confirming:
            if is_error(frame):  # the pub/sub command failed as a whole (arity, NOPERM …)
                expect.popleft()
                return Frame.PASS
        elif isinstance(head, bytes):
            expect.popleft()
            if type(head) is _BlockingTag:
                self._blocking -= 1
            self._on_reply(head, frame)
        return Frame.REPLY

    def _on_reply(self, name: bytes, frame: bytes) -> None:
        ok = not is_error(frame)
        if name in (b"exec", b"discard"):
            self.watching = False
        elif name == b"watch" and ok:
            self.watching = True
        elif name == b"unwatch" and ok:
            self.watching = False
        elif name == b"tracking-on" and ok:
            self.tracking = True
        elif name == b"tracking-off" and ok:
            self.tracking = False

    def _on_pubsub_frame(self, parsed: object) -> None:
        if not isinstance(parsed, list) or len(parsed) < 3 or parsed[0] not in SUBSCRIBE_KINDS:
            return  # a message or an invalidation: no state changes
        verb = parsed[0]
        kind = SUBSCRIBE_KINDS[verb]
        names = self.subscriptions[kind]
        head = self._expect[0] if self._expect else None
        if isinstance(head, _Confirming) and head.kind == kind:
            if head.remaining is None:  # UNSUBSCRIBE with no arguments: one per subscription
                head.remaining = max(1, len(names))
            head.remaining -= 1
            if head.remaining <= 0:
                self._expect.popleft()
        channel = parsed[1]
        if verb in _ADDING:
            if isinstance(channel, bytes):
                names.add(channel)
        elif isinstance(channel, bytes):
            names.discard(channel)
