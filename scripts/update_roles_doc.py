"""Regenerate the role table in docs/roles.md from redisgate.control.roles (between the markers)."""

from __future__ import annotations

import re
from pathlib import Path

from redisgate.control.roles import markdown_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "roles.md"
BLOCK = re.compile(r"(<!-- roles:begin -->\n).*?(<!-- roles:end -->)", re.S)


def main() -> None:
    text = DOC.read_text()
    updated = BLOCK.sub(lambda m: m.group(1) + markdown_table() + m.group(2), text)
    if updated != text:
        DOC.write_text(updated)
        print("docs/roles.md role table updated")


if __name__ == "__main__":
    main()
