"""The role matrix over HTTP: every role x every route x own store / other store.

Each later issue adds its routes to ROUTES, one row each, with the path as OpenAPI shows
it, e.g. `Route(RouteClass.QUERY, "GET", "/v1/stores/{store}/stock/{sku}",
params={"sku": "SKU1"})`; the expected status comes from
the policy table in tests/unit/test_policy.py, which also covers the classes that have
no route yet. A protected route missing from ROUTES fails the completeness test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from inventory.runtime.settings import Settings
from inventory.security.policy import RouteClass
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, api_servers, bearer, open_store
from tests.unit.test_policy import ALLOW, EXPECTED

pytestmark = pytest.mark.e2e


def _new_user(_: str) -> dict[str, Any]:
    name = f"m-{uuid.uuid4().hex[:10]}"
    return {"username": name, "password": "a long password", "role": "viewer", "stores": ["*"]}


def _new_key(store: str) -> dict[str, Any]:
    return {"name": "matrix", "role": "viewer", "stores": [store]}


ZERO = str(uuid.UUID(int=0))


@dataclass(frozen=True)
class Route:
    """One route: its class, method, path template as OpenAPI shows it, the values of its
    parameters other than `{store}` (filled with the own or other store), and a body."""

    route_class: RouteClass
    method: str
    path: str
    body: Callable[[str], dict[str, Any]] | None = None
    params: dict[str, str] = field(default_factory=dict)

    def url(self, store: str) -> str:
        """The path with every parameter filled in."""
        return self.path.format(store=store, **self.params)


ROUTES = [
    Route(RouteClass.SELF, "GET", "/v1/me"),
    Route(RouteClass.IDENTITY, "GET", "/v1/users"),
    Route(RouteClass.IDENTITY, "POST", "/v1/users", _new_user),
    Route(RouteClass.IDENTITY, "POST", "/v1/api-keys", _new_key),
    Route(RouteClass.IDENTITY, "GET", "/v1/api-keys"),
    Route(RouteClass.IDENTITY, "DELETE", "/v1/api-keys/{key_id}", params={"key_id": ZERO}),
    Route(RouteClass.IDENTITY, "DELETE", "/v1/users/{user_id}", params={"user_id": ZERO}),
]
# Routes every caller may use without credentials, or that are operations endpoints.
PUBLIC = {("POST", "/v1/auth/token")}


@dataclass(frozen=True)
class World:
    """Two API processes, two stores, and a key per role scoped to the first store."""

    apis: list[ApiServer]
    own: str
    other: str
    keys: dict[Role, str]


@pytest.fixture(scope="module")
def world(
    server_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    own, other = (f"s-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for store in (own, other):
        open_store(settings, store)
    keys = {
        role: api_key(settings, role, ["*"] if role is Role.ADMIN else [own], f"matrix {role}")
        for role in Role
    }
    with api_servers(server_env, Path(tmp_path_factory.mktemp("matrix"))) as apis:
        yield World(apis, own, other, keys)


CASES = [
    pytest.param(route, role, where, id=f"{route.method} {route.path} {role} {where}")
    for route in ROUTES
    for role in Role
    for where in ("own", "other")
]


@pytest.mark.parametrize(("route", "role", "where"), CASES)
def test_each_role_gets_the_status_the_policy_gives(
    world: World, route: Route, role: Role, where: str
) -> None:
    store = world.own if where == "own" else world.other
    expected = EXPECTED[route.route_class][role][0 if where == "own" else 1]
    # Spread the calls over both processes: the answer must not depend on which serves.
    api = world.apis[(list(Role).index(role) + (where == "own")) % 2]
    response = httpx.request(
        route.method,
        api.base_url + route.url(store),
        headers=bearer(world.keys[role]),
        json=route.body(store) if route.body else None,
        timeout=30,
    )

    if expected == ALLOW:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_refuses_anonymous_callers(world: World, route: Route) -> None:
    response = httpx.request(
        route.method, world.apis[0].base_url + route.url(world.own), timeout=30
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_every_protected_route_has_a_row(world: World) -> None:
    schema = httpx.get(f"{world.apis[0].base_url}/schema/openapi.json", timeout=30).json()
    protected = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    }
    covered = {(route.method, route.path) for route in ROUTES}

    assert protected - covered == set(), "add a Route row for each new protected route"
    assert {(m, p) for m, p in PUBLIC} <= {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }
