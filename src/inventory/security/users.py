"""User administration on the primary: role, stores, disabled, passwords, open sockets.

Like identity.py, every change writes its row and appends its audit event in one
transaction. A change that must end the user's sessions (a disable, a password change or
reset) advances `token_generation` (migrations/0070): tokens carry the generation they
were issued under and are refused once it has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from inventory.security.errors import InvalidScope, UnknownStores, UserNotFound
from inventory.security.events import PasswordChanged, UserChanged
from inventory.security.identity import Actor, append_audit, keep_an_admin, unknown_stores
from inventory.security.passwords import hash_password_async
from inventory.security.principal import Principal, Role, TokenSession, check_scope
from inventory.security.records import UserRecord

Connection = psycopg.AsyncConnection[Any]

LOCK_USER = """
SELECT username, role, stores, disabled_at IS NOT NULL, created_at FROM users
WHERE id = %s AND deleted_at IS NULL FOR UPDATE
"""
UPDATE_USER = """
UPDATE users SET role = %(role)s, stores = %(stores)s,
    disabled_at = CASE WHEN %(disabled)s THEN coalesce(disabled_at, now()) END,
    token_generation = token_generation + CASE WHEN %(end_sessions)s THEN 1 ELSE 0 END,
    kept_token = CASE WHEN %(end_sessions)s THEN NULL ELSE kept_token END
WHERE id = %(id)s
"""
CHANGE_HASH = """
UPDATE users SET password_hash = %s, token_generation = token_generation + 1,
    kept_token = %s, password_changed_at = now()
WHERE id = %s AND deleted_at IS NULL RETURNING username
"""


@dataclass(frozen=True, slots=True)
class UserChanges:
    """What an admin asked to change; None leaves a field as it is."""

    role: Role | None = None
    stores: list[str] | None = None
    disabled: bool | None = None


async def _locked(conn: Connection, user_id: str) -> UserRecord:
    cursor = await conn.execute(LOCK_USER, (user_id,))
    row = await cursor.fetchone()
    if row is None:
        raise UserNotFound(f"no user with id {user_id}")
    username, role, stores, disabled, created_at = row
    return UserRecord(user_id, username, role, stores, created_at, disabled)


async def update_user(
    conn: Connection, actor: Actor, user_id: str, changes: UserChanges
) -> tuple[UserRecord, list[str]]:
    """Apply `changes` and record them; the user as it now is and which fields changed.
    UserNotFound, UnknownStores, LastAdmin (the last enabled admin demoted or disabled)."""
    async with conn.transaction():
        before = await _locked(conn, user_id)
        role = (changes.role or Role(before.role)).value
        stores = before.stores if changes.stores is None else changes.stores
        disabled = before.disabled if changes.disabled is None else changes.disabled
        changed = [
            name
            for name, old, new in (
                ("role", before.role, role),
                ("stores", before.stores, stores),
                ("disabled", before.disabled, disabled),
            )
            if old != new
        ]
        if ("role" in changed or "stores" in changed) and (
            problems := check_scope(stores, Role(role))
        ):
            raise InvalidScope(problems)
        if "stores" in changed and (missing := await unknown_stores(conn, stores)):
            raise UnknownStores(missing)
        if before.role == Role.ADMIN.value and (role != before.role or disabled):
            await keep_an_admin(conn, user_id)
        after = UserRecord(user_id, before.username, role, stores, before.created_at, disabled)
        if changed:
            params = {"role": role, "stores": stores, "disabled": disabled, "id": user_id}
            await conn.execute(UPDATE_USER, params | {"end_sessions": disabled})
            event = UserChanged(user_id, before.username, role, stores, disabled, changed)
            await append_audit(conn, event, actor)
    return after, changed


async def set_password(
    conn: Connection, actor: Actor, user_id: str, password: str, *, kept: str | None
) -> None:
    """A new password (the user's own change, or an admin's reset when `kept` is None):
    every token of the user but `kept` (the changing session's token id) is refused from
    now on. UserNotFound."""
    password_hash = await hash_password_async(password)
    async with conn.transaction():
        cursor = await conn.execute(CHANGE_HASH, (password_hash, kept, user_id))
        row = await cursor.fetchone()
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        await append_audit(conn, PasswordChanged(user_id, row[0], reset=kept is None), actor)


async def password_hash(conn: Connection, user_id: str) -> str | None:
    """The password hash of the live, enabled user `user_id`, or None."""
    cursor = await conn.execute(
        "SELECT password_hash FROM users"
        " WHERE id = %s AND deleted_at IS NULL AND disabled_at IS NULL",
        (user_id,),
    )
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def token_generation(conn: Connection, user_id: str) -> int | None:
    """The current token generation of the live, enabled user `user_id`, or None."""
    cursor = await conn.execute(
        "SELECT token_generation FROM users"
        " WHERE id = %s AND deleted_at IS NULL AND disabled_at IS NULL",
        (user_id,),
    )
    row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def live_principals(
    conn: Connection, user_ids: list[str], key_ids: list[str]
) -> dict[tuple[str, str], Principal]:
    """The live, enabled users and unrevoked keys among these ids, by (kind, id): two
    queries for every open socket of a process (security/socket_watch.py). A user's
    `session` here is the user's *current* one: its token generation and kept token id,
    which `TokenSession.accepts` compares with a socket's token."""
    found: dict[tuple[str, str], Principal] = {}
    if user_ids:
        cursor = await conn.execute(
            "SELECT id::text, username, role, stores, token_generation, kept_token FROM users"
            " WHERE id = ANY(%s::uuid[]) AND deleted_at IS NULL AND disabled_at IS NULL",
            (user_ids,),
        )
        for uid, name, role, stores, generation, kept in await cursor.fetchall():
            session = TokenSession(generation, kept or "")
            found["user", uid] = Principal(
                uid, "user", name, Role(role), tuple(stores), "", session
            )
    if key_ids:
        cursor = await conn.execute(
            "SELECT id::text, name, role, stores FROM api_keys"
            " WHERE id = ANY(%s::uuid[]) AND revoked_at IS NULL",
            (key_ids,),
        )
        for kid, name, role, stores in await cursor.fetchall():
            found["api_key", kid] = Principal(kid, "api_key", name, Role(role), tuple(stores), "")
    return found
