"""Where an instance's data lives: the backend address, one type for every layer.

A provisioner returns one for a new instance, the store keeps it on the instance's row (its
password sealed) and hands it to both planes, the gateway connects to it, and a keys file
names one per instance. Nothing converts between shapes: this is the only one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backend:
    """A Redis endpoint and a db index on it; the password never appears in a repr or a log.

    `shared` marks a server whose other dbs belong to other tenants (the `static`
    provisioner's). The gateway refuses there what would reach past the instance's db: scripts
    (EVAL, FCALL, FUNCTION), since a Lua script may SELECT another db and no gateway can see
    inside a script to stop it; pub/sub, since channels are server-wide; and the commands that
    act on the whole server (FLUSHALL …). An instance owning its server (`local`) is not
    shared.

    `password` is None where the server asks for none (a keys file's or a registered server's
    may not); the local provisioner always sets one.
    """

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    shared: bool = False
