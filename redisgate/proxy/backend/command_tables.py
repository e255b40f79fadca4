"""The command table of each backend server: its own COMMAND INFO, asked once per server.

A session binds its scope to the table of its instance's backend (`use_table` at AUTH), and
the scripts' key users get ACL rules built from it (`keys.refresh.KeyRefresher`). Both ask
`CommandTables.get`: the first ask for a server fetches its table (`InstancePool.
fetch_command_table`); asks meanwhile wait for that one fetch; servers that describe their
commands identically share one table (by digest). While a backend cannot be asked, the table
shipped with RedisGate answers, and the next ask tries again: metadata never breaks an AUTH.
"""

from __future__ import annotations

import asyncio
import logging

from redisgate import metrics
from redisgate.proxy.backend.pool import InstancePool
from redisgate.proxy.commands.table import CommandTable

log = logging.getLogger(__name__)


class CommandTables:
    def __init__(self, shipped: CommandTable) -> None:
        self.shipped = shipped
        self.by_server: dict[tuple[str, int], asyncio.Future[CommandTable]] = {}
        self._by_digest: dict[bytes, CommandTable] = {}

    def __repr__(self) -> str:
        return f"<CommandTables [{len(self.by_server)} servers, {len(self._by_digest)} tables]>"

    async def get(self, pool: InstancePool) -> CommandTable:
        """The command table of the pool's backend (its own COMMAND INFO), fetched once per
        backend server; the shipped table while the backend cannot be asked."""
        key = (pool.backend.host, pool.backend.port)
        pending = self.by_server.get(key)
        if pending is None:
            pending = self.by_server[key] = asyncio.ensure_future(self._fetch(pool))
        try:
            return await asyncio.shield(pending)
        except Exception as exc:  # never let metadata break authentication
            if self.by_server.get(key) is pending:
                del self.by_server[key]  # ask again next time
            log.warning("using the shipped command table for %s:%s: %s", *key, exc)
            return self.shipped

    async def _fetch(self, pool: InstancePool) -> CommandTable:
        table = await pool.fetch_command_table(self._by_digest)
        # Once per fetch, not per ask: every AUTH asks (and every HTTP request authenticates).
        metrics.KNOWN_COMMANDS.update(name.encode() for name in table.names())
        return table
