"""`inventory users create`: a user on the primary, for bootstrapping."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from typing import Any

from inventory.cli.common import SERVER_ENV, actions, add_command, stores_of
from inventory.runtime.settings import ConfigurationError, Settings
from inventory.security.passwords import password_problem
from inventory.security.principal import ROLES, Role

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


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


def _run(args: argparse.Namespace) -> int:
    from inventory.security import bootstrap  # noqa: PLC0415

    if not USERNAME.match(args.username):
        raise ConfigurationError("usernames are 1-64 letters, digits and . _ @ -")
    settings = Settings.from_env()
    stores = stores_of(args.stores, Role(args.role))
    password = _read_password(args.password_stdin)
    user = bootstrap.create_user(
        settings.primary_url, args.username, password, Role(args.role), stores
    )
    scope = ",".join(user.stores)
    print(f"created user {user.username} ({user.role}, stores {scope}) id {user.id}")  # noqa: T201
    return 0


def add(commands: Any) -> None:
    """Add `inventory users` to the parser."""
    users = add_command(
        commands,
        "users",
        "Manage users on the primary (for bootstrapping; the API has the same). The password "
        "is read from a prompt, or from one line of stdin with --password-stdin; never argv.",
        SERVER_ENV,
        _run,
    )
    create_user = actions(users).add_parser("create", help="create a user")
    create_user.add_argument("username")
    create_user.add_argument("--role", required=True, choices=sorted(ROLES))
    create_user.add_argument("--stores", default="*", help="comma-separated store ids, or *")
    create_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
