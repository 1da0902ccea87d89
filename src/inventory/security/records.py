"""Users and API keys as the API shows them: never a password hash, a key's secret once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the API shows it (never with its password hash)."""

    id: str
    username: str
    role: str
    stores: list[str]
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as the API shows it (the secret only in `CreatedKey`)."""

    id: str
    name: str
    prefix: str
    role: str
    stores: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key's record and its secret, which is shown once and never stored."""

    record: ApiKeyRecord
    key: str
