"""Principals: the user or API key behind a request, with its role and store scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    """The five roles of product.md §5."""

    ADMIN = "admin"
    MANAGER = "manager"
    CLERK = "clerk"
    AUDITOR = "auditor"
    VIEWER = "viewer"


ROLES = frozenset(role.value for role in Role)
ALL_STORES = "*"
STORE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]{0,63}$")  # no "-": see docs/commands.md

PrincipalKind = Literal["user", "api_key"]


@dataclass(frozen=True, slots=True)
class TokenSession:
    """The token behind a user principal: the generation it was issued under, its id and
    when its session signed in (epoch seconds)."""

    generation: int
    token_id: str
    started_at: int = 0

    def accepts(self, token: TokenSession) -> bool:
        """As a user's current session (generation, kept token id): is `token` still good?"""
        return token.generation == self.generation or token.token_id == self.token_id


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, as every later route handler sees it (`request.user`)."""

    id: str
    kind: PrincipalKind
    name: str
    role: Role
    stores: tuple[str, ...]
    ip: str
    session: TokenSession | None = None  # a user's token; None for an API key

    @property
    def all_stores(self) -> bool:
        """True when the scope is every store (`["*"]`)."""
        return ALL_STORES in self.stores

    def in_scope(self, store: str) -> bool:
        """True when `store` lies in this principal's store scope."""
        return self.all_stores or store in self.stores

    def scoped(self, stores: list[str] | None) -> list[str] | None:
        """The stores a listing may show: `stores` limited to the scope (None: every store)."""
        if stores is None:
            return None if self.all_stores else list(self.stores)
        return [store for store in stores if self.in_scope(store)]


def check_scope(stores: list[str], role: Role | None = None) -> list[str]:
    """Problems with a requested scope: empty, `*` mixed with ids, malformed ids, or an
    admin limited to some stores (an admin can do everything, so its scope is `["*"]`)."""
    problems = []
    if role is Role.ADMIN and stores != [ALL_STORES]:
        problems.append('an admin\'s stores are ["*"]: the role covers every store')
    if not stores:
        problems.append('stores must list at least one store id, or be ["*"]')
    if ALL_STORES in stores and len(stores) > 1:
        problems.append('"*" means every store and cannot be combined with store ids')
    problems.extend(
        f"{store!r} is not a store id"
        for store in stores
        if store != ALL_STORES and not STORE_ID.match(store)
    )
    if len(set(stores)) != len(stores):
        problems.append("stores lists a store twice")
    return problems
