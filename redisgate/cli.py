"""The `redisgate` command: one subcommand per way to run RedisGate.

Each subcommand takes as flags the settings it reads (`cli_options`: which ones, and what
`--host`/`--port` mean there), so `redisgate dev --port 0` and `REDISGATE_PROXY_PORT=0
redisgate dev` mean the same; every setting can also come from the environment or a file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from redisgate import __version__
from redisgate.cli_options import COMMANDS, add_setting_flags
from redisgate.config import SPECS, Settings
from redisgate.config.load import load_settings, reference_markdown, unknown_env_warnings
from redisgate.errors import ConfigError, RedisGateError, ServiceError, exit_status

log = logging.getLogger("redisgate")

Handler = Callable[[Settings, argparse.Namespace], int]

ADMIN_PASSWORD_ENV = "REDISGATE_ADMIN_PASSWORD"
# What `redisgate dev --free-ports` sets to 0 (a free port) unless given explicitly; the
# PostgreSQL cluster's port is 0 by default already.
FREE_PORTS = ("proxy_port", "http_port", "control_port", "metrics_port", "postgres_port")


# --- Subcommands ---------------------------------------------------------------------------


def _one_gateway_process(settings: Settings, command: str) -> None:
    if settings.proxy_workers > 1:
        raise ConfigError(
            f"proxy_workers = {settings.proxy_workers} ({settings.source_of('proxy_workers')}) "
            f"is for `redisgate proxy`; `redisgate {command}` runs one gateway process"
        )


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate.dev.stack import run_dev

    _one_gateway_process(settings, "dev")
    if args.free_ports:
        settings = with_free_ports(settings)
    return run_dev(settings)


def with_free_ports(settings: Settings) -> Settings:
    """`--free-ports`: every listening port not set explicitly (flag, env, file) becomes 0,
    so the kernel picks a free one; `redisgate dev` prints the URLs it got."""
    chosen = [name for name in FREE_PORTS if settings.source_of(name) == "default"]
    sources = {**settings.sources, **{name: "flag --free-ports" for name in chosen}}
    zeros: dict[str, Any] = {name: 0 for name in chosen}
    return dataclasses.replace(settings, **zeros, sources=sources)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop

    from redisgate.stack import serve

    _one_gateway_process(settings, "serve")
    return uvloop.run(serve(settings))


def cmd_proxy(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop

    if settings.proxy_workers > 1:
        from redisgate.proxy.workers.supervisor import supervise

        return uvloop.run(supervise(settings))
    from redisgate.proxy.clients.gateway import serve

    return uvloop.run(serve(settings))


def _keys_file(settings: Settings) -> Path:
    if settings.keys_file is None:
        raise ConfigError("keys_file is not set: pass --keys-file FILE (or REDISGATE_KEYS_FILE)")
    return settings.keys_file


def cmd_keys_add_instance(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate.backends import Backend
    from redisgate.proxy.keys.static import set_instance

    backend = Backend(
        host=args.backend_host,
        port=args.backend_port,
        db=args.backend_db,
        username=args.backend_username,
        password=args.backend_password,
        tls=args.backend_tls,
        shared=args.shared,
    )
    set_instance(_keys_file(settings), args.name, backend, replace=args.replace)
    print(f"instance {args.name!r} -> {backend.host}:{backend.port} db {backend.db}")
    return 0


def cmd_keys_new(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate import api_key_format
    from redisgate.proxy.keys.static import add_key
    from redisgate.scopes import parse_scope, prefix_scope, preset_scope

    if args.prefix is not None and args.scopes is not None:
        raise ConfigError("--prefix goes with a --preset, not with --scopes (write ~prefix* there)")
    try:
        if args.prefix is not None:
            scopes = prefix_scope(args.prefix, args.preset or "full")
        elif args.preset is not None:
            scopes = preset_scope(args.preset)
        else:
            scopes = args.scopes
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    key = add_key(_keys_file(settings), args.instance, args.name or args.instance, scopes)
    if scopes is not None:
        print(f"scopes: {parse_scope(scopes).canonical}")
    print(f"key id {key.key_id} for instance {args.instance!r} (the token is shown only now):")
    print(f"REDISGATE_URL={api_key_format.url(key.token, *settings.gateway_address())}")
    return 0


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    """The keys of the keys file: name, id, instance, expiry and scopes; never a secret (the
    file holds only digests, and those are not shown either)."""
    from redisgate.proxy.keys.static import parse_keys_file

    path = _keys_file(settings)
    records = sorted(
        parse_keys_file(path).values(),
        key=lambda r: (r.principal.instance.name, r.principal.key_name, r.key_id),
    )
    rows = [("NAME", "ID", "INSTANCE", "EXPIRES", "SCOPES")]
    for record in records:
        principal = record.principal
        # Keys in a file do not expire: `redisgate keys revoke` ends them.
        rows.append(
            (
                principal.key_name,
                record.key_id,
                principal.instance.name,
                "never",
                principal.scope.canonical,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]  # scopes last, unpadded
    for row in rows:
        print("  ".join([*(row[i].ljust(widths[i]) for i in range(4)), row[4]]))
    if not records:
        print(f"no keys in {path} (`redisgate keys new` mints one)", file=sys.stderr)
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate.proxy.keys.static import remove_key

    remove_key(_keys_file(settings), args.key_id)
    print(f"key {args.key_id} revoked (new connections with it are refused)")
    return 0


def cmd_keys_limits(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate.limits import FIELDS
    from redisgate.proxy.keys.static import set_limits

    values: dict[str, int | None] = {}
    for item in args.limits:
        field, _, text = item.partition("=")
        if field not in FIELDS or not (text == "none" or (text.isdigit() and text.isascii())):
            raise ConfigError(
                f"{item!r}: write FIELD=N or FIELD=none (inherit); fields: {', '.join(FIELDS)}"
            )
        values[field] = None if text == "none" else int(text)
    if args.key is not None:
        set_limits(_keys_file(settings), "keys", args.key, values)
    else:
        set_limits(_keys_file(settings), "instances", args.instance, values)
    print("limits set; the gateway applies them at the next AUTH (docs/limits.md)")
    return 0


def cmd_control(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from redisgate.control.app import create_app

    app = create_app(settings)
    log.info("control API on http://%s:%s", settings.control_host, settings.control_port)
    try:
        web.run_app(
            app,
            host=settings.control_host,
            port=settings.control_port,
            shutdown_timeout=settings.shutdown_timeout_s,
            print=None,
            access_log=None,
        )
    except OSError as exc:
        raise ServiceError(
            f"the control API cannot listen on {settings.control_host}:{settings.control_port}: "
            f"{exc.strerror or exc}; choose another port or stop what uses it"
        ) from None
    return 0


def admin_password(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """The new account's password: from stdin (`--password-stdin`), REDISGATE_ADMIN_PASSWORD,
    or asked twice on the terminal; with none of these, a ConfigError that says so."""
    import getpass

    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ConfigError("--password-stdin: stdin is empty; pipe the password in, one line")
        return line.rstrip("\r\n")
    if env.get(ADMIN_PASSWORD_ENV):
        return env[ADMIN_PASSWORD_ENV]
    no_terminal = ConfigError(
        f"no password given and no terminal to ask on: pipe it with --password-stdin or set "
        f"{ADMIN_PASSWORD_ENV}"
    )
    try:
        with open("/dev/tty"):  # what getpass prompts on
            pass
    except OSError:
        raise no_terminal from None
    try:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    except EOFError:
        raise no_terminal from None
    return password


def cmd_admin_create_user(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate.control.admin import create_user

    _require_database_url(settings, "the control database")  # before asking for a password
    password = admin_password(args, os.environ)
    user = asyncio.run(
        create_user(settings, args.email, password, name=args.name, admin=args.admin)
    )
    kind = "platform admin" if user.is_platform_admin else "user"
    print(f"{kind} {user.email} created (id {user.id})")
    return 0


def _require_database_url(settings: Settings, what: str) -> None:
    if not settings.database_url:
        raise ConfigError(
            f"database_url is not set: point REDISGATE_DATABASE_URL (or --database-url) at {what}"
        )


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate.store import db
    from redisgate.store.migrations import default_migrations_dir, migrate, pending

    _require_database_url(settings, "the PostgreSQL database to migrate")
    folder = settings.migrations_dir or default_migrations_dir()

    async def run() -> int:
        assert settings.database_url is not None
        async with db.connection(settings.database_url) as conn:
            if args.check:
                todo = await pending(conn, folder)
                for migration in todo:
                    print(f"pending: {migration.path.name}")
                return 1 if todo else 0
            applied = await migrate(conn, folder)
        for migration in applied:
            print(f"applied: {migration.path.name}")
        print(f"{len(applied)} migration(s) applied; the database is current")
        return 0

    return asyncio.run(run())


def cmd_secrets_new_key(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate.store.sealing import new_key

    print(new_key())
    return 0


def cmd_secrets_reseal(settings: Settings, args: argparse.Namespace) -> int:
    from redisgate.store import db, sealing

    _require_database_url(settings, "the control database")
    sealing.load(settings)

    async def run() -> int:
        assert settings.database_url is not None
        async with db.connection(settings.database_url) as conn, conn.transaction():
            changed = await sealing.reseal(conn)
        print(f"{changed} backend password(s) sealed with key {sealing.box().current_kid}")
        return 0

    return asyncio.run(run())


def cmd_config_show(settings: Settings, args: argparse.Namespace) -> int:
    for spec in SPECS:
        value = settings.masked()[spec.name]
        source = settings.source_of(spec.name)
        if value is None:
            print(f"# {spec.name} = (unset)  # {source}")
        else:
            print(f"{spec.name} = {_toml_value(value)}  # {source}")
    return 0


def cmd_config_reference(settings: Settings, args: argparse.Namespace) -> int:
    sys.stdout.write(reference_markdown())
    return 0


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


# --- Parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redisgate",
        description="RedisGate: a multi-tenant Redis gateway and its control plane.",
    )
    parser.add_argument("--version", action="version", version=f"redisgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str,
        help: str,
        handler: Handler,
        into: Any = sub,
        parent: str = "",
        epilog: str | None = None,
    ) -> argparse.ArgumentParser:
        full = f"{parent} {name}".strip()
        # The whole-stack commands take dozens of settings: a usage line naming each says less
        # than --help's list below it.
        usage = f"redisgate {full} [options]" if len(COMMANDS[full].names) > 12 else None
        p: argparse.ArgumentParser = into.add_parser(
            name, help=help, description=help, epilog=epilog, usage=usage
        )
        p.set_defaults(handler=handler)
        add_setting_flags(p, full)
        return p

    dev = add(
        "dev",
        "run the whole system locally, from a data folder",
        cmd_dev,
        epilog="Prints REDISGATE_URL, REDISGATE_CONTROL_URL, REDISGATE_DEMO_LOGIN, a redis-cli "
        "line, REDISGATE_METRICS_URL and REDISGATE_DATABASE_URL once everything is up. "
        "--host/--port are the gateway's; the control API has --control-host/--control-port.",
    )
    dev.add_argument(
        "--free-ports",
        action="store_true",
        help="listen on free ports (gateway, control API, metrics, PostgreSQL) except those "
        "set explicitly; the printed URLs show the ports chosen",
    )
    add(
        "serve",
        "serve the gateway and the control API in one process",
        cmd_serve,
        epilog="--host/--port are the gateway's; the control API has "
        "--control-host/--control-port.",
    )
    add("proxy", "serve the RESP gateway (the data plane)", cmd_proxy)
    add(
        "control",
        "serve the control-plane HTTP API",
        cmd_control,
        epilog="--host/--port are the control API's own (the same as --control-host/"
        "--control-port); --proxy-host/--proxy-port name the gateway shown in instance "
        "endpoints and key URLs.",
    )
    keys = sub.add_parser(
        "keys",
        help="manage instances and API keys in a static keys file",
        description="manage instances and API keys in a static keys file",
    )
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    p = add(
        "add-instance",
        "add an instance (a backend Redis and db) to the keys file",
        cmd_keys_add_instance,
        keys_sub,
        "keys",
    )
    p.add_argument("name", help="instance name (letters, digits, '-', '_')")
    p.add_argument("--backend-host", default="127.0.0.1", help="backend Redis host")
    p.add_argument("--backend-port", type=int, default=6379, help="backend Redis port")
    p.add_argument("--backend-db", type=int, default=0, help="backend db index")
    p.add_argument("--backend-username", default=None, help="backend ACL user")
    p.add_argument("--backend-password", default=None, help="backend password")
    p.add_argument("--backend-tls", action="store_true", help="connect to the backend with TLS")
    p.add_argument(
        "--shared", action="store_true", help="other dbs of this server belong to other tenants"
    )
    p.add_argument("--replace", action="store_true", help="update an existing instance")
    p = add(
        "new", "mint an API key for an instance and print it once", cmd_keys_new, keys_sub, "keys"
    )
    p.add_argument("--instance", required=True, help="the instance the key opens")
    p.add_argument("--name", default=None, help="a name for the key (default: the instance)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--scopes", default=None, help="Redis ACL rules, e.g. '+@read ~app:*' (docs/scopes.md)"
    )
    scope.add_argument(
        "--preset", default=None, help="full (default), read-only, write-only or pubsub-only"
    )
    p.add_argument(
        "--prefix", default=None, help="limit the key (and its preset) to keys starting with this"
    )
    add(
        "list",
        "list the keys of the keys file: name, id, instance, expiry, scopes (no secrets)",
        cmd_keys_list,
        keys_sub,
        "keys",
    )
    p = add("revoke", "remove a key from the keys file", cmd_keys_revoke, keys_sub, "keys")
    p.add_argument("key_id", help="the key's public id (rg_<id>_…)")
    p = add(
        "limits",
        "set an instance's or a key's limits (docs/limits.md)",
        cmd_keys_limits,
        keys_sub,
        "keys",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--instance", default=None, help="the instance's name")
    target.add_argument("--key", default=None, help="the key's public id")
    p.add_argument(
        "limits",
        nargs="+",
        metavar="FIELD=N",
        help="ops_per_second, burst, max_connections, max_request_bytes, daily_commands or "
        "daily_bytes (the daily ones are stored, enforced once usage accounting lands); "
        "N is a whole number, or 'none' to inherit",
    )
    admin = sub.add_parser(
        "admin",
        help="manage control-plane accounts from the command line",
        description="manage control-plane accounts from the command line",
    )
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    p = add(
        "create-user",
        "create a user (with --admin: a platform admin) and their personal organization",
        cmd_admin_create_user,
        admin_sub,
        "admin",
        epilog=f"The password comes from stdin (--password-stdin), from {ADMIN_PASSWORD_ENV}, "
        "or is asked twice on the terminal.",
    )
    p.add_argument("--email", required=True, help="the user's email (their login)")
    p.add_argument("--name", default="", help="display name")
    p.add_argument("--admin", action="store_true", help="make them a platform admin")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from stdin (one line), not {ADMIN_PASSWORD_ENV} or a prompt",
    )
    migrate = add("migrate", "apply pending database migrations", cmd_migrate)
    migrate.add_argument(
        "--check", action="store_true", help="apply nothing; list pending migrations, exit 1 if any"
    )
    secrets_cmd = sub.add_parser(
        "secrets",
        help="keys that seal backend passwords at rest (docs/security.md)",
        description="keys that seal backend passwords at rest (docs/security.md)",
    )
    secrets_sub = secrets_cmd.add_subparsers(
        dest="secrets_command", metavar="ACTION", required=True
    )
    add(
        "new-key",
        "print a fresh key for backend_secret_keys",
        cmd_secrets_new_key,
        secrets_sub,
        "secrets",
    )
    add(
        "reseal",
        "seal every backend password with the first of backend_secret_keys",
        cmd_secrets_reseal,
        secrets_sub,
        "secrets",
    )
    config = sub.add_parser(
        "config",
        help="show the effective settings or their reference",
        description="show the effective settings or their reference",
    )
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    add(
        "show",
        "print the effective settings (secrets masked) and where each came from",
        cmd_config_show,
        config_sub,
        "config",
    )
    add(
        "reference",
        "print the table of every setting (Markdown)",
        cmd_config_reference,
        config_sub,
        "config",
    )
    return parser


def settings_of(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """The settings a parsed command line stands for (its flags over env, file, defaults)."""
    given = vars(args)
    flags = {spec.name: given[spec.name] for spec in SPECS if spec.name in given}
    return load_settings(
        flags=flags,
        env=env,
        config_file=given.get("config"),
        flag_names=given.get("setting_flags"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for line in unknown_env_warnings(os.environ):
        print(f"redisgate: {line}", file=sys.stderr)
    try:
        settings = settings_of(args)
    except ConfigError as exc:
        print(f"redisgate: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    try:
        return handler(settings, args)
    except RedisGateError as exc:
        return exit_status(exc)
    except KeyboardInterrupt:
        return 130
