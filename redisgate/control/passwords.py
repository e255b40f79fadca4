"""Password hashing (argon2id) and the rules a new password must meet.

Hashing costs tens of milliseconds of CPU by design, so it runs in a worker thread and the
event loop keeps serving. With `redisgate serve` the gateway shares the process and its
cores, so at most `password_hash_concurrency` hashes run at once (by default one less than
the CPUs, at least 1: the gateway keeps a core), and argon2id uses one lane by default, since
each lane is a thread while hashing: a burst of logins then queues here instead of raising
other tenants' latency. Callers check their throttle before asking for a hash.

Logins for unknown emails still verify against a dummy hash, so the answer takes as long as
for a real account and timing does not reveal which emails exist.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from redisgate.config import Settings
from redisgate.errors import ConfigError

MIN_LENGTH = 10
MIN_SCORE = 3  # zxcvbn: 0 (too guessable) .. 4 (very unguessable)
ZXCVBN_MAX_LENGTH = 72
MAX_LENGTH = 1024
_T = TypeVar("_T")
_COMMON_FILE = Path(__file__).parent / "data" / "common-passwords.txt"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of the most common passwords (lower case)."""
    lines = _COMMON_FILE.read_text().splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def password_problem(password: str, email: str = "") -> str | None:
    """Why `password` is not acceptable, or None.

    Beyond length and the shipped list of common passwords, zxcvbn (the Dropbox estimator)
    scores how many guesses an attacker who knows the usual patterns would need: repeats
    (`aaaaaaaaaa`), keyboard runs (`qwertyuiop`), sequences (`1234567890`), dictionary words
    with substitutions, dates, and the user's own email. At least `MIN_SCORE` (about 10^8
    guesses) is required: enough against online guessing with the login throttle, and
    against a stolen hash with argon2id's cost."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    lowered = password.lower()
    if lowered in common_passwords():
        return "is one of the most common passwords; choose another"
    if email and lowered == email.lower():
        return "must not be your email address"
    hints = [email, email.partition("@")[0]] if email else []
    # zxcvbn is quadratic in the length; its first 72 characters say enough (a weak prefix
    # of a longer password is refused, which errs on the safe side).
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=hints)
    if result["score"] < MIN_SCORE:
        feedback = result["feedback"]
        why = feedback.get("warning") or "it follows a pattern attackers try early"
        advice = " ".join(feedback.get("suggestions") or [])
        return f"is too easy to guess: {why.rstrip('.')}. {advice}".strip()
    return None


def default_concurrency() -> int:
    """One less than the CPUs this process may use (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1)


class Passwords:
    """argon2id with the parameters from settings; rehash when they change."""

    def __init__(self, settings: Settings) -> None:
        if settings.argon2_memory_kib < 8 * settings.argon2_parallelism:
            raise ConfigError(
                f"argon2_memory_kib = {settings.argon2_memory_kib} "
                f"({settings.source_of('argon2_memory_kib')}) must be at least 8 x "
                f"argon2_parallelism ({settings.argon2_parallelism}): raise it or lower the other"
            )
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._dummy = self._hasher.hash("redisgate-dummy-password")
        self.max_concurrent = settings.password_hash_concurrency or default_concurrency()
        self._slots = asyncio.Semaphore(self.max_concurrent)
        # Measured inside the worker threads around the real argon2 call (tests assert on it).
        self._count_lock = threading.Lock()
        self.running = 0
        self.peak_running = 0
        self.computed = 0

    @property
    def parameters(self) -> str:
        h = self._hasher
        return f"argon2id t={h.time_cost} m={h.memory_cost}KiB p={h.parallelism}"

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._counted, self._hasher.hash, password)

    async def verify(self, stored: str, password: str) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one used other parameters)."""
        async with self._slots:
            return await asyncio.to_thread(self._counted, self._verify, stored, password)

    async def burn(self, password: str) -> None:
        """Spend the time of a real verification (for unknown emails)."""
        async with self._slots:
            await asyncio.to_thread(self._counted, self._verify, self._dummy, password)

    def _counted(self, work: Callable[..., _T], *args: str) -> _T:
        with self._count_lock:
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
        try:
            return work(*args)
        finally:
            with self._count_lock:
                self.running -= 1
                self.computed += 1

    def _verify(self, stored: str, password: str) -> tuple[bool, str | None]:
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if self._hasher.check_needs_rehash(stored):
            return True, self._hasher.hash(password)
        return True, None
