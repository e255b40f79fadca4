"""The Node packages of the test suite, installed as `make install` installs the Python ones.

tests/node/package-lock.json pins the official Upstash SDKs and axe-core (the console's
accessibility check in tests/browser/), and what they depend on, with their integrity
hashes; `npm ci` installs exactly that into tests/node/node_modules (gitignored) the first
time, and again only when the lock changes: a stamp in node_modules holds the hash of
package.json and package-lock.json. node_modules sits next to the scripts because Node
resolves `import "@upstash/redis"` from the importing file's folder upwards.

node and npm themselves come from Debian's `nodejs` and `npm` packages (`make test` installs
them as root: scripts/install-system-deps.sh --optional nodejs npm). Without them, or when npm
fails, the tests that need the SDKs fail, saying why: they are never skipped.

By hand: `.venv/bin/python -m tests.node.install`.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = ".redisgate-installed"  # in node_modules
MIN_NODE = 18  # global fetch, as the SDKs need (package.json's engines)
_NPM_TIMEOUT_S = 300


class NodeUnavailable(Exception):
    """node or npm is missing or too old, or `npm ci` failed: the message says what to do."""


def node() -> str:
    """The path of a node binary recent enough for the SDKs."""
    found = shutil.which("node")
    if found is None:
        raise NodeUnavailable(
            "node is not installed: it comes with Debian's nodejs package. `make test` installs "
            "it when run as root (scripts/install-system-deps.sh --optional nodejs npm); "
            "otherwise: sudo apt-get install nodejs npm"
        )
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < MIN_NODE:
        raise NodeUnavailable(f"{found} is {version or 'unknown'}: the tests need Node {MIN_NODE}+")
    return found


def lock_digest(folder: Path = HERE) -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def ensure_installed(folder: Path = HERE) -> Path:
    """`folder`'s node_modules, installed with `npm ci` unless what is there was installed
    from the same package.json and package-lock.json."""
    node()
    wanted = lock_digest(folder)
    modules = folder / "node_modules"
    stamp = modules / STAMP
    with (folder / "package-lock.json").open("rb") as held:  # one installer at a time
        fcntl.flock(held, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text().strip() == wanted:
            return modules
        npm = shutil.which("npm")
        if npm is None:
            raise NodeUnavailable(
                "npm is not installed: it comes with Debian's npm package. `make test` installs "
                "it when run as root (scripts/install-system-deps.sh --optional nodejs npm); "
                "otherwise: sudo apt-get install npm"
            )
        # --ignore-scripts: no package of the lock needs an install script, so none runs.
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        try:
            done = subprocess.run(
                command,
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=_NPM_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise NodeUnavailable(
                f"`npm ci` in {folder} took longer than {_NPM_TIMEOUT_S} s (is the npm registry "
                "reachable?)"
            ) from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-3000:]
            raise NodeUnavailable(
                f"`npm ci` in {folder} failed (exit {done.returncode}); the tests need the "
                f"packages of package-lock.json from the npm registry:\n{output}"
            )
        stamp.write_text(wanted + "\n")
        return modules


if __name__ == "__main__":
    print(f"Node packages in {ensure_installed()}")
