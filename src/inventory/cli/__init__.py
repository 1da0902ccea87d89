"""The `inventory` command: run the service, its pieces, and its maintenance tasks."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import redis

from inventory.runtime.logging import configure_logging
from inventory.runtime.migrations import MigrationError
from inventory.runtime.processes import RuntimeFailure, port_is_free
from inventory.runtime.settings import ConfigurationError, Settings, home_from_env
from inventory.security.context import CACHE_SECONDS
from inventory.security.errors import SecurityError
from inventory.security.passwords import password_problem
from inventory.security.principal import ROLES, Role, check_scope

SERVER_ENV = """\
environment:
  INVENTORY_PRIMARY_URL   postgresql:// URL of the primary (event store), as the app role
  INVENTORY_REPLICA_URL   postgresql:// URL of the replica (read models), as the app role
  INVENTORY_REDIS_URL     redis:// URL (rate limits, broker, live feed)
  INVENTORY_JWT_SECRET    key that signs access tokens (serve)
  INVENTORY_REDIS_NAMESPACE  prefix of Redis keys; the same as the API's (keys revoke)
  INVENTORY_LOG_LEVEL     DEBUG, INFO (default), WARNING or ERROR
  INVENTORY_LOG_JSON      1 for JSON lines, 0 for readable ones (default: JSON off a terminal)
"""

MIGRATE_ENV = (
    SERVER_ENV
    + """\
  INVENTORY_PRIMARY_ADMIN_URL      owner role for the primary's schema (default: PRIMARY_URL)
  INVENTORY_REPLICA_ADMIN_URL      role that may create the subscription (default: REPLICA_URL)
  INVENTORY_SUBSCRIPTION_CONNINFO  the primary as the replica reaches it, as a role with
                                   REPLICATION (default: PRIMARY_ADMIN_URL)
"""
)

DEV_ENV = """\
environment:
  INVENTORY_HOME            folder for the embedded servers' data (default: ./.inventory)
  INVENTORY_ADMIN_PASSWORD  password of the admin user created on first start
                            (default: generated and printed once)
"""

DEMO_ENV = """\
environment:
  INVENTORY_DEMO_TOKEN  an API key or access token with the admin role (never argv)
