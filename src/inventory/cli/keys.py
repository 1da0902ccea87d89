"""`inventory keys create | revoke`: API keys on the primary."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from inventory.cli.common import SERVER_ENV, actions, add_command, stores_of
from inventory.runtime import redis_clients
from inventory.runtime.settings import ConfigurationError, Settings
from inventory.security.context import CACHE_SECONDS
from inventory.security.principal import ROLES, Role


def _revoke(settings: Settings, raw_id: str) -> int:
    from inventory.security import bootstrap  # noqa: PLC0415

    try:
        key_id = str(uuid.UUID(raw_id))
    except ValueError:
        raise ConfigurationError(f"{raw_id!r} is not an API key id") from None
    signalled = bootstrap.revoke_key(
        settings.primary_url,
        key_id,
        lambda: redis_clients.sync_client(settings.redis_url, socket_connect_timeout=2),
        settings.redis_namespace,
    )
    print(f"revoked API key {key_id}")  # noqa: T201
    if not signalled:
        print(  # noqa: T201
            f"warning: Redis unreachable; API processes may accept the key for up to "
            f"{CACHE_SECONDS:.0f} s",
            file=sys.stderr,
        )
    return 0


def _run(args: argparse.Namespace) -> int:
    from inventory.security import bootstrap  # noqa: PLC0415

    settings = Settings.from_env()
    if args.action == "revoke":
        return _revoke(settings, args.id)
    created = bootstrap.create_key(
        settings.primary_url, args.name, Role(args.role), stores_of(args.stores, Role(args.role))
    )
    print(f"created API key {created.record.id} ({created.record.role}); it is shown only now:")  # noqa: T201
    print(created.key)  # noqa: T201
    return 0


def add(commands: Any) -> None:
    """Add `inventory keys` to the parser."""
    keys = add_command(
        commands,
        "keys",
        "Create or revoke API keys on the primary. A new key is printed once and stored "
        "only as a hash; a revoked key is refused from the next request on.",
        SERVER_ENV,
        _run,
    )
    key_actions = actions(keys)
    create_key = key_actions.add_parser("create", help="create an API key")
    create_key.add_argument("name")
    create_key.add_argument("--role", required=True, choices=sorted(ROLES))
    create_key.add_argument("--stores", default="*", help="comma-separated store ids, or *")
    revoke = key_actions.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("id", help="the key's id (not the key itself)")
