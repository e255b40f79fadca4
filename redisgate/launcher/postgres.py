"""Run a real PostgreSQL cluster on loopback, as an unprivileged user even when we are root.

PostgreSQL refuses to run as root. When we are root, the cluster folder is handed to a system
user (`redisgate`, created if missing) and initdb and postgres run as that user; the folders
above it get the traverse bit (o+x) if they lack it, so that user can reach its own data.

The cluster listens on 127.0.0.1 only, with no Unix socket (its path could exceed the 107-byte
limit in deep folders), and password (SCRAM) authentication for a generated superuser password
that is kept beside the cluster, readable only by its owner.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from redisgate.errors import ServiceError
from redisgate.launcher.binaries import find_postgres_bin_dir
from redisgate.launcher.process import ManagedProcess, free_port

log = logging.getLogger(__name__)

SERVICE_USER = "redisgate"
SUPERUSER = "redisgate"
_BIND_RETRIES = 3


def ensure_service_user(name: str = SERVICE_USER) -> pwd.struct_passwd:
    """The unprivileged system user PostgreSQL runs as when we are root (created if missing)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    cmd = [
        useradd,
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        name,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 9):  # 9: created meanwhile by another process
        raise ServiceError(
            f"cannot create system user {name!r} to run PostgreSQL as "
            f"(PostgreSQL refuses to run as root): {result.stderr.strip()}"
        )
    log.info("created system user %s to run PostgreSQL", name)
    return pwd.getpwnam(name)


def grant_traverse(path: Path, uid: int) -> None:
    """Make every folder above `path` traversable by `uid` (o+x where it is missing)."""
    for folder in reversed(path.resolve().parents):
        st = folder.stat()
        if st.st_uid == uid or st.st_mode & stat.S_IXOTH:
            continue
        log.warning(
            "adding the traverse bit (o+x) to %s so PostgreSQL's user can reach %s", folder, path
        )
        folder.chmod(st.st_mode | stat.S_IXOTH)


class PostgresServer:
    """A PostgreSQL cluster in `base_dir` (created on first start, reused afterwards).

    `base_dir` holds `data/` (the cluster), `password` and `postgres.log`. With
    `base_dir=None` the cluster is ephemeral: a temporary folder, durability off for speed,
    removed on stop (what the test fixtures use).
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        port: int = 0,
        bin_dir: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.ephemeral = base_dir is None
        self.base_dir = base_dir
        self.requested_port = port
        self.port = port
        self.host = host
        self.configured_bin_dir = bin_dir
        self.password = ""
        self.process: ManagedProcess | None = None
        self._run_as: pwd.struct_passwd | None = None

    def __repr__(self) -> str:
        return f"<PostgresServer {self.host}:{self.port} {self.process!r}>"

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None, "start() first"
        return self.base_dir / "data"

    def dsn(self, database: str = "postgres") -> str:
        password = quote(self.password, safe="")
        return f"postgresql://{SUPERUSER}:{password}@{self.host}:{self.port}/{database}"

    # --- Preparation -----------------------------------------------------------------------

    def _prepare_base_dir(self) -> None:
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="redisgate-pg-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._run_as = ensure_service_user()
            grant_traverse(self.base_dir, self._run_as.pw_uid)
            for path in [self.base_dir, *self.base_dir.rglob("*")]:
                os.lchown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        self.base_dir.chmod(0o700)

    def _run(self, argv: list[str]) -> None:
        user = self._run_as
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            cwd=self.base_dir,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise ServiceError(f"{Path(argv[0]).name} failed (code {result.returncode}):\n{output}")

    def _initdb(self, bin_dir: Path) -> None:
        assert self.base_dir is not None
        pwfile = self.base_dir / "initdb-password"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._run_as:
            os.chown(pwfile, self._run_as.pw_uid, self._run_as.pw_gid)
        try:
            argv = [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ]
            if self.ephemeral:
                argv.append("--no-sync")
            self._run(argv)
        finally:
            pwfile.unlink(missing_ok=True)

    def _load_password(self) -> None:
        assert self.base_dir is not None
        path = self.base_dir / "password"
        if (self.data_dir / "PG_VERSION").exists():
            try:
                self.password = path.read_text().strip()
            except FileNotFoundError:
                raise ServiceError(
                    f"cluster {self.data_dir} exists but its password file {path} "
                    f"is gone: remove {self.base_dir} to start afresh"
                ) from None
            return
        self.password = secrets.token_urlsafe(24)
        path.write_text(self.password + "\n")
        path.chmod(0o600)

    # --- Lifecycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> PostgresServer:
        """Create the cluster if needed, start it, wait until it accepts connections."""
        bin_dir = find_postgres_bin_dir(self.configured_bin_dir)
        self._prepare_base_dir()
        assert self.base_dir is not None
        self._load_password()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir)
        attempts = _BIND_RETRIES if self.requested_port == 0 else 1
        for attempt in range(attempts):
            self.port = self.requested_port or free_port(self.host)
            argv = [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
            ]
            if self.ephemeral:
                argv += [
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ]
            user = self._run_as
            self.process = ManagedProcess(
                "postgres",
                argv,
                self.base_dir / "postgres.log",
                stop_signal=signal.SIGINT,  # "fast" shutdown: roll back sessions, then exit
                cwd=self.base_dir,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
            )
            self.process.start()
            probe = self._probe(bin_dir)
            try:
                self.process.wait_ready(probe, timeout_s, f"accepting connections on {self.port}")
                return self
            except ServiceError as exc:
                self.process.stop()
                if "already in use" not in str(exc) or attempt == attempts - 1:
                    self._cleanup()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _probe(self, bin_dir: Path) -> CommandProbe:
        return CommandProbe(
            [
                str(bin_dir / "pg_isready"),
                "-q",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-t",
                "1",
            ]
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.ephemeral and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class CommandProbe:
    """A readiness probe that runs a command and is ready when it exits 0 (pg_isready)."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def __call__(self) -> bool:
        try:
            return subprocess.run(self.argv, capture_output=True, timeout=5).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False
