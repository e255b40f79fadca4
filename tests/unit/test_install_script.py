"""`scripts/install-system-deps.sh` against stand-in `apt-get`, `dpkg` and `id` on PATH: each
decision path (root or not, packages there or not, Debian's policy-rc.d there or not) exits
as it should and leaves the policy file as it found it. A `make install` on a fresh machine
once exited 1 after installing everything, because policy-rc.d already existed."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-system-deps.sh"
TOOLS = ("bash", "sed", "mkdir", "chmod", "rm", "cat", "tail", "printf", "echo", "dirname")

FAKE_APT_GET = """#!/bin/bash
echo "apt-get $*" >> "$STANDIN_LOG"
[ "$1" = update ] && exit 0
if [ -f "$POLICY" ]; then echo "policy-rc.d: $(cat "$POLICY" | tail -1)" >> "$STANDIN_LOG"; fi
for pkg in "$@"; do
  case "$pkg" in
    redis-server) printf '#!/bin/sh\\necho "Redis server v=7.0.15 sha=0"\\n' > "$BIN/redis-server"
                  chmod +x "$BIN/redis-server" ;;
    redis-tools) printf '#!/bin/sh\\n' > "$BIN/redis-cli"; chmod +x "$BIN/redis-cli" ;;
    postgresql) for b in postgres initdb; do printf '#!/bin/sh\\n' > "$PGBIN/$b"
                chmod +x "$PGBIN/$b"; done ;;
  esac
done
"""


@dataclass
class Machine:
    root: Path
    bin: Path
    pgbin: Path
    policy: Path
    log: Path

    def install(self, *packages: str) -> None:
        """Packages already on the machine."""
        subprocess.run([self.bin / "apt-get", "install", *packages], env=self.env(), check=True)
        self.log.write_text("")

    def env(self, uid: int = 0) -> dict[str, str]:
        (self.bin / "id").write_text(f"#!/bin/sh\necho {uid}\n")
        (self.bin / "id").chmod(0o755)
        return {
            "PATH": str(self.bin),
            "STANDIN_LOG": str(self.log),
            "BIN": str(self.bin),
            "PGBIN": str(self.pgbin),
            "POLICY": str(self.policy),
            "REDISGATE_POLICY_RC": str(self.policy),
            "REDISGATE_CREATECLUSTER_DIR": str(self.root / "createcluster.d"),
            "REDISGATE_POSTGRES_BIN_DIR": str(self.pgbin),
        }

    def run(self, *args: str, uid: int = 0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=self.env(uid),
            capture_output=True,
            text=True,
            timeout=30,
        )

    def apt_calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    bin_dir, pgbin = tmp_path / "bin", tmp_path / "pgbin"
    bin_dir.mkdir()
    pgbin.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        os.symlink(found, bin_dir / tool)
    (bin_dir / "apt-get").write_text(FAKE_APT_GET)
    (bin_dir / "apt-get").chmod(0o755)
    (bin_dir / "dpkg").write_text("#!/bin/sh\nexit 1\n")  # no optional package is installed
    (bin_dir / "dpkg").chmod(0o755)
    return Machine(tmp_path, bin_dir, pgbin, tmp_path / "policy-rc.d", tmp_path / "apt.log")


@pytest.mark.parametrize("policy_there", [True, False], ids=["policy-present", "no-policy"])
def test_root_installs_what_is_missing_and_exits_0(machine: Machine, policy_there: bool) -> None:
    if policy_there:
        machine.policy.write_text("#!/bin/sh\n# the image's own\nexit 101\n")
    result = machine.run()
    assert result.returncode == 0, result.stderr
    calls = machine.apt_calls()
    assert calls[0] == "apt-get update -q"
    assert "redis-server" in calls[1] and "postgresql" in calls[1] and "redis-tools" in calls[1]
    assert calls[2].startswith("policy-rc.d: exit 101")  # services stay down while installing
    assert "==> installing system packages" in result.stderr
    if policy_there:  # the image's own file is left as it was
        assert machine.policy.read_text() == "#!/bin/sh\n# the image's own\nexit 101\n"
    else:  # ours is gone again
        assert not machine.policy.exists()
    assert machine.run().returncode == 0  # and a second run has nothing to do
    assert machine.apt_calls() == calls


def test_root_with_everything_there_does_nothing(machine: Machine) -> None:
    machine.install("redis-server", "redis-tools", "postgresql")
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert machine.apt_calls() == []


def test_not_root_names_the_missing_packages_and_fails(machine: Machine) -> None:
    machine.install("redis-tools", "postgresql")
    result = machine.run(uid=1000)
    assert result.returncode == 1
    assert "sudo apt-get install -y redis-server" in result.stderr
    assert machine.apt_calls() == []


def test_optional_packages_never_fail(machine: Machine) -> None:
    result = machine.run("--optional", "nutcracker", uid=1000)
    assert result.returncode == 0
    assert "optional packages not installed (not root): nutcracker" in result.stderr
    result = machine.run("--optional", "nutcracker")
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y -q --no-install-recommends nutcracker" in machine.apt_calls()


def test_node_and_npm_count_as_there_when_on_path(machine: Machine) -> None:
    """`make test` asks for Debian's nodejs and npm; a node from elsewhere (NodeSource's
    nodejs carries npm and conflicts with Debian's npm package) is left alone."""
    result = machine.run("--optional", "nodejs", "npm")
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y -q --no-install-recommends nodejs npm" in machine.apt_calls()
    machine.log.write_text("")
    for command in ("node", "npm"):  # dpkg still knows neither
        (machine.bin / command).write_text("#!/bin/sh\n")
        (machine.bin / command).chmod(0o755)
    assert machine.run("--optional", "nodejs", "npm").returncode == 0
    assert machine.apt_calls() == []
    (machine.bin / "npm").unlink()  # Debian's nodejs alone: npm is its own package
    assert machine.run("--optional", "nodejs", "npm").returncode == 0
    assert "apt-get install -y -q --no-install-recommends npm" in machine.apt_calls()
