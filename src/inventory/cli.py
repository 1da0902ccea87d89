"""The `inventory` command: run the service, its pieces, and its maintenance tasks."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import redis

from inventory.runtime.logging import configure_logging
from inventory.runtime.migrations import MigrationError
from inventory.runtime.processes import RuntimeFailure, port_is_free
from inventory.runtime.settings import ConfigurationError, Settings, home_from_env

SERVER_ENV = """\
environment:
  INVENTORY_PRIMARY_URL   postgresql:// URL of the primary (event store), as the app role
  INVENTORY_REPLICA_URL   postgresql:// URL of the replica (read models), as the app role
  INVENTORY_REDIS_URL     redis:// URL (rate limits, broker, live feed)
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
  INVENTORY_HOME  folder for the embedded servers' data (default: ./.inventory)
"""

FAILURES = (
    ConfigurationError,
    RuntimeFailure,
    MigrationError,
    psycopg.OperationalError,
    redis.ConnectionError,
)


def _dev(args: argparse.Namespace) -> int:
    from inventory.runtime.supervisor import DevSupervisor  # noqa: PLC0415 - dev only

    supervisor = DevSupervisor(home_from_env(), args.host, args.port)
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
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from inventory.worker.main import run_worker  # noqa: PLC0415

    run_worker(Settings.from_env(), threads=args.threads)
    return 0


def _projections(args: argparse.Namespace) -> int:
    from inventory.projectors import admin  # noqa: PLC0415

    settings = Settings.from_env()
    if args.action == "status":
        return admin.status(settings.replica_url)
    try:
        return admin.rebuild(settings.replica_url, args.name)
    except KeyError as error:
        raise ConfigurationError(str(error.args[0])) from None


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
        "projector trails the events copy; `rebuild NAME` empties one read model and "
        "replays every event into it, with a progress bar.",
        SERVER_ENV,
        _projections,
    )
    actions = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("status", help="each projector's lag")
    rebuild = actions.add_parser("rebuild", help="rebuild one projector from the events copy")
    rebuild.add_argument("name", help="the projector, e.g. stream_heads")
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
