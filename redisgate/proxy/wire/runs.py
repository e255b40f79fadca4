"""Runs: a pipelined read of plain forwarded commands taken as one slice of it (sans-IO).

A `Run` is what `RequestFramer.next_command(fast, room)` hands out instead of one `Command`
per command when a read starts with commands the caller forwards as they are (`fast`: the
names needing no check beyond the rate limits, and those whose keys at fixed places fit the
key's patterns). The transport forwards its bytes as read, in one write and one reply slot,
and counts its names, so a 16-deep pipeline costs one object, one rate check and one slot
instead of sixteen of each.

A run is proven the same way as the framer's fast path (each `*N` header is followed by N
`$<len>` headers matching their arguments exactly, so no argument can hide a CRLF), but
without building any argument list or raw bytes per command, and only when the whole read is
within the size limits (so no command in it can exceed them). It only ever starts a parse:
what follows any other command may need another route once that command ran (MULTI).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any, NamedTuple

# `*N` headers by text, `$L` headers by length (anything else: the framer's slow path).
ARRAY_HEADERS = {b"*%d" % i: i for i in range(1, 1025)}
BULK_HEADERS = tuple(b"$%d" % i for i in range(4096))
_BULK_HEADER_OF = dict(enumerate(BULK_HEADERS)).get
_new_tuple = tuple.__new__


class Forwardable(NamedTuple):
    """What a session forwards as it is: `names` whatever their arguments; `keyed` names
    when `fits(plan, args)` says their keys are within the scope (`ScopeCheck.keys_fit`)."""

    names: Container[bytes]
    keyed: Mapping[bytes, Any] = {}
    fits: Callable[[Any, Sequence[bytes]], bool] = lambda plan, args: False


class Run(NamedTuple):
    """Consecutive commands at the start of a read: their bytes (one slice of the input)
    and their names as sent."""

    raw: bytes
    names: list[bytes]


def leading_run(
    buf: bytes, lines: list[bytes], last: int, fast: Forwardable, room: int, max_argc: int
) -> tuple[Run | None, int, int]:
    """From the start of a read (`buf`, split on CRLF into `lines`; those before `last` ended
    in one): the run of its leading complete canonical commands that `fast` forwards, at most
    `room` (None if there is none), the index of the line after it and its length in bytes.

    The hot path of every forwarded read, so written for CPython's sake: the header check is
    an inline loop (a list comprehension is a function call), names are counted down in
    `room`, and the `Run` is built with `tuple.__new__` (a NamedTuple's own is a lambda)."""
    names: list[bytes] = []
    header_of = _BULK_HEADER_OF  # None for an argument too long for the table
    argc_of = ARRAY_HEADERS.get
    plain, keyed, fits = fast
    i = 0
    while room:
        argc = argc_of(lines[i])
        if argc is None or argc > max_argc:
            break
        j = i + argc + argc + 1  # the line after this command's last line
        if j > last:
            break
        k = i + 1  # every header must be exactly `$<len(arg)>`
        while k < j and header_of(len(lines[k + 1])) == lines[k]:
            k += 2
        if k < j:
            break
        name = lines[i + 2]
        if name not in plain:
            plan = keyed.get(name)
            if plan is None or not fits(plan, lines[i + 2 : j : 2]):
                break
        names.append(name)
        room -= 1
        i = j
    if not names:
        return None, 0, 0
    if i == last and not lines[last]:  # the whole read (the usual case): no copy
        return _new_tuple(Run, (buf, names)), i, len(buf)
    size = sum(map(len, lines[:i])) + i + i
    return _new_tuple(Run, (buf[:size], names)), i, size
