"""tests/node/install.py against stand-in `node` and `npm` on PATH: `npm ci` runs once per
lock file (a stamp says what is installed), again when the lock changes, and a failing npm or
a missing or old node is an error that says what to do (the tests that need them fail)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.node.install import NodeUnavailable, ensure_installed

FAKE_NPM = """#!/bin/sh
echo "npm $*" >> "$NPM_LOG"
[ -n "$NPM_FAILS" ] && { echo "npm error 404 Not Found - GET @upstash/redis" >&2; exit 1; }
rm -rf node_modules && mkdir -p node_modules/@upstash/redis
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, project = tmp_path / "bin", tmp_path / "project"
    bin_dir.mkdir()
    project.mkdir()
    for name, text in (("node", "#!/bin/sh\necho v20.20.2\n"), ("npm", FAKE_NPM)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for tool in ("rm", "mkdir"):  # what the stand-in npm uses; PATH holds nothing else
        found = shutil.which(tool)
        assert found is not None, tool
        os.symlink(found, bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("NPM_LOG", str(tmp_path / "npm.log"))
    monkeypatch.delenv("NPM_FAILS", raising=False)
    (project / "package.json").write_text(json.dumps({"dependencies": {"a": "1.0.0"}}))
    (project / "package-lock.json").write_text(json.dumps({"lockfileVersion": 3}))
    return project


def npm_calls(folder: Path) -> list[str]:
    log = folder.parent / "npm.log"
    return log.read_text().splitlines() if log.exists() else []


def test_npm_ci_runs_once_per_lock_file(folder: Path) -> None:
    assert ensure_installed(folder) == folder / "node_modules"
    assert (folder / "node_modules" / "@upstash" / "redis").is_dir()
    assert len(npm_calls(folder)) == 1 and npm_calls(folder)[0].startswith("npm ci ")
    assert "--ignore-scripts" in npm_calls(folder)[0]
    ensure_installed(folder)  # the stamp matches: nothing to do
    assert len(npm_calls(folder)) == 1
    (folder / "package-lock.json").write_text(json.dumps({"lockfileVersion": 3, "x": 1}))
    ensure_installed(folder)  # a new lock: installed again
    assert len(npm_calls(folder)) == 2


def test_a_failing_npm_says_so_and_leaves_no_stamp(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPM_FAILS", "1")
    with pytest.raises(NodeUnavailable, match=r"(?s)`npm ci` in .* failed \(exit 1\).*404"):
        ensure_installed(folder)
    monkeypatch.delenv("NPM_FAILS")
    ensure_installed(folder)  # tried again next time
    assert len(npm_calls(folder)) == 2


@pytest.mark.parametrize(
    ("version", "message"),
    [(None, "node is not installed: .*nodejs"), ("v16.20.0", "v16.20.0: the tests need Node 18")],
)
def test_node_missing_or_too_old(folder: Path, version: str | None, message: str) -> None:
    node = folder.parent / "bin" / "node"
    if version is None:
        node.unlink()
    else:
        node.write_text(f"#!/bin/sh\necho {version}\n")
    with pytest.raises(NodeUnavailable, match=message):
        ensure_installed(folder)
    assert npm_calls(folder) == []