"""

FAILURES = (
    ConfigurationError,
    RuntimeFailure,
    MigrationError,
    psycopg.OperationalError,
    redis.ConnectionError,
    SecurityError,
)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def _dev(args: argparse.Namespace) -> int:
    from inventory.runtime.supervisor import DevSupervisor  # noqa: PLC0415 - dev only

    supervisor = DevSupervisor(home_from_env(), args.host, args.port, demo=args.demo)
    return supervisor.run()


def _migrate(args: argparse.Namespace) -> int:
    from inventory.runtime.migrations import migrate_all  # noqa: PLC0415

    settings = Settings.from_env()
    applied = migrate_all(
        settings.primary_admin_url, settings.replica_admin_url, settings.subscription_conninfo
    )
    for side, names in applied.items():
        for name in names:
            print(f"applied {side} {name}")  # noqa: T201 - command output
    if not any(applied.values()):
        print("nothing to apply: both schemas are up to date")  # noqa: T201
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - only the API process needs it

    from inventory.api.app import create_app  # noqa: PLC0415
    from inventory.feed.uvicorn_protocol import FeedWebSocketProtocol  # noqa: PLC0415

    settings = Settings.from_env()
    if not port_is_free(args.port, args.host):
        raise RuntimeFailure(f"port {args.port} on {args.host} is in use; pass --port")
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the client IP comes from trusted proxies only (security)
        timeout_graceful_shutdown=10,
        # The feed writes each live message's frame, built once, to every connection
        # (feed/frames.py): frames are identical only without per-connection compression.
        ws=FeedWebSocketProtocol,
        ws_per_message_deflate=False,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from inventory.worker.main import run_worker  # noqa: PLC0415

    run_worker(Settings.from_env(), threads=args.threads)
    return 0


def _projections(args: argparse.Namespace) -> int:
    from inventory.projectors import admin  # noqa: PLC0415
    from inventory.projectors.registry import PROJECTORS  # noqa: PLC0415

    settings = Settings.from_env()
    if args.action == "status":
        return admin.status(settings.replica_url)
    names = [p.name for p in PROJECTORS] if args.all else args.names
    if not names:
        raise ConfigurationError("name the projectors to rebuild, or pass --all")
    try:
        return admin.rebuild(settings.replica_url, names)
    except KeyError as error:
        raise ConfigurationError(str(error.args[0])) from None


def _events(args: argparse.Namespace) -> int:
    from inventory.projectors import export  # noqa: PLC0415
    from inventory.projectors.history import ExportRange  # noqa: PLC0415

    try:
        span = ExportRange(args.store, export.parse_time(args.start), export.parse_time(args.end))
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    return export.export(Settings.from_env().replica_url, span, args.output)


def _audit(args: argparse.Namespace) -> int:
    from inventory.audit import verify  # noqa: PLC0415

    if args.wait < 0:
        raise ConfigurationError("--wait must be a number of seconds, 0 or more")
    settings = Settings.from_env()
    return verify(settings.primary_url, settings.replica_url, store=args.store, wait=args.wait)


def _demo(args: argparse.Namespace) -> int:
    from inventory.demo import run  # noqa: PLC0415

    token = os.environ.get("INVENTORY_DEMO_TOKEN", "")
    if not token:
        raise ConfigurationError("INVENTORY_DEMO_TOKEN is not set (an admin API key or token)")
    if not args.rate > 0:
        raise ConfigurationError("--rate must be a number of commands per second above 0")
    if not args.url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--url must be an http:// or https:// URL, not {args.url!r}")
    return run(args.url, token, rate=args.rate, load_only=args.load_only)


def _stores(raw: str, role: Role) -> list[str]:
    stores = [part.strip() for part in raw.split(",") if part.strip()]
    problems = check_scope(stores, role)
    if problems:
        raise ConfigurationError(f"--stores: {'; '.join(problems)}")
    return stores


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigurationError("the two passwords differ")
    else:
        raise ConfigurationError("no terminal to prompt on: pass --password-stdin")
    problem = password_problem(password)
    if problem:
        raise ConfigurationError(problem)
    return password


def _users(args: argparse.Namespace) -> int:
    from inventory.security import bootstrap  # noqa: PLC0415

    if not USERNAME.match(args.username):
        raise ConfigurationError("usernames are 1-64 letters, digits and . _ @ -")
    settings = Settings.from_env()
    stores = _stores(args.stores, Role(args.role))
    password = _read_password(args.password_stdin)
    user = bootstrap.create_user(
        settings.primary_url, args.username, password, Role(args.role), stores
    )
    scope = ",".join(user.stores)
    print(f"created user {user.username} ({user.role}, stores {scope}) id {user.id}")  # noqa: T201
    return 0


def _keys(args: argparse.Namespace) -> int:
    from inventory.security import bootstrap  # noqa: PLC0415

    settings = Settings.from_env()
    if args.action == "revoke":
        try:
            key_id = str(uuid.UUID(args.id))
        except ValueError:
            raise ConfigurationError(f"{args.id!r} is not an API key id") from None
        signalled = bootstrap.revoke_key(
            settings.primary_url, key_id, settings.redis_url, settings.redis_namespace
        )
        print(f"revoked API key {key_id}")  # noqa: T201
        if not signalled:
            print(  # noqa: T201
                f"warning: Redis unreachable; API processes may accept the key for up to "
                f"{CACHE_SECONDS:.0f} s",
                file=sys.stderr,
            )
        return 0
    created = bootstrap.create_key(
        settings.primary_url, args.name, Role(args.role), _stores(args.stores, Role(args.role))
    )
    print(f"created API key {created.record.id} ({created.record.role}); it is shown only now:")  # noqa: T201
    print(created.key)  # noqa: T201
    return 0


def _add_demo_and_audit(command: Callable[..., Any]) -> None:
    demo = command(
        "demo",
        "Load sample stores, products, opening stock and reorder points through the API, "
        "then simulate POS traffic (sales, late offline sales, returns, damage, counts, "
        "deliveries) until interrupted. Idempotent: a second run keeps what exists.",
        DEMO_ENV,
        _demo,
    )
    demo.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL")
    demo.add_argument("--rate", type=float, default=2.0, help="commands per second (default 2)")
    demo.add_argument("--load-only", action="store_true", help="load the sample data and stop")

    audit = command(
        "audit",
        "Verify the recorded history: `verify` checks that every stream's versions run "
        "1..n without a gap and match its head, that every event decodes, that folding each "
        "stream reproduces its stored state, that the replica's events copy equals the "
        "primary's row for row, and that seq follows each stream's versions. Read-only; "
        "prints one line per check and the findings; exits 0 when all pass, 1 otherwise.",
        SERVER_ENV,
        _audit,
    )
    audit_actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    audit_verify = audit_actions.add_parser("verify", help="check the history is whole")
    audit_verify.add_argument("--store", help="only this store's events and streams")
    audit_verify.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to wait for replication before a difference counts (default 10)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inventory",
        description="Event-sourced inventory for retailers with many stores.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, epilog: str, run: Callable[..., int]) -> Any:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run)
        return sub

    dev = command(
        "dev",
        "Run everything on embedded servers: PostgreSQL primary and replica, Redis, "
        "the API and a worker. Data stays in INVENTORY_HOME between runs; Ctrl-C stops all.",
        DEV_ENV,
        _dev,
    )
    dev.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    dev.add_argument(
        "--demo",
        action="store_true",
        help="add sample stores and products and simulate POS sales (inventory demo)",
    )

    command(
        "migrate",
        "Apply pending schema migrations to the primary and the replica and create the "
        "replica's subscription. Safe to run from several processes at once.",
        MIGRATE_ENV,
        _migrate,
    )
    serve = command("serve", "Run the HTTP and WebSocket API.", SERVER_ENV, _serve)
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    worker = command(
        "worker", "Run a Dramatiq worker: projectors, expiries, reports.", SERVER_ENV, _worker
    )
    worker.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")
    projections = command(
        "projections",
        "Inspect and rebuild the read models on the replica: `status` shows how far each "
        "projector trails the events copy; `rebuild NAME... | --all` replays every event "
        "into fresh tables that replace the read models' at the end, with a progress bar.",
        SERVER_ENV,
        _projections,
    )
    actions = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("status", help="each projector's lag")
    rebuild = actions.add_parser(
        "rebuild", help="rebuild projectors from the events copy (one pass over it for all)"
    )
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="a projector, e.g. stock")
    rebuild.add_argument("--all", action="store_true", help="every projector")

    events = command(
        "events",
        "Export a store's events from the replica: `export` writes those whose occurred_at "
        "lies in [--from, --to) as NDJSON in seq order, with a progress bar on stderr.",
        SERVER_ENV,
        _events,
    )
    export = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    export_events = export.add_parser("export", help="NDJSON of a store's events")
    export_events.add_argument("--store", required=True, help="the store id")
    export_events.add_argument("--from", dest="start", required=True, help="RFC 3339 or date")
    export_events.add_argument("--to", dest="end", required=True, help="RFC 3339 or date")
    export_events.add_argument("--output", help="file to write (default: stdout)")

    _add_demo_and_audit(command)

    users = command(
        "users",
        "Manage users on the primary (for bootstrapping; the API has the same). The password "
        "is read from a prompt, or from one line of stdin with --password-stdin; never argv.",
        SERVER_ENV,
        _users,
    )
    user_actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    create_user = user_actions.add_parser("create", help="create a user")
    create_user.add_argument("username")
    create_user.add_argument("--role", required=True, choices=sorted(ROLES))
    create_user.add_argument("--stores", default="*", help="comma-separated store ids, or *")
    create_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )

    keys = command(
        "keys",
        "Create or revoke API keys on the primary. A new key is printed once and stored "
        "only as a hash; a revoked key is refused from the next request on.",
        SERVER_ENV,
        _keys,
    )
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create_key = key_actions.add_parser("create", help="create an API key")
    create_key.add_argument("name")
    create_key.add_argument("--role", required=True, choices=sorted(ROLES))
    create_key.add_argument("--stores", default="*", help="comma-separated store ids, or *")
    revoke = key_actions.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("id", help="the key's id (not the key itself)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `inventory` console script."""
    args = _parser().parse_args(argv)
    json_env = os.environ.get("INVENTORY_LOG_JSON")
    configure_logging(
        os.environ.get("INVENTORY_LOG_LEVEL", "INFO"),
        json=None if json_env is None else json_env == "1",
    )
    try:
        result: int = args.run(args)
    except FAILURES as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"inventory {args.command}: error: {message}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130
    return result
