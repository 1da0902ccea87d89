"""Audit events of identity changes, appended to the `identity` stream on the primary.

They never carry a password, a password hash, a key or a key digest: events replicate to
the replica and are shown to auditors.
"""

from __future__ import annotations

import msgspec

AUDIT_STREAM = "identity"


class UserCreated(msgspec.Struct, frozen=True, tag="identity.user_created"):
    """A user was created."""

    user_id: str
    username: str
    role: str
    stores: list[str]


class UserDeleted(msgspec.Struct, frozen=True, tag="identity.user_deleted"):
    """A user was deleted; their tokens are refused from the next request on."""

    user_id: str
    username: str


class ApiKeyCreated(msgspec.Struct, frozen=True, tag="identity.api_key_created"):
    """An API key was created (its secret was shown once, to its creator)."""

    key_id: str
    name: str
    prefix: str
    role: str
    stores: list[str]


class ApiKeyRevoked(msgspec.Struct, frozen=True, tag="identity.api_key_revoked"):
    """An API key was revoked; it is refused from the next request on."""

    key_id: str
    name: str
    prefix: str


class UserChanged(msgspec.Struct, frozen=True, tag="identity.user_changed"):
    """An admin changed a user's role, stores or disabled flag; `changed` names which.
    A disabled user's tokens are refused from the next request on."""

    user_id: str
    username: str
    role: str
    stores: list[str]
    disabled: bool
    changed: list[str]


class PasswordChanged(msgspec.Struct, frozen=True, tag="identity.password_changed"):
    """A user's password was changed by the user (`reset` false) or reset by an admin;
    the user's other tokens are refused from the next request on."""

    user_id: str
    username: str
    reset: bool


IDENTITY_EVENTS: tuple[type[msgspec.Struct], ...] = (
    UserCreated,
    UserDeleted,
    ApiKeyCreated,
    ApiKeyRevoked,
    UserChanged,
    PasswordChanged,
)
