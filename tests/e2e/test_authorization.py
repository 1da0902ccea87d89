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
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from inventory.domain.commands import (
    Command,
    DispatchTransfer,
    OpenStore,
    ReceiptLine,
    ReceiveStock,
    RegisterProduct,
)
from inventory.domain.events import Line
from inventory.runtime.settings import Settings
from inventory.security.policy import POLICY, RouteClass
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, api_servers, bearer, run_commands
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
    parameters other than `{store}` (filled with the own or other store), a body, and a
    query string (for routes scoped by a query parameter, e.g. `store={store}`)."""

    route_class: RouteClass
    method: str
    path: str
    body: Callable[[str], dict[str, Any]] | None = None
    params: dict[str, str | Callable[[str], str]] = field(default_factory=dict)
    query: str = ""
    # Out of scope, the route answers as if the resource did not exist (this code, 404),
    # so that a caller cannot probe for it; a role the class excludes still gets 403.
    hidden_as: str | None = None

    def url(self, store: str) -> str:
        """The path with every parameter filled in (a parameter may name `{store}` too, or
        be a function of the store)."""
        params = {
            name: value(store) if callable(value) else value.format(store=store)
            for name, value in self.params.items()
        }
        path = self.path.format(store=store, **params)
        return f"{path}?{self.query.format(store=store)}" if self.query else path


ROUTES = [
    Route(RouteClass.SELF, "GET", "/v1/me"),
    Route(RouteClass.IDENTITY, "GET", "/v1/users"),
    Route(RouteClass.IDENTITY, "POST", "/v1/users", _new_user),
    Route(RouteClass.IDENTITY, "POST", "/v1/api-keys", _new_key),
    Route(RouteClass.IDENTITY, "GET", "/v1/api-keys"),
    Route(RouteClass.IDENTITY, "DELETE", "/v1/api-keys/{key_id}", params={"key_id": ZERO}),
    Route(RouteClass.IDENTITY, "DELETE", "/v1/users/{user_id}", params={"user_id": ZERO}),
    Route(
        RouteClass.IDENTITY,
        "PATCH",
        "/v1/users/{user_id}",
        lambda _: {"disabled": True},
        params={"user_id": ZERO},
    ),
    Route(
        RouteClass.IDENTITY,
        "POST",
        "/v1/users/{user_id}/password",
        lambda _: {"new_password": "a long password"},
        params={"user_id": ZERO},
    ),
]
SKU = "MATRIX-1"


def _lines(_: str) -> dict[str, Any]:
    return {"lines": [{"sku": SKU, "quantity": 1}]}


def _sale(_: str) -> dict[str, Any]:
    return {"sale_id": uuid.uuid4().hex, "lines": [{"sku": SKU, "quantity": 1}]}


def _transfer(store: str) -> dict[str, Any]:
    return {
        "transfer_id": uuid.uuid4().hex,
        "from_store": store,
        "to_store": f"{store}x",
        "lines": [{"sku": SKU, "quantity": 1}],
    }


def _product(_: str) -> dict[str, Any]:
    return {"sku": f"M-{uuid.uuid4().hex[:8]}", "name": "matrix product"}


def _store(_: str) -> dict[str, Any]:
    return {"id": f"m{uuid.uuid4().hex[:8]}", "name": "matrix store"}


STOCK, MANAGER = RouteClass.STOCK_COMMAND, RouteClass.MANAGER_COMMAND
STORE = "/v1/stores/{store}"
ROUTES += [
    Route(RouteClass.CATALOG_WRITE, "POST", "/v1/products", _product),
    Route(
        RouteClass.CATALOG_WRITE,
        "PATCH",
        "/v1/products/{sku}",
        lambda _: {"name": "n"},
        params={"sku": SKU},
    ),
    Route(RouteClass.CATALOG_READ, "GET", "/v1/products"),
    Route(RouteClass.CATALOG_READ, "GET", "/v1/products/{sku}", params={"sku": SKU}),
    Route(RouteClass.CATALOG_WRITE, "POST", "/v1/stores", _store),
    Route(RouteClass.CATALOG_READ, "GET", "/v1/stores"),
    Route(RouteClass.CATALOG_READ, "GET", "/v1/stores/{store}"),
    Route(STOCK, "POST", f"{STORE}/receipts", _lines),
    Route(STOCK, "POST", f"{STORE}/sales", _sale),
    Route(STOCK, "POST", f"{STORE}/returns", _sale),
    Route(
        MANAGER,
        "POST",
        f"{STORE}/adjustments",
        lambda _: {"lines": [{"sku": SKU, "delta": -1, "reason": "damaged"}]},
    ),
    Route(STOCK, "POST", f"{STORE}/counts", lambda _: {"lines": [{"sku": SKU, "counted": 5}]}),
    Route(
        STOCK,
        "POST",
        f"{STORE}/reservations",
        lambda _: {"reservation_id": uuid.uuid4().hex, **_lines(_)},
    ),
    Route(
        STOCK,
        "POST",
        f"{STORE}/reservations/{{reservation_id}}/release",
        lambda _: {},
        params={"reservation_id": "r1"},
    ),
    Route(
        STOCK,
        "POST",
        f"{STORE}/reservations/{{reservation_id}}/fulfil",
        lambda _: {"sale_id": uuid.uuid4().hex},
        params={"reservation_id": "r1"},
    ),
    Route(
        MANAGER,
        "PUT",
        f"{STORE}/stock/{{sku}}/reorder-point",
        lambda _: {"min": 2},
        params={"sku": SKU},
    ),
    Route(
        MANAGER, "POST", f"{STORE}/period-close", lambda _: {"until": "2020-01-01T00:00:00+00:00"}
    ),
    Route(MANAGER, "POST", "/v1/transfers", _transfer),
    # Scoped by the transfer's two stores: `t{store}` goes from the store to `{store}x`.
    Route(
        MANAGER,
        "POST",
        "/v1/transfers/{transfer_id}/receive",
        _lines,
        params={"transfer_id": "t{store}"},
    ),
    Route(
        MANAGER,
        "POST",
        "/v1/transfers/{transfer_id}/cancel",
        lambda _: {},
        params={"transfer_id": "t{store}"},
    ),
]
HISTORY, REPORTS, QUERY = RouteClass.HISTORY, RouteClass.REPORTS, RouteClass.QUERY


def report_of(store: str) -> str:
    """The id of the report the world fixture requests for `store` (as `matrix`)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"matrix-report-{store}"))


