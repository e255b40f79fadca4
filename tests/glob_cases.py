"""Redis glob cases (pattern, subject, matches?), shared by the unit and integration tests.

The unit tests check `glob_match` and `compile_glob` against them. The integration test
replays the case-sensitive table against a real redis-server, so every expected value here
is what Redis says, not what we think it should say.
"""

from __future__ import annotations

CASES: list[tuple[bytes, bytes, bool]] = [
    # literals
    (b"", b"", True),
    (b"", b"a", False),
    (b"a", b"", False),
    (b"abc", b"abc", True),
    (b"abc", b"abd", False),
    (b"abc", b"ab", False),
    (b"abc", b"abcd", False),
    (b"abc", b"ABC", False),
    # `*`: any run, empty included, but the empty subject matches only the empty pattern
    (b"*", b"", False),
    (b"**", b"", False),
    (b"a*", b"", False),
    (b"*", b"anything", True),
    (b"**", b"a", True),
    (b"*", b"\x00", True),
    (b"a*", b"a", True),
    (b"a*", b"abc", True),
    (b"a*", b"ba", False),
    (b"*a", b"a", True),
    (b"*a", b"ba", True),
    (b"*a", b"ab", False),
    (b"a*b", b"ab", True),
    (b"a*b", b"axxb", True),
    (b"a*b", b"axxbc", False),
    (b"a*b", b"b", False),
    (b"a*b*c", b"abc", True),
    (b"a*b*c", b"abxbxcc", True),
    (b"a*b*c", b"acb", False),
    (b"a***b", b"a-b", True),
    (b"*ab*", b"xxabyy", True),
    (b"*ab*", b"ab", True),
    (b"*ab*", b"xxaxbyy", False),
    (b"*a*a", b"a", False),
    (b"*a*a", b"aa", True),
    (b"*a*a", b"aab", False),
    (b"a*a*a*a*b", b"aaaaaaaaaa", False),
    (b"a*a*a*a*b", b"aaaaaaaaab", True),
    (b"*?", b"a", True),
    (b"*??", b"a", False),
    (b"?*", b"", False),
    (b"?*", b"a", True),
    # `?`: exactly one byte, any byte
    (b"?", b"a", True),
    (b"?", b"", False),
    (b"?", b"ab", False),
    (b"?", b"\x00", True),
    (b"?", b"\xff", True),
    (b"?", b"\n", True),
    (b"user:?:name", b"user:7:name", True),
    (b"user:?:name", b"user:77:name", False),
    (b"user:?:name", b"user::name", False),
    # sets
    (b"[abc]", b"b", True),
    (b"[abc]", b"d", False),
    (b"[abc]", b"", False),
    (b"[abc]", b"ab", False),
    (b"[^abc]", b"d", True),
    (b"[^abc]", b"a", False),
    (b"[^abc]", b"", False),
    (b"[a-c]", b"b", True),
    (b"[a-c]", b"c", True),
    (b"[a-c]", b"d", False),
    (b"[c-a]", b"b", True),  # a reversed range is swapped
    (b"[c-a]", b"d", False),
    (b"[^a-c]", b"b", False),
    (b"[a-c]*:x", b"b123:x", True),
    (b"[a-c]*:x", b"d123:x", False),
    (b"[-a]", b"-", True),  # `-` first is a member
    (b"[a-]", b"-", False),  # `x-]` is the range x..]: here ] ^ _ ` a
    (b"[a-]", b"_", True),
    (b"[a-]", b"]", True),
    (b"[a-]", b"b", False),
    (b"[a-]b", b"b", True),  # ...and the set goes on to the end of the pattern
    (b"[a-]b", b"ab", False),
    (b"[a\\-z]", b"-", True),  # an escaped `-` is a member, not a range
    (b"[a\\-z]", b"m", False),
    (b"[]", b"]", False),  # `]` first closes the set: empty, matches nothing
    (b"[]", b"a", False),
    (b"[]a]", b"]a]", False),
    (b"[^]", b"]", True),  # negated empty set: any byte
    (b"[^]", b"x", True),
    (b"[^]", b"", False),
    (b"[^]a", b"xa", True),
    (b"[\\]]", b"]", True),
    (b"[\\\\]", b"\\", True),
    (b"[\\a]", b"a", True),
    (b"[\\^a]", b"^", True),
    (b"[^^]", b"^", False),
    (b"[^^]", b"a", True),
    (b"[*?]", b"*", True),
    (b"[*?]", b"x", False),
    # a pattern ending inside a set: the set closes at the pattern's last byte
    (b"[ab", b"a", True),
    (b"[ab", b"b", True),
    (b"[ab", b"c", False),
    (b"[ab", b"ab", False),
    (b"[", b"[", False),
    (b"[", b"", False),
    (b"x[", b"x[", False),
    (b"[^", b"x", True),
    (b"[^", b"^", True),
    (b"[^", b"", False),
    (b"[^", b"xy", False),
    (b"[\\", b"\\", True),  # trailing backslash inside a set: a literal backslash
    (b"[\\", b"[", False),
    (b"[a\\", b"\\", True),
    (b"[a\\", b"a", True),
    (b"[a-", b"-", True),
    (b"[a-", b"b", False),
    (b"[a-b", b"b", True),
    (b"[a-b", b"-", False),
    # escapes outside sets
    (b"\\*", b"*", True),
    (b"\\*", b"a", False),
    (b"\\?", b"?", True),
    (b"\\?", b"a", False),
    (b"\\[a]", b"[a]", True),
    (b"\\[a]", b"a", False),
    (b"\\\\", b"\\", True),
    (b"\\a", b"a", True),
    (b"a\\*b", b"a*b", True),
    (b"a\\*b", b"axb", False),
    (b"\\", b"\\", True),  # a trailing backslash is a literal backslash
    (b"\\", b"", False),
    (b"a\\", b"a\\", True),
    (b"a\\", b"a", False),
    (b"a*\\", b"axx\\", True),
    # binary: NUL and high bytes; ranges compare signed chars (x86-64)
    (b"\x00", b"\x00", True),
    (b"\x00", b"", False),
    (b"a\x00*", b"a\x00b", True),
    (b"*\x00", b"abc\x00", True),
    (b"[\x00-\x02]", b"\x01", True),
    (b"[\x00-\x02]", b"\x03", False),
    (b"[a-\xff]", b"\x00", True),  # the range -1..97
    (b"[a-\xff]", b"a", True),
    (b"[a-\xff]", b"b", False),
    (b"[a-\xff]", b"\x80", False),
    (b"[a-\xff]", b"\xff", True),
    (b"[\xff-a]", b"\x00", True),
    (b"[\x80-\xff]", b"\x90", True),
    (b"[\x80-\xff]", b"a", False),
    (b"[\x7f-\x80]", b"a", True),  # -128..127: every byte
    (b"[\x7f-\x80]", b"\xff", True),
    (b"\xff*", b"\xff\x00", True),
    (b"[^\x00]", b"\x00", False),
    # nesting guard: a 1001st `*` group that is not the pattern's last element fails
    (b"*a" * 1000, b"a" * 1000, True),
    (b"*a" * 1001, b"a" * 1001, False),
    (b"*a" * 1001, b"a" * 1002, False),
    (b"a*" * 1001, b"a" * 1001, True),
    (b"a*" * 1001, b"a" * 1005, True),
    (b"a*" * 1001 + b"b", b"a" * 1001 + b"b", False),
    (b"a*" * 1000 + b"b", b"a" * 1000 + b"b", True),
]

# nocase=True cases: Redis's C-locale tolower, ASCII letters only.
NOCASE_CASES: list[tuple[bytes, bytes, bool]] = [
    (b"ABC", b"abc", True),
    (b"abc", b"ABC", True),
    (b"abc", b"abd", False),
    (b"a*C", b"AxxC", True),
    (b"[A-C]", b"b", True),
    (b"[a-c]", b"B", True),
    (b"[ABC]", b"b", True),
    (b"[^A]", b"a", False),
    (b"[Z-a]", b"_", False),  # both ends lowered after the swap: 122..97, empty
    (b"[Z-a]", b"z", False),
    (b"[A-z]", b"_", False),  # 97..122 once lowered
    (b"[A-z]", b"Q", True),
    (b"[\\A]", b"a", False),  # an escape inside a set stays case-sensitive
    (b"[\\A]", b"A", True),
    (b"\\A", b"a", True),  # ...outside a set it does not
    (b"\xc0", b"\xe0", False),  # no folding outside ASCII
    (b"@", b"`", False),
    (b"[@-B]", b"a", True),  # 64..98 once lowered: includes a and b
]
