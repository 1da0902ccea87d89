"""Identity changes from the command line and `inventory dev`, straight on the primary."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
import redis

from inventory.security import changes, identity
from inventory.security.identity import CLI_ACTOR
from inventory.security.principal import Role
from inventory.security.records import CreatedKey, UserRecord

T = TypeVar("T")


def _run(url: str, work: Callable[[identity.Connection], Awaitable[T]]) -> T:
    async def main() -> T:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await work(conn)

    return asyncio.run(main())


def create_user(
    url: str, username: str, password: str, role: Role, stores: list[str]
) -> UserRecord:
    """Create a user (stores need not exist yet: this bootstraps)."""
    return _run(
        url,
        lambda conn: identity.create_user(
            conn,
            CLI_ACTOR,
            username=username,
            password=password,
            role=role,
            stores=stores,
            check_stores=False,
        ),
    )


def ensure_user(url: str, username: str, password: str, role: Role) -> bool:
    """Create `username` with every store unless a live user has that name; True if created."""

    async def work(conn: identity.Connection) -> bool:
        if await identity.user_exists(conn, username):
            return False
        await identity.create_user(
            conn,
            CLI_ACTOR,
            username=username,
            password=password,
            role=role,
            stores=["*"],
            check_stores=False,
        )
        return True

    return _run(url, work)


def create_key(url: str, name: str, role: Role, stores: list[str]) -> CreatedKey:
    """Create an API key; the caller shows `key` once."""
    return _run(
        url,
        lambda conn: identity.create_key(
            conn, CLI_ACTOR, name=name, role=role, stores=stores, check_stores=False
        ),
    )


def revoke_key(url: str, key_id: str, connect: Callable[[], redis.Redis], namespace: str) -> bool:
    """Revoke a key, then announce it (security/changes.py) so API processes drop cached
    principals and close its sockets at once; False when Redis was unreachable (caches
    then expire and sockets are re-checked within seconds)."""
    _run(url, lambda conn: identity.revoke_key(conn, CLI_ACTOR, key_id))
    return changes.announce_sync(connect, namespace)
