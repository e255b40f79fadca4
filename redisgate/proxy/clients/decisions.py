"""What the session decides for each command, as typed values the transport carries out
(sans-IO). One class per kind of decision; the transport decides nothing about Redis itself.

- `Forward`: send on one of the instance's shared connections speaking RESP `protocol`: the
  command's own bytes (`raw` None) or `raw`, its reply through `transform`. `FORWARD[p]` is
  the plain case for each protocol, one shared value (no allocation on the hot path). A
  `protocol` other than the one the client's shared commands went with so far is a switch
  (HELLO changed it): what is in flight on the old one is answered first.
- `Pin`: send on the client's own (dedicated) connection, taking one if needed.
- `RunScript`: send on a connection authenticated as the key's own backend ACL user.
- `Answer`: reply with these bytes, in order with the other replies.
- `Authenticate`: look the key up (I/O), then call `Session.auth_result`.
- `Reset`: reply, and drop the instance and the dedicated connection (RESET).
- `Close`: reply, then close the connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Transform = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """An AUTH or HELLO … AUTH waiting for the key lookup."""

    token: bytes
    hello_protocol: int | None = None
    setname: bytes | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    raw: bytes | None = None
    transform: Transform | None = None
    protocol: int = 2


@dataclass(frozen=True, slots=True)
class Pin:
    raw: bytes | None = None
    transform: Transform | None = None


@dataclass(frozen=True, slots=True)
class RunScript:
    raw: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    reply: bytes


@dataclass(frozen=True, slots=True)
class Authenticate:
    request: AuthRequest


@dataclass(frozen=True, slots=True)
class Reset:
    reply: bytes


@dataclass(frozen=True, slots=True)
class Close:
    reply: bytes


Decision = Forward | Pin | RunScript | Answer | Authenticate | Reset | Close

FORWARD = {2: Forward(protocol=2), 3: Forward(protocol=3)}
PIN = Pin()
