"""Find the PostgreSQL and redis-server binaries, and say exactly what to do when they're missing.

Debian installs the PostgreSQL server outside PATH (`/usr/lib/postgresql/<v>/bin`), so we look
in the configured folder, then `pg_config --bindir`, then the newest versioned folder, then PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from redisgate.errors import ServiceError

POSTGRES_TOOLS = ("initdb", "postgres", "pg_isready")
MIN_REDIS = (7, 0)
INSTALL_HINT_PG = (
    "install the Debian package 'postgresql' (`make install` does it when run as root), "
    "or point the postgres_bin_dir setting (REDISGATE_POSTGRES_BIN_DIR) at the folder"
)
INSTALL_HINT_REDIS = (
    "install the Debian package 'redis-server' (`make install` does it when run as root), "
    "or point the redis_server_bin setting (REDISGATE_REDIS_SERVER_BIN) at the binary"
)


def _has_tools(folder: Path) -> bool:
    return all((folder / tool).is_file() for tool in POSTGRES_TOOLS)


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", folder.parent.name)) or (0,)


def find_postgres_bin_dir(configured: Path | None = None) -> Path:
    """The folder holding initdb, postgres and pg_isready."""
    if configured is not None:
        if _has_tools(configured):
            return configured
        missing = [t for t in POSTGRES_TOOLS if not (configured / t).is_file()]
        raise ServiceError(
            f"postgres_bin_dir {configured} lacks {', '.join(missing)}: {INSTALL_HINT_PG}"
        )
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    versioned = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    candidates.extend(versioned)
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if _has_tools(folder):
            return folder
    raise ServiceError(f"PostgreSQL server binaries not found: {INSTALL_HINT_PG}")


def find_redis_server(configured: str = "redis-server") -> Path:
    """The redis-server binary, checked to be version 7.0 or newer."""
    found = shutil.which(configured)
    if found is None:
        raise ServiceError(
            f"redis-server not found (redis_server_bin={configured!r}): {INSTALL_HINT_REDIS}"
        )
    path = Path(found)
    version = redis_version(path)
    if version < MIN_REDIS:
        shown = ".".join(map(str, version))
        raise ServiceError(
            f"{path} is Redis {shown}; RedisGate needs 7.0 or newer: {INSTALL_HINT_REDIS}"
        )
    return path


def redis_version(path: Path) -> tuple[int, ...]:
    """The version of a redis-server binary, from `redis-server --version`."""
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServiceError(f"cannot run {path} --version: {exc}") from None
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if match is None:
        raise ServiceError(f"cannot tell the version of {path} from: {out.strip()!r}")
    return tuple(int(x) for x in match.groups())
