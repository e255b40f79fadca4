"""Upstash's script dialect on plain Redis, sans-IO: the `allow-key-locking` shebang flag.

Upstash's rate-limit libraries (`upstash-ratelimit`, `@upstash/ratelimit`) start every Lua
script with `#!lua flags=allow-key-locking`, a flag only Upstash's servers know: Redis 7
refuses the script (`ERR Unexpected flag in script shebang`). So the HTTP front door takes
the flag out of EVAL's and SCRIPT LOAD's script before it is sent, and keeps the rest
byte for byte. The script Redis holds then has another SHA-1 than the one the client
computed (the JS library sends hard-coded hashes with EVALSHA), so `Dialect` remembers, for
each script it rewrote, the client's SHA-1 and the one Redis knows: EVALSHA and SCRIPT EXISTS
name Redis's, SCRIPT LOAD answers with the client's. A SHA-1 it never saw goes through as
sent (Redis answers NOSCRIPT and the libraries fall back to EVAL). The map is a pure function
of script texts, so one bounded map serves every tenant and tells none of them anything.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

__all__ = ["Dialect"]

_FLAG = b"allow-key-locking"
_MAX_SCRIPTS = 4096


def _sha(script: bytes) -> bytes:
    return hashlib.sha1(script, usedforsecurity=False).hexdigest().encode()


def without_flag(script: bytes) -> bytes:
    """`script` without the `allow-key-locking` flag in its shebang (the same if it has none)."""
    if not script.startswith(b"#!lua") or _FLAG not in script:
        return script
    end = script.find(b"\n")
    shebang, rest = (script, b"") if end < 0 else (script[:end], script[end:])
    words = shebang.split(b" ")
    for i, word in enumerate(words):
        if word.startswith(b"flags="):
            flags = [flag for flag in word[6:].split(b",") if flag != _FLAG]
            words[i] = b"flags=" + b",".join(flags) if flags else b""
    new = b" ".join(word for word in words if word) + rest
    return script if new == script else new


class Dialect:
    """Rewrites commands for Upstash's scripts, and remembers the SHA-1s it changed."""

    def __init__(self, max_scripts: int = _MAX_SCRIPTS) -> None:
        self.max_scripts = max_scripts
        self._theirs: OrderedDict[bytes, bytes] = OrderedDict()  # client's SHA-1 -> Redis's

    def __len__(self) -> int:
        return len(self._theirs)

    def rewrite(self, args: list[bytes]) -> tuple[list[bytes], bytes | None]:
        """The command to send instead of `args`, and, for a SCRIPT LOAD that was rewritten,
        the SHA-1 to answer with (the client's)."""
        name = args[0].lower()
        if name in (b"eval", b"eval_ro") and len(args) > 1:
            script = self._rewritten(args[1])
            return ([args[0], script, *args[2:]] if script is not args[1] else args), None
        if name in (b"evalsha", b"evalsha_ro") and len(args) > 1:
            return [args[0], self._redis_sha(args[1]), *args[2:]], None
        if name == b"script" and len(args) > 2:
            sub = args[1].lower()
            if sub == b"load":
                script = self._rewritten(args[2])
                if script is not args[2]:
                    return [args[0], args[1], script, *args[3:]], _sha(args[2])
            elif sub == b"exists":
                return [args[0], args[1], *(self._redis_sha(s) for s in args[2:])], None
        return args, None

    def _rewritten(self, script: bytes) -> bytes:
        new = without_flag(script)
        if new is not script:
            theirs = _sha(script)
            self._theirs[theirs] = _sha(new)
            self._theirs.move_to_end(theirs)
            while len(self._theirs) > self.max_scripts:
                self._theirs.popitem(last=False)
        return new

    def _redis_sha(self, sha: bytes) -> bytes:
        return self._theirs.get(sha.lower(), sha)
