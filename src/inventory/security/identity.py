"""Users and API keys on the primary: create, list, delete, revoke, and resolve credentials.

Every change writes its row and appends its audit event in one transaction, so the audit
stream and the tables never disagree. Credentials are resolved against the primary on
every request: a revoked key or deleted user is refused by every API process at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg
from psycopg.rows import tuple_row

from inventory.eventstore.codec import Codec
from inventory.eventstore.records import NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.security import api_keys
from inventory.security.errors import (
    ApiKeyNotFound,
    LastAdmin,
    UnknownStores,
    UserExists,
    UserNotFound,
)
from inventory.security.events import (
    AUDIT_STREAM,
    IDENTITY_EVENTS,
    ApiKeyCreated,
    ApiKeyRevoked,
    UserCreated,
    UserDeleted,
)
from inventory.security.passwords import hash_password
from inventory.security.principal import ALL_STORES, Principal, Role, TokenSession
from inventory.security.records import ApiKeyRecord, CreatedKey, UserRecord

Connection = psycopg.AsyncConnection[Any]

_store = EventStore(Codec(IDENTITY_EVENTS))


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change, from where, in which request: the audit events' metadata."""

    id: str
    kind: str  # user, api_key, or cli
    name: str
    role: str
    ip: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, principal: Principal, request_id: str | None) -> Actor:
        """The actor behind an API request."""
        return cls(
            principal.id, principal.kind, principal.name, principal.role, principal.ip, request_id
        )

    def metadata(self) -> dict[str, Any]:
        """The event metadata naming this actor."""
        return {
            "actor": {"id": self.id, "kind": self.kind, "name": self.name, "role": self.role},
            "ip": self.ip,
            "request_id": self.request_id,
        }


CLI_ACTOR = Actor(id="cli", kind="cli", name="inventory command", role=Role.ADMIN.value)


async def append_audit(conn: Connection, event: msgspec.Struct, actor: Actor) -> None:
    await _store.append(conn, [StreamWrite(AUDIT_STREAM, [NewEvent(event)])], actor.metadata())


async def unknown_stores(conn: Connection, stores: list[str]) -> list[str]:
    """The ids in `stores` that name no store (no `store-{id}` stream on the primary)."""
    wanted = [store for store in stores if store != ALL_STORES]
    if not wanted:
        return []
    cursor = await conn.execute(
        "SELECT substr(stream, 7) FROM streams WHERE stream = ANY(%s::text[]) AND version > 0",
        ([f"store-{store}" for store in wanted],),
    )
    known = {row[0] for row in await cursor.fetchall()}
    return [store for store in wanted if store not in known]


async def _check_stores(conn: Connection, stores: list[str], check: bool) -> None:
    if check and (missing := await unknown_stores(conn, stores)):
        raise UnknownStores(missing)


async def create_user(
    conn: Connection,
    actor: Actor,
    *,
    username: str,
    password: str,
    role: Role,
    stores: list[str],
    check_stores: bool = True,
) -> UserRecord:
    """Create a user and its audit event in one transaction; UserExists when taken."""
    password_hash = hash_password(password)
    user_id = str(uuid.uuid4())
    try:
        async with conn.transaction():
            await _check_stores(conn, stores, check_stores)
            cursor = await conn.execute(
                "INSERT INTO users (id, username, password_hash, role, stores)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING created_at",
                (user_id, username, password_hash, role.value, stores),
            )
            row = await cursor.fetchone()
            assert row is not None
            await append_audit(conn, UserCreated(user_id, username, role.value, stores), actor)
    except psycopg.errors.UniqueViolation:
        raise UserExists(f"a user named {username!r} already exists") from None
    return UserRecord(user_id, username, role.value, stores, row[0])


