"""What the console's scripts repeat of the server: the role table (which buttons a role
sees) and the scope presets of the key form must say what the API enforces."""

from __future__ import annotations

import json
import re

from redisgate.control.console import SCRIPTS
from redisgate.control.roles import PERMISSIONS, ROLES
from redisgate.scopes import PRESETS


def test_the_console_role_table_is_the_servers() -> None:
    source = (SCRIPTS / "roles.js").read_text()
    block = re.search(r"export const PERMISSIONS = (\{.*?\n\})", source, re.S)
    assert block is not None
    table = json.loads(re.sub(r",\s*\}", "}", block.group(1)))
    expected = {
        action: [r.value for r in ROLES if r in allowed]
        for action, (allowed, _) in PERMISSIONS.items()
    }
    assert table == expected


def test_the_key_form_offers_every_preset() -> None:
    source = (SCRIPTS / "page-keys.js").read_text()
    offered = re.findall(r'^  \["([a-z-]+)", "[^"]+", "', source, re.M)
    assert sorted(offered) == sorted(PRESETS)
