"""Secrets kept in the data folder when settings give none (the JWT signing key, the backend
secret key): read if there, else created once, 0600 from the first byte."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from redisgate.errors import ConfigError


def read_or_create(path: Path, make: Callable[[], str], *, what: str, setting: str) -> str:
    """The value in `path`, or a new one from `make` written there; a file that cannot be
    read or written is a ConfigError naming `what` and the `setting` that avoids the file."""
    try:
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = make()
        # Created 0600 from the start: the key is never readable by others, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return value
    except OSError as exc:
        raise ConfigError(
            f"cannot keep the {what} in {path}: {exc.strerror or exc}; set {setting} or make "
            "data_dir writable"
        ) from None
