"""Redis glob matching: the reference port, the compiled form, and a literal C transcription.

Three implementations are cross-checked here. `glob_match` is the port with a single
backtrack point. `compile_glob` gives the fast paths and the regex. `_c_transcription`
(below) copies the recursive C function statement by statement, `skipLongerMatches`
included, and reads past the end of the pattern as the NUL terminator, as C does. The
integration test checks all of them against a real redis-server.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisgate.glob import MAX_NESTING, CompiledGlob, compile_glob, glob_match
from tests.glob_cases import CASES, NOCASE_CASES


def _c_transcription(pattern: bytes, subject: bytes, nocase: bool = False) -> bool:
    """Redis 7 stringmatchlen_impl, transcribed literally (recursive, so few `*` only)."""

    def char(i: int) -> int:  # C `char`: signed, and the sds terminator past the end
        byte = pattern[i] if i < len(pattern) else 0
        return byte - 256 if byte >= 128 else byte

    def schar(i: int) -> int:
        byte = subject[i]
        return byte - 256 if byte >= 128 else byte

    def tolower(c: int) -> int:
        return c + 32 if ord("A") <= c <= ord("Z") else c

    skip = [False]

    def impl(p: int, plen: int, s: int, slen: int, nesting: int) -> bool:
        if nesting > 1000:
            return False
        while plen and slen:
            c = char(p)
            if c == ord("*"):
                while plen and char(p + 1) == ord("*"):
                    p += 1
                    plen -= 1
                if plen == 1:
                    return True
                while slen:
                    if impl(p + 1, plen - 1, s, slen, nesting + 1):
                        return True
                    if skip[0]:
                        return False
                    s += 1
                    slen -= 1
                skip[0] = True
                return False
            elif c == ord("?"):
                s += 1
                slen -= 1
            elif c == ord("["):
                p += 1
                plen -= 1
                negate = char(p) == ord("^")
                if negate:
                    p += 1
                    plen -= 1
                match = False
                while True:
                    if char(p) == ord("\\") and plen >= 2:
                        p += 1
                        plen -= 1
                        if char(p) == schar(s):
                            match = True
                    elif char(p) == ord("]"):
                        break
                    elif plen == 0:
                        p -= 1
                        plen += 1
                        break
                    elif plen >= 3 and char(p + 1) == ord("-"):
                        start, end, value = char(p), char(p + 2), schar(s)
                        if start > end:
                            start, end = end, start
                        if nocase:
                            start, end, value = tolower(start), tolower(end), tolower(value)
                        p += 2
                        plen -= 2
                        if start <= value <= end:
                            match = True
                    elif not nocase:
                        if char(p) == schar(s):
                            match = True
                    elif tolower(char(p)) == tolower(schar(s)):
                        match = True
                    p += 1
                    plen -= 1
                if negate:
                    match = not match
                if not match:
                    return False
                s += 1
                slen -= 1
            else:
                if c == ord("\\") and plen >= 2:
                    p += 1
                    plen -= 1
                if not nocase:
                    if char(p) != schar(s):
                        return False
                elif tolower(char(p)) != tolower(schar(s)):
                    return False
                s += 1
                slen -= 1
            p += 1
            plen -= 1
            if slen == 0:
                while char(p) == ord("*"):
                    p += 1
                    plen -= 1
                break
        return plen == 0 and slen == 0

    return impl(0, len(pattern), 0, len(subject), 0)


def _case_id(case: tuple[bytes, bytes, bool]) -> str:
    pattern, subject, _ = case
    return f"{pattern[:24]!r}~{subject[:16]!r}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_table(case: tuple[bytes, bytes, bool]) -> None:
    pattern, subject, expected = case
    assert glob_match(pattern, subject) is expected
    assert compile_glob(pattern).match(subject) is expected


@pytest.mark.parametrize("case", NOCASE_CASES, ids=_case_id)
def test_table_nocase(case: tuple[bytes, bytes, bool]) -> None:
    pattern, subject, expected = case
    assert glob_match(pattern, subject, nocase=True) is expected
    assert compile_glob(pattern, nocase=True).match(subject) is expected


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c[0].count(b"*") < 40] + NOCASE_CASES,
    ids=_case_id,
)
def test_table_agrees_with_c_transcription(case: tuple[bytes, bytes, bool]) -> None:
    pattern, subject, _ = case
    for nocase in (False, True):
        assert glob_match(pattern, subject, nocase) is _c_transcription(pattern, subject, nocase)


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [
        (b"", "exact"),
        (b"abc", "exact"),
        (b"a\\*b", "exact"),
        (b"[x]", "exact"),  # a one-member set is a literal
        (b"\\", "exact"),
        (b"*", "nonempty"),
        (b"***", "nonempty"),
        (b"app:*", "prefix"),
        (b"app:**", "prefix"),
        (b"*:log", "suffix"),
        (b"app:*:log", "prefix+suffix"),
        (b"*needle*", "contains"),
        (b"[]", "never"),
        (b"[", "never"),
        (b"a*[]*b", "never"),
        (b"*a" * 1001, "never"),
        (b"user:?:name", "regex"),
        (b"[a-c]*:x", "regex"),
        (b"*a*b*", "regex"),
        (b"a*" * 1001, "regex"),
    ],
)
def test_fast_path_selection(pattern: bytes, kind: str) -> None:
    assert compile_glob(pattern).kind == kind


def test_nocase_letters_take_the_general_path() -> None:
    assert compile_glob(b"app:*", nocase=True).kind == "regex"
    assert compile_glob(b"12:*", nocase=True).kind == "prefix"


def test_compiled_glob_object() -> None:
    glob = compile_glob(bytearray(b"k*"))  # type: ignore[arg-type]
    assert isinstance(glob, CompiledGlob)
    assert glob.pattern == b"k*" and type(glob.pattern) is bytes
    assert repr(glob) == "<CompiledGlob b'k*' (prefix)>"
    assert repr(compile_glob(b"k", nocase=True)) == "<CompiledGlob b'k', nocase=True (regex)>"
    with pytest.raises(AttributeError):
        glob.other = 1  # type: ignore[attr-defined]


def test_nesting_guard_boundary() -> None:
    subject = b"a" * (MAX_NESTING + 1)
    for pattern, expected in [
        (b"*a" * MAX_NESTING + b"*", True),  # the 1001st group is last: allowed
        (b"*a" * (MAX_NESTING + 1), False),
        (b"?*" * MAX_NESTING + b"?", True),
        (b"?*" * (MAX_NESTING + 1) + b"?", False),
    ]:
        assert glob_match(pattern, subject + b"a") is expected
        assert compile_glob(pattern).match(subject + b"a") is expected


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        (b"a*" * 30 + b"b", b"a" * 3000),  # naive backtracking: C(3000, 30) steps
        (b"*a" * 30 + b"*b", b"a" * 3000),
        (b"*?*?*?*?*?*?*?*?*?*?[]", b"x" * 3000),
        (b"*aab" * 20, b"a" * 3000),
    ],
)
def test_no_exponential_blowup(pattern: bytes, subject: bytes) -> None:
    compiled = compile_glob(pattern)
    started = time.perf_counter()
    assert not compiled.match(subject)
    assert not glob_match(pattern, subject)
    # Quadratic at worst: a few ms here. An exponential matcher would never finish.
    assert time.perf_counter() - started < 5.0


# Small alphabets that hit every special character, NUL, high bytes and case.
_PATTERN_TOKENS = [b"*", b"?", b"[", b"]", b"^", b"\\", b"-", b"a", b"b", b"A", b"\x00", b"\xff"]
_SUBJECT_BYTES = [b"a", b"b", b"A", b"-", b"]", b"^", b"\\", b"*", b"[", b"\x00", b"\xff", b"\x80"]

patterns = st.lists(st.sampled_from(_PATTERN_TOKENS), max_size=10).map(b"".join)
subjects = st.lists(st.sampled_from(_SUBJECT_BYTES), max_size=8).map(b"".join)


@settings(max_examples=600, deadline=None)
@given(pattern=patterns, subjects=st.lists(subjects, min_size=1, max_size=12), nocase=st.booleans())
def test_compiled_equals_reference(pattern: bytes, subjects: list[bytes], nocase: bool) -> None:
    compiled = compile_glob(pattern, nocase)
    for subject in subjects:
        result = compiled.match(subject)
        assert type(result) is bool
        assert result is glob_match(pattern, subject, nocase), (compiled, subject)


@settings(max_examples=600, deadline=None)
@given(pattern=patterns, subject=subjects, nocase=st.booleans())
def test_reference_equals_c_transcription(pattern: bytes, subject: bytes, nocase: bool) -> None:
    assert glob_match(pattern, subject, nocase) is _c_transcription(pattern, subject, nocase)


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.lists(st.sampled_from([b"*", b"a", b"b", b"?"]), max_size=14).map(b"".join),
    subject=st.lists(st.sampled_from([b"a", b"b"]), max_size=14).map(b"".join),
)
def test_star_heavy_patterns(pattern: bytes, subject: bytes) -> None:
    """Many `*`s and matches found late: the backtracking cases."""
    expected = _c_transcription(pattern, subject)
    assert glob_match(pattern, subject) is expected
    assert compile_glob(pattern).match(subject) is expected