async def list_users(
    conn: Connection, *, after: str | None = None, limit: int = 1000
) -> list[UserRecord]:
    """Live users by username, after the username `after`."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(
            "SELECT id::text, username, role, stores, created_at, disabled_at IS NOT NULL"
            " FROM users WHERE deleted_at IS NULL AND username > %s ORDER BY username LIMIT %s",
            (after or "", limit),
        )
        return [UserRecord(*row) for row in await cur.fetchall()]


async def user_exists(conn: Connection, username: str) -> bool:
    """True when a live user has this username."""
    cursor = await conn.execute(
        "SELECT 1 FROM users WHERE username = %s AND deleted_at IS NULL", (username,)
    )
    return await cursor.fetchone() is not None


async def delete_user(conn: Connection, actor: Actor, user_id: str) -> None:
    """Mark a user deleted (its tokens' generation passes) and record it; UserNotFound
    when there is no such live user, LastAdmin when it is the last enabled admin."""
    async with conn.transaction():
        await keep_an_admin(conn, user_id)
        cursor = await conn.execute(
            "UPDATE users SET deleted_at = now(), token_generation = token_generation + 1,"
            " kept_token = NULL WHERE id = %s AND deleted_at IS NULL RETURNING username",
            (user_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        await append_audit(conn, UserDeleted(user_id, row[0]), actor)


async def keep_an_admin(conn: Connection, user_id: str) -> None:
    """LastAdmin when `user_id` is the only enabled admin and the change (a delete, a
    disable or another role) would leave none. The admins' rows stay locked until the
    transaction ends, so two admins cannot remove each other at once."""
    cursor = await conn.execute(
        "SELECT id::text FROM users WHERE role = 'admin' AND deleted_at IS NULL"
        " AND disabled_at IS NULL ORDER BY id FOR UPDATE",
    )
    admins = {row[0] for row in await cursor.fetchall()}
    if admins == {user_id}:
        raise LastAdmin("this is the last enabled admin: make another admin first")


async def create_key(
    conn: Connection,
    actor: Actor,
    *,
    name: str,
    role: Role,
    stores: list[str],
    check_stores: bool = True,
) -> CreatedKey:
    """Create an API key and its audit event in one transaction."""
    new = api_keys.generate_key()
    key_id = str(uuid.uuid4())
    async with conn.transaction():
        await _check_stores(conn, stores, check_stores)
        cursor = await conn.execute(
            "INSERT INTO api_keys (id, name, prefix, digest, role, stores)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING created_at",
            (key_id, name, new.prefix, new.digest, role.value, stores),
        )
        row = await cursor.fetchone()
        assert row is not None
        await append_audit(conn, ApiKeyCreated(key_id, name, new.prefix, role.value, stores), actor)
    record = ApiKeyRecord(key_id, name, new.prefix, role.value, stores, row[0])
    return CreatedKey(record, new.key)


async def list_keys(
    conn: Connection, *, after: str | None = None, limit: int = 1000
) -> list[ApiKeyRecord]:
    """Unrevoked keys by id, after the id `after` (never with their digests)."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(
            "SELECT id::text, name, prefix, role, stores, created_at FROM api_keys"
            " WHERE revoked_at IS NULL AND id::text > %s ORDER BY id::text LIMIT %s",
            (after or "", limit),
        )
        return [ApiKeyRecord(*row) for row in await cur.fetchall()]


async def revoke_key(conn: Connection, actor: Actor, key_id: str) -> None:
    """Revoke a key and record it; ApiKeyNotFound when there is no such unrevoked key."""
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL"
            " RETURNING name, prefix",
            (key_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise ApiKeyNotFound(f"no active API key with id {key_id}")
        await append_audit(conn, ApiKeyRevoked(key_id, row[0], row[1]), actor)


async def login_row(conn: Connection, username: str) -> tuple[str, str, int] | None:
    """(user id, password hash, token generation) of the live, enabled user `username`."""
    cursor = await conn.execute(
        "SELECT id::text, password_hash, token_generation FROM users"
        " WHERE username = %s AND deleted_at IS NULL AND disabled_at IS NULL",
        (username,),
    )
    row = await cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2])


async def user_principal(
    conn: Connection, user_id: str, session: TokenSession, ip: str
) -> Principal | None:
    """The live, enabled user `user_id` as a principal, or None when deleted, disabled,
    unknown, or when the token's generation has passed (a password change, a reset)."""
    cursor = await conn.execute(
        "SELECT username, role, stores FROM users WHERE id = %s AND deleted_at IS NULL"
        " AND disabled_at IS NULL AND (token_generation = %s OR kept_token = %s)",
        (user_id, session.generation, session.token_id),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return Principal(user_id, "user", row[0], Role(row[1]), tuple(row[2]), ip, session)


async def key_principal(conn: Connection, key: str, ip: str) -> Principal | None:
    """The unrevoked key `key` as a principal, or None (wrong shape, unknown, revoked)."""
    prefix = api_keys.parse_key(key)
    if prefix is None:
        return None
    cursor = await conn.execute(
        "SELECT id::text, name, digest, role, stores FROM api_keys"
        " WHERE prefix = %s AND revoked_at IS NULL",
        (prefix,),
    )
    row = await cursor.fetchone()
    if row is None or not api_keys.matches(key, bytes(row[2])):
        return None
    return Principal(row[0], "api_key", row[1], Role(row[3]), tuple(row[4]), ip)
