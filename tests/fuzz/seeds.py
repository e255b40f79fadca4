"""Starting inputs per target: a few hand-written streams and some generated ones.

The first byte of an input picks the target's mode (odd: generated from the rest, even: the
rest is the stream), the requests target's second byte its limits and framer (`targets.py`).
"""

from __future__ import annotations

import random

_REQUESTS = [
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
    b"*1\r\n$4\r\nPING\r\nPING\r\n*0\r\n*-1\r\n\r\n",
    b"SET k \"a\\x41\\n b\" 'it\\'s'\r\nGET k\n",
    b"*2\r\n$3\r\nGET\r\n$04\r\nabcd\r\n",
    b"*2\r\n$3\r\nGET\r\n+k\r\n",
    b"*2\r\n$3\r\nSET\r\n$100\r\n",
    b"*1025\r\n$3\r\nGET\r\n",
    b"*2\r\n$4\r\nMGET\r\n$1\r\nk\r\n*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n",
    b'ECHO "unbalanced\r\n',
]

_REPLIES = [
    b"+OK\r\n-ERR x\r\n:1\r\n:-42\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n*0\r\n",
    b"*3\r\n:1\r\n$1\r\na\r\n+b\r\n*2\r\n*2\r\n:1\r\n:2\r\n*0\r\n",
    b"_\r\n,3.14\r\n,-inf\r\n#t\r\n(3492890328409238509324850943850943825024385\r\n",
    b"!21\r\nSYNTAX invalid syntax\r\n=15\r\ntxt:Some string\r\n",
    b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n~3\r\n+a\r\n+b\r\n:3\r\n",
    b">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$2\r\nhi\r\n",
    b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n|0\r\n+OK\r\n",
    b"$?\r\n;4\r\nHell\r\n;6\r\no worl\r\n;1\r\nd\r\n;0\r\n*?\r\n:1\r\n*?\r\n.\r\n.\r\n",
    b"*10\r\n$2\r\nv0\r\n$2\r\nv1\r\n$2\r\nv2\r\n$2\r\nv3\r\n$2\r\nv4\r\n$2\r\nv5\r\n"
    b"$2\r\nv6\r\n$2\r\nv7\r\n$-1\r\n:7\r\n",
]

_INLINE = [
    b'SET k "a b" \'c d\' "\\x41\\xZZ\\n" e\x0bf',
    b'ECHO "a"b',
    b"  PING  \t",
    b'ECHO "ab\x00c"',
]


def seeds(target: str, count: int = 64, seed: int = 0) -> list[bytes]:
    """Hand-written inputs for `target`, then `count` generated ones (random choice bytes)."""
    rng = random.Random(seed)
    if target == "requests":
        fixed = [bytes([0, config]) + data for data in _REQUESTS for config in (0, 1, 2, 3, 8)]
        generated = [bytes([rng.choice((1, 3, 13, 15)), rng.randrange(256)]) for _ in range(count)]
    elif target == "replies":
        fixed = [b"\x00" + data for data in _REPLIES]
        generated = [b"\x01" for _ in range(count)]
    else:
        fixed = [b"\x01" + line for line in _INLINE]
        generated = [b"\x00" for _ in range(count)]
    return fixed + [g + rng.randbytes(rng.randrange(8, 200)) for g in generated]
