"""`docs/commands.md` is generated from the command table and must be current."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from redisgate.proxy.commands.table import CommandTable

ROOT = Path(__file__).resolve().parents[3]


def load_generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_commands_doc.py"
    spec = importlib.util.spec_from_file_location("gen_commands_doc", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def test_commands_doc_is_current() -> None:
    generator = load_generator()
    expected = generator.render(CommandTable.from_snapshot())
    doc = ROOT / "docs" / "commands.md"
    current = doc.read_text(encoding="utf-8") if doc.exists() else ""
    assert current == expected, (
        "docs/commands.md is out of date with the command table or routes; "
        "regenerate it with `python scripts/gen_commands_doc.py` and commit the result"
    )


def test_commands_doc_lists_every_command_once() -> None:
    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    for spec in CommandTable.from_snapshot().walk():
        assert text.count(f"`{spec.display_name}` |") == 1, spec.display_name
