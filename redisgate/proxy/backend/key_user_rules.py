"""The backend ACL user of an API key: its name, password and rules (sans-IO).

Theory of operation
-------------------
A script's `redis.call()` runs on the backend, out of the gateway's sight. On an instance that
owns its server (`Backend.shared` false) the gateway therefore runs the scripts of a key
limited to key or channel patterns on a connection authenticated as a Redis ACL user of that
key's own, so that Redis checks every call inside the script against the key's patterns
(docs/scopes.md, "Scripts under key patterns"). This module says what that user is:

- its name, `rg-key-<key id>` (key ids are public and lower-case base32, so the name needs no
  quoting and tells an operator reading `ACL LIST` which key it is);
- its password, an HMAC-SHA256 of the key id under the password the gateway itself uses for
  that server (`Backend.password`, the local provisioner's `requirepass`). Every gateway
  process derives the same one without storing or exchanging anything; it never leaves the
  gateway (Redis keeps only its SHA-256), and whoever could derive it already holds the
  server's own password. The API key's secret is never involved;
- its rules: the key's scope in its canonical form (which is Redis ACL syntax), followed by
  what the gateway refuses or rewrites outside scripts and Redis would run as they are inside
  one: commands the gateway never forwards (`policy.Need.DENIED`), commands it answers or
  rewrites itself (INFO and SLOWLOG GET, whose host details it withholds, CLIENT …),
  keyspace-wide commands for a key without `allkeys`, server-wide state for a key without
  `allkeys allchannels`, and SELECT of any db but the instance's own.

`ACL SETUSER <name> reset on ><password> <rules>` makes the user exactly this, whether or not
it existed, so applying it is idempotent and the same from every gateway.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from redisgate.proxy.commands.routing import SERVER_WIDE, Route
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.policy.scope_check import Need, need
from redisgate.proxy.wire.encode import encode_command
from redisgate.scopes import SCRIPT_RUNNERS, Scope

USER_PREFIX = "rg-key-"
_PASSWORD_CONTEXT = b"redisgate backend ACL user\x00"


def runs_as_key_user(scope: Scope, *, shared: bool) -> bool:
    """Whether scripts of a key with `scope` run as its backend ACL user: on an instance that
    owns its server, when the scope does not reach every key and every channel (a key that
    does runs them as the gateway's user, as before: it could reach everything anyway)."""
    return not shared and not (scope.allkeys and scope.allchannels)


def may_run_scripts(scope: Scope, table: CommandTable) -> bool:
    """Whether the scope allows any command that runs a script (EVAL, FCALL …)."""
    for name in SCRIPT_RUNNERS:
        spec = table.get(name.encode())
        if spec is not None and scope.command_allowed(spec.name, "", spec.acl_categories):
            return True
    return False


def user_name(key_id: str) -> str:
    return f"{USER_PREFIX}{key_id}"


def user_password(backend_password: str | None, key_id: str) -> str:
    """The key user's password, derived from the server's own (see the module docstring)."""
    secret = (backend_password or "").encode()
    return hmac.new(secret, _PASSWORD_CONTEXT + key_id.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=1024)
def user_rules(scope: Scope, table: CommandTable, db: int) -> str:
    """The ACL rules of the key user of `scope` on a server described by `table`, whose
    instance is db `db` (see the module docstring)."""
    whole = scope.allkeys and scope.allchannels
    taken: list[str] = []
    for spec in table.walk():
        if spec.subcommands or spec.name in SCRIPT_RUNNERS:
            continue
        if not scope.command_allowed(spec.name, spec.container, spec.acl_categories):
            continue  # denied by the scope's own rules already
        required = need(spec, shared=False)
        route = spec.decision.route
        if route is Route.DENIED and spec.name in SERVER_WIDE:
            route = SERVER_WIDE[spec.name][0]
        if (
            route is Route.INTERCEPTED  # answered or rewritten by the gateway (INFO …)
            or required is Need.DENIED
            or (required is Need.ALL_KEYS and not scope.allkeys)
            or (required is Need.WHOLE_INSTANCE and not whole)
        ):
            taken.append(f"-{spec.name}")
    taken.sort()
    # A script may SELECT only the instance's own db (its connection's handshake selects it).
    taken += ["-select", f"+select|{db}"]
    return " ".join([scope.canonical, *taken])


def setuser_command(name: str, password: str, rules: str) -> bytes:
    return encode_command(["ACL", "SETUSER", name, "reset", "on", f">{password}", *rules.split()])


def deluser_command(name: str) -> bytes:
    return encode_command(["ACL", "DELUSER", name])
