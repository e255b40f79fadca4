"""Redis glob matching (`stringmatchlen`, Redis 7 `src/util.c`), for bytes.

Used for ACL key patterns (`~pattern`), channel patterns (`&pattern`), KEYS/SCAN MATCH and
PSUBSCRIBE. A gateway that decides what a tenant may touch must agree with Redis on every
byte, including the odd corners, so this module copies Redis's behaviour rather than
fnmatch's or POSIX's.

Two entry points:

- `glob_match(pattern, subject, nocase=False)`: a port of `stringmatchlen_impl`, the
  reference. It walks the pattern like the C code, quirks included. The C recursion (one
  level per `*`) is replaced by a loop with one backtrack point. The two are equivalent:
  a `*` loop returns 0 only after setting `skipLongerMatches`, and that flag makes every
  caller return 0 too. So only the innermost `*` ever moves on, which is exactly what one
  saved position does. The `nesting > 1000` guard is kept: a call that reaches a 1001st
  `*` that is not the last element fails. Cost: O(len(pattern) * len(subject)).
- `compile_glob(pattern, nocase=False)`: parse once and return a `CompiledGlob` whose
  `match(subject)` is the cheapest exact test for the pattern's shape. That is a constant,
  `==`, `startswith`, `endswith`, `in`, or otherwise one anchored `re` fullmatch.

How `compile_glob` works: every non-`*` element (`?`, a literal, `\\x`, a `[...]` set)
matches exactly one byte. So the parser turns each element into a 256-bit set of the bytes
it accepts, using the same control flow as the C loop. All bracket quirks (signed-char
ranges, swapped ranges, unterminated sets, escapes, `nocase`) are settled once, at compile
time. A pattern is then `S0 * S1 * ... * Sk`, with each `Si` a run of fixed-length,
one-byte sets. Greedy glob matching is complete for such patterns: take the earliest
occurrence of each middle `Si`. The regex does exactly that with atomic groups:
`S0 (?>.*?S1) ... (?>.*?Sk-1) .*Sk`. An atomic group cannot be backtracked into, so the
regex is O(len(pattern) * len(subject)), never exponential (a plain `a.*a.*a.*b` is).

Redis behaviour that surprises (all kept, all tested against a real redis-server):

- The empty subject matches only the empty pattern. `*`, `**` and `*?` all reject `b""`,
  because the C loop runs only while both the pattern and the subject are non-empty.
  Redis's callers special-case the exact pattern `*` before calling the matcher: ACL `~*`
  and `&*` become allkeys/allchannels, and KEYS/SCAN skip matching. Callers that mirror
  those commands must do the same. `compile_glob(b"*").match(b"")` is False, like
  `stringmatchlen`.
- Ranges compare C `char`, which is signed on x86-64 builds (and this module follows
  that). `[a-\\xff]` is the range -1..97: bytes 0x00-0x61 and 0xff, but not 0x80-0xfe.
  Reversed ranges are swapped first. With `nocase`, both ends and the subject byte are
  lower-cased after the swap, so `[Z-a]` is empty with `nocase`.
- `]` right after `[` (or `[^`) closes the set: `[]` matches nothing and `[^]` matches any
  byte. Inside a set, `x-]` is a range ending at `]`, and the set then goes on.
- A pattern that ends inside a set closes the set at its last byte: `[ab` is `[ab]`, `[` is
  the empty set, `[^` is any byte. A trailing `\\` is a literal backslash, inside a set or
  outside one.
- `\\x` inside a set compares case-sensitively even with `nocase` (as in Redis).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from functools import partial

__all__ = ["MAX_NESTING", "CompiledGlob", "compile_glob", "glob_match"]

# Redis's "protection against abusive patterns": stringmatchlen_impl returns 0 when nesting
# (the number of `*` groups entered) exceeds this.
MAX_NESTING = 1000

_STAR = ord("*")
_QMARK = ord("?")
_LBRACKET = ord("[")
_RBRACKET = ord("]")
_CARET = ord("^")
_DASH = ord("-")
_BACKSLASH = ord("\\")

_ALL = (1 << 256) - 1  # the set of every byte


def _signed(byte: int) -> int:
    """The value of a byte read as a C `char` on x86-64 (signed)."""
    return byte - 256 if byte >= 128 else byte


def _lower(value: int) -> int:
    """C `tolower` in the "C" locale (Redis never changes LC_CTYPE): ASCII A-Z only."""
    return value + 32 if 65 <= value <= 90 else value


def glob_match(pattern: bytes, subject: bytes, nocase: bool = False) -> bool:
    """True when `subject` matches `pattern` exactly as Redis 7's `stringmatchlen` says.

    The reference implementation, which the compiled form is tested against. It is
    quadratic at worst, not exponential. Prefer `compile_glob` on hot paths.
    """
    plen = len(pattern)
    slen = len(subject)
    p = s = 0  # C: pattern/string pointers; patternLen = plen - p, stringLen = slen - s
    nesting = 0
    star_p = -1  # the innermost `*` loop: its pattern index and the subject index it tries
    star_s = 0
    while True:
        # One call of stringmatchlen_impl(pattern + p, string + s, nesting). It ends in
        # success (return), in failure (failed=True), or at a `*` with more pattern after it.
        failed = nesting > MAX_NESTING
        at_star = False
        while not failed and p < plen and s < slen:
            c = pattern[p]
            if c == _STAR:
                while p + 1 < plen and pattern[p + 1] == _STAR:
                    p += 1
                if p == plen - 1:
                    return True  # a trailing `*` matches the (non-empty) rest
                at_star = True
                break
            if c == _QMARK:
                s += 1
            elif c == _LBRACKET:
                sc = subject[s]
                p += 1
                negate = p < plen and pattern[p] == _CARET
                if negate:
                    p += 1
                matched = False
                while True:
                    if plen - p >= 2 and pattern[p] == _BACKSLASH:
                        p += 1
                        if pattern[p] == sc:  # case-sensitive even with nocase, as in C
                            matched = True
                    elif p < plen and pattern[p] == _RBRACKET:
                        break
                    elif p == plen:
                        p -= 1  # the pattern ended inside the set: stop on its last byte
                        break
                    elif plen - p >= 3 and pattern[p + 1] == _DASH:
                        start = _signed(pattern[p])
                        end = _signed(pattern[p + 2])
                        value = _signed(sc)
                        if start > end:
                            start, end = end, start
                        if nocase:
                            start, end, value = _lower(start), _lower(end), _lower(value)
                        p += 2
                        if start <= value <= end:
                            matched = True
                    elif nocase:
                        if _lower(pattern[p]) == _lower(sc):
                            matched = True
                    elif pattern[p] == sc:
                        matched = True
                    p += 1
                if negate:
                    matched = not matched
                if not matched:
                    failed = True
                    break
                s += 1
            else:
                if c == _BACKSLASH and plen - p >= 2:
                    p += 1
                    c = pattern[p]
                if c != subject[s] and not (nocase and _lower(c) == _lower(subject[s])):
                    failed = True
                    break
                s += 1
            p += 1
            if s == slen:
                while p < plen and pattern[p] == _STAR:
                    p += 1
                break
        if at_star:
            # C: `while (stringLen) { if (impl(pattern+1, string, nesting+1)) return 1; ... }`
            star_p, star_s = p, s
            nesting += 1
            p += 1
            continue
        if not failed and p == plen and s == slen:
            return True
        # This call returned 0 without setting skipLongerMatches: the innermost `*` loop
        # tries the next subject position. No `*` yet: the top-level call failed.
        if star_p < 0:
            return False
        star_s += 1
        if star_s == slen:
            return False  # that loop is exhausted: skipLongerMatches = 1, every caller fails
        p = star_p + 1
        s = star_s


# --- compilation -------------------------------------------------------------------------

# An element is None for a `*` group, else a 256-bit int: bit b is set when byte b matches.
_Element = int | None


def _literal_set(byte: int, nocase: bool) -> int:
    if not nocase:
        return 1 << byte
    low = _lower(byte)
    return sum(1 << b for b in range(256) if _lower(b) == low)


def _range_set(first: int, last: int, nocase: bool) -> int:
    start, end = _signed(first), _signed(last)
    if start > end:
        start, end = end, start
    if nocase:
        start, end = _lower(start), _lower(end)
    bits = 0
    for b in range(256):
        value = _lower(_signed(b)) if nocase else _signed(b)
        if start <= value <= end:
            bits |= 1 << b
    return bits


def _parse_set(pattern: bytes, p: int, nocase: bool) -> tuple[int, int]:
    """Parse a `[...]` starting just after `[`. Returns (byte set, index of its last byte).

    Mirrors the C loop step by step, but collects members instead of testing one byte.
    """
    plen = len(pattern)
    negate = p < plen and pattern[p] == _CARET
    if negate:
        p += 1
    bits = 0
    while True:
        if plen - p >= 2 and pattern[p] == _BACKSLASH:
            p += 1
            bits |= 1 << pattern[p]
        elif p < plen and pattern[p] == _RBRACKET:
            break
        elif p == plen:
            p -= 1
            break
        elif plen - p >= 3 and pattern[p + 1] == _DASH:
            bits |= _range_set(pattern[p], pattern[p + 2], nocase)
            p += 2
        else:
            bits |= _literal_set(pattern[p], nocase)
        p += 1
    return (bits ^ _ALL if negate else bits), p


def _parse(pattern: bytes, nocase: bool) -> list[_Element]:
    elements: list[_Element] = []
    plen = len(pattern)
    p = 0
    while p < plen:
        c = pattern[p]
        if c == _STAR:
            while p + 1 < plen and pattern[p + 1] == _STAR:
                p += 1
            elements.append(None)
        elif c == _QMARK:
            elements.append(_ALL)
        elif c == _LBRACKET:
            bits, p = _parse_set(pattern, p + 1, nocase)
            elements.append(bits)
        else:
            if c == _BACKSLASH and plen - p >= 2:
                p += 1
                c = pattern[p]
            elements.append(_literal_set(c, nocase))
        p += 1
    return elements


def _single_byte(bits: int) -> int | None:
    """The byte when `bits` holds exactly one, else None."""
    return bits.bit_length() - 1 if bits.bit_count() == 1 else None


def _literal(segment: list[int]) -> bytes | None:
    """The bytes a segment of one-byte sets spells, when each set has a single member."""
    out = bytearray()
    for bits in segment:
        byte = _single_byte(bits)
        if byte is None:
            return None
        out.append(byte)
    return bytes(out)


def _set_regex(bits: int) -> bytes:
    if bits == _ALL:
        return b"."  # with re.DOTALL: any byte
    members = [b for b in range(256) if bits >> b & 1]
    if len(members) == 1:
        return b"\\x%02x" % members[0]
    runs: list[bytes] = []
    first = prev = members[0]
    for b in [*members[1:], -2]:
        if b != prev + 1:
            runs.append(b"\\x%02x" % first if first == prev else b"\\x%02x-\\x%02x" % (first, prev))
            first = b
        prev = b
    return b"[" + b"".join(runs) + b"]"


def _segment_regex(segment: list[int]) -> bytes:
    return b"".join(_set_regex(bits) for bits in segment)


def _never(subject: bytes) -> bool:
    return False


class CompiledGlob:
    """A pattern compiled by `compile_glob`. Call `match(subject)`.

    `match` is a plain attribute holding the specialised function, so `glob.match(key)`
    costs a single call. `kind` names the strategy chosen (for tests and debugging):
    "exact", "nonempty", "never", "prefix", "suffix", "prefix+suffix", "contains", "regex".
    """

    __slots__ = ("kind", "match", "nocase", "pattern")

    pattern: bytes
    nocase: bool
    kind: str
    match: Callable[[bytes], bool]

    def __init__(
        self, pattern: bytes, nocase: bool, kind: str, match: Callable[[bytes], bool]
    ) -> None:
        self.pattern = pattern
        self.nocase = nocase
        self.kind = kind
        self.match = match

    def __repr__(self) -> str:
        flags = ", nocase=True" if self.nocase else ""
        return f"<CompiledGlob {self.pattern!r}{flags} ({self.kind})>"


def compile_glob(pattern: bytes, nocase: bool = False) -> CompiledGlob:
    """Compile a Redis glob once. `compile_glob(p, n).match(s) == glob_match(p, s, n)`."""
    pattern = bytes(pattern)
    kind, match = _compile(pattern, nocase)
    return CompiledGlob(pattern, nocase, kind, match)


def _compile(pattern: bytes, nocase: bool) -> tuple[str, Callable[[bytes], bool]]:
    elements = _parse(pattern, nocase)
    segments: list[list[int]] = [[]]
    for element in elements:
        if element is None:
            segments.append([])
        else:
            segments[-1].append(element)
    stars = len(segments) - 1

    if any(bits == 0 for segment in segments for bits in segment):
        return "never", _never  # an empty set (`[]`, `[`) can never consume its byte
    if stars > MAX_NESTING and any(segments[MAX_NESTING + 1 :]):
        # The (MAX_NESTING+1)-th `*` group is not the last element: Redis's nesting guard
        # fails every call that reaches it, and no subject can end before it (a one-byte
        # element follows it), so nothing matches.
        return "never", _never
    if stars == 0:
        exact = _literal(segments[0])
        if exact is not None:
            return "exact", partial(operator.eq, exact)
    elif not any(segments):
        return "nonempty", bool  # only `*`s: any subject except b"" (see module docstring)
    elif stars == 1:
        head, tail = _literal(segments[0]), _literal(segments[1])
        if head is not None and tail is not None:
            return _prefix_suffix(head, tail)
    elif stars == 2 and not segments[0] and not segments[2]:
        middle = _literal(segments[1])
        if middle is not None:

            def contains(subject: bytes) -> bool:
                return middle in subject

            return "contains", contains

    parts = [_segment_regex(segments[0])]
    for middle_segment in segments[1:-1]:
        # Earliest occurrence, committed: no backtracking into it (linear, not exponential).
        parts.append(b"(?>.*?" + _segment_regex(middle_segment) + b")")
    if stars:
        parts.append(b".*" + _segment_regex(segments[-1]))
    fullmatch = re.compile(b"".join(parts), re.DOTALL).fullmatch

    def regex(subject: bytes) -> bool:
        return fullmatch(subject) is not None

    return "regex", regex


def _prefix_suffix(head: bytes, tail: bytes) -> tuple[str, Callable[[bytes], bool]]:
    if not tail:

        def prefix(subject: bytes) -> bool:
            return subject.startswith(head)

        return "prefix", prefix
    if not head:

        def suffix(subject: bytes) -> bool:
            return subject.endswith(tail)

        return "suffix", suffix
    minimum = len(head) + len(tail)

    def prefix_suffix(subject: bytes) -> bool:
        return len(subject) >= minimum and subject.startswith(head) and subject.endswith(tail)

    return "prefix+suffix", prefix_suffix