ROUTES += [
    Route(REPORTS, "GET", "/v1/reports/movements", query="store={store}"),
    Route(REPORTS, "GET", "/v1/reports/low-stock", query="store={store}"),
    Route(REPORTS, "POST", "/v1/reports", lambda s: {"kind": "movements", "params": {"store": s}}),
    # Readable by admins and auditors in scope; a manager in scope gets 404 (not theirs).
    Route(REPORTS, "GET", "/v1/reports/{report_id}", params={"report_id": report_of}),
    Route(HISTORY, "GET", "/v1/events", query="store={store}"),
    Route(
        HISTORY,
        "GET",
        "/v1/streams/{stream}/events",
        params={"stream": f"stock-{{store}}-{SKU}"},
        hidden_as="stream_not_found",
    ),
    Route(HISTORY, "GET", "/v1/audit/verify", query="store={store}"),
    Route(QUERY, "GET", f"{STORE}/stock"),
    Route(QUERY, "GET", f"{STORE}/stock/{{sku}}", params={"sku": SKU}),
    Route(QUERY, "GET", f"{STORE}/stock/{{sku}}/ledger", params={"sku": SKU}),
    Route(QUERY, "GET", "/v1/stock/{sku}", params={"sku": SKU}, query="store={store}"),
    Route(QUERY, "GET", "/v1/search", query=f"q={SKU}&store={{store}}"),
    Route(QUERY, "GET", "/v1/alerts", query="store={store}"),
]
# Webhooks: no allowance here, so a subscription to 127.0.0.1 is refused (422) after the
# scope check; one out of scope is answered as missing.
WEBHOOK = "/v1/webhooks/{webhook_id}"
ROUTES += [
    Route(MANAGER, "POST", "/v1/webhooks", lambda s: {"url": "http://127.0.0.1:9/", "stores": [s]}),
    Route(MANAGER, "GET", "/v1/webhooks", query="store={store}"),
    *(
        Route(MANAGER, method, path, params={"webhook_id": ZERO}, hidden_as="webhook_not_found")
        for method, path in (
            ("DELETE", WEBHOOK),
            ("POST", f"{WEBHOOK}/rotate-secret"),
            ("POST", f"{WEBHOOK}/test"),
            ("GET", f"{WEBHOOK}/deliveries"),
        )
    ),
]
# Bulk import: without a CSV body, a caller in scope gets 415; another store's job is missing.
IMPORT = "/v1/imports/{job_id}"
ROUTES += [
    Route(MANAGER, "POST", "/v1/imports", query="store={store}"),
    Route(MANAGER, "GET", IMPORT, params={"job_id": ZERO}, hidden_as="import_not_found"),
    Route(
        MANAGER, "GET", f"{IMPORT}/errors", params={"job_id": ZERO}, hidden_as="import_not_found"
    ),
]
# Routes every caller may use without credentials, or that are operations endpoints.
PUBLIC = {("POST", "/v1/auth/token")}
# Protected routes whose matrix lives in their own module: a user's session (an API key,
# as every caller here is, has no token to refresh and no password: 401 and 403), and an
# acknowledgement scoped by its alert's store (test_identity_sessions.py, test_alerts.py).
ELSEWHERE = {
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/me/password"),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"),
}


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
    own, other = (f"s{uuid.uuid4().hex[:8]}" for _ in range(2))
    now = datetime.now(UTC)
    setup: list[Command] = [RegisterProduct(sku=SKU, name="matrix", now=now)]
    for store in (own, other):
        setup.extend(OpenStore(store_id=shop, name=shop, now=now) for shop in (store, f"{store}x"))
        receipt = (ReceiptLine(sku=SKU, quantity=Decimal(100)),)
        setup.append(ReceiveStock(store_id=store, lines=receipt, occurred_at=now, now=now))
        setup.append(
            DispatchTransfer(
                transfer_id=f"t{store}",
                from_store=store,
                to_store=f"{store}x",
                lines=(Line(SKU, Decimal(50)),),
                occurred_at=now,
                now=now,
            )
        )
    run_commands(settings, *setup)
    with psycopg.connect(settings.replica_url) as conn:
        for store in (own, other):
            conn.execute(
                "INSERT INTO report_runs (id, kind, params, requested_by)"
                " VALUES (%s, 'movements', %s, 'matrix')",
                (report_of(store), Jsonb({"stores": [store]})),
            )
    # Every role but admin covers the own store and its transfer partner `{own}x`.
    keys = {
        role: api_key(
            settings, role, ["*"] if role is Role.ADMIN else [own, f"{own}x"], f"matrix {role}"
        )
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
    elif route.hidden_as and role in POLICY[route.route_class]:
        assert response.status_code == 404, response.text
        assert response.json()["code"] == route.hidden_as
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
    covered = {(route.method, route.path) for route in ROUTES} | ELSEWHERE

    assert protected - covered == set(), "add a Route row for each new protected route"
    assert {(m, p) for m, p in PUBLIC} <= {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }
