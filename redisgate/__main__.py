"""`python -m redisgate` is the `redisgate` command."""

from __future__ import annotations

from redisgate.cli import main

raise SystemExit(main())
