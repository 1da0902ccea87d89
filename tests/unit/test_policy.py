"""The role matrix as a table: every role by route class by own store / other store.

Each later issue adds its routes to tests/e2e/test_authorization.py's ROUTES; this table
is what they are checked against, and what docs/security.md shows.
"""

from __future__ import annotations

import pytest

from inventory.security.errors import Forbidden, Unauthorized
from inventory.security.policy import POLICY, RouteClass, authorize, permits
from inventory.security.principal import Principal, Role

OWN, OTHER = "own", "other"
ALLOW, FORBID = 200, 403

# route class → role → (own store, other store). Store-less classes give the same twice.
A, M, C, AU, V = Role.ADMIN, Role.MANAGER, Role.CLERK, Role.AUDITOR, Role.VIEWER
EXPECTED: dict[RouteClass, dict[Role, tuple[int, int]]] = {
    RouteClass.SELF: dict.fromkeys(Role, (ALLOW, ALLOW)),
    RouteClass.IDENTITY: {
        A: (ALLOW, ALLOW),
        M: (FORBID,) * 2,
        C: (FORBID,) * 2,
        AU: (FORBID,) * 2,
        V: (FORBID,) * 2,
    },
    RouteClass.CATALOG_READ: dict.fromkeys(Role, (ALLOW, ALLOW)),
    RouteClass.CATALOG_WRITE: {
        A: (ALLOW, ALLOW),
        M: (FORBID,) * 2,
        C: (FORBID,) * 2,
        AU: (FORBID,) * 2,
        V: (FORBID,) * 2,
    },
    RouteClass.STOCK_COMMAND: {
        A: (ALLOW, ALLOW),
        M: (ALLOW, FORBID),
        C: (ALLOW, FORBID),
        AU: (FORBID,) * 2,
        V: (FORBID,) * 2,
    },
    RouteClass.MANAGER_COMMAND: {
        A: (ALLOW, ALLOW),
        M: (ALLOW, FORBID),
        C: (FORBID,) * 2,
        AU: (FORBID,) * 2,
        V: (FORBID,) * 2,
    },
    RouteClass.QUERY: {
        A: (ALLOW, ALLOW),
        M: (ALLOW, FORBID),
        C: (ALLOW, FORBID),
        AU: (ALLOW, FORBID),
        V: (ALLOW, FORBID),
    },
    RouteClass.REPORTS: {
        A: (ALLOW, ALLOW),
        M: (ALLOW, FORBID),
        C: (FORBID,) * 2,
        AU: (ALLOW, FORBID),
        V: (FORBID,) * 2,
    },
    RouteClass.HISTORY: {
        A: (ALLOW, ALLOW),
        M: (FORBID,) * 2,
        C: (FORBID,) * 2,
        AU: (ALLOW, FORBID),
        V: (FORBID,) * 2,
    },
    RouteClass.FEED: {
        A: (ALLOW, ALLOW),
        M: (ALLOW, FORBID),
        C: (FORBID,) * 2,
        AU: (ALLOW, FORBID),
        V: (ALLOW, FORBID),
    },
}

STORE_SCOPED = frozenset(RouteClass) - {
    RouteClass.SELF,
    RouteClass.IDENTITY,
    RouteClass.CATALOG_READ,
    RouteClass.CATALOG_WRITE,
}


def principal(role: Role) -> Principal:
    """Admins cover every store; every other role is scoped to the store `own`."""
    stores = ("*",) if role is Role.ADMIN else (OWN,)
    return Principal(f"{role}-id", "user", role.value, role, stores, "127.0.0.1")


def test_the_table_covers_every_class_and_role() -> None:
    assert set(EXPECTED) == set(RouteClass)
    for row in EXPECTED.values():
        assert set(row) == set(Role)


CASES = [
    (route_class, role, where)
    for route_class in RouteClass
    for role in Role
    for where in (OWN, OTHER)
]


@pytest.mark.parametrize(("route_class", "role", "where"), CASES)
def test_the_policy_gives_the_status_product_md_implies(
    route_class: RouteClass, role: Role, where: str
) -> None:
    expected = EXPECTED[route_class][role][0 if where == OWN else 1]
    stores = [where] if route_class in STORE_SCOPED else []
    caller = principal(role)

    assert permits(caller, route_class, stores) is (expected == ALLOW)
    if expected == ALLOW:
        assert authorize(caller, route_class, stores) is caller
    else:
        with pytest.raises(Forbidden):
            authorize(caller, route_class, stores)


@pytest.mark.parametrize("route_class", list(RouteClass))
def test_no_principal_is_unauthorized_everywhere(route_class: RouteClass) -> None:
    with pytest.raises(Unauthorized):
        authorize(None, route_class, [])


def test_admins_are_admitted_everywhere() -> None:
    assert all(Role.ADMIN in roles for roles in POLICY.values())
