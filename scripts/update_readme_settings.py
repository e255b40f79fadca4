"""Regenerate the settings table in README.md from redisgate.config (between the markers)."""

from __future__ import annotations

import re
from pathlib import Path

from redisgate.config.load import reference_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- settings:begin -->\n).*?(<!-- settings:end -->)", re.S)


def main() -> None:
    text = README.read_text()
    updated = BLOCK.sub(lambda m: m.group(1) + reference_markdown() + m.group(2), text)
    if updated != text:
        README.write_text(updated)
        print("README.md settings table updated")


if __name__ == "__main__":
    main()
