"""Who may call what: one table from route class to roles, and a guard that applies it.

A route declares its class (and, when it concerns one store, which path or query
parameter names it) in one line:

    @post("/v1/stores/{store:str}/sales", **protect(RouteClass.STOCK_COMMAND, store="store"))

`authorize_route` (run by the API's policy middleware for every HTTP request) answers
401 without a principal, 403 when the role is not in the class's set or the store lies
outside the principal's scope. Handlers read the caller from
`request.user` (a `Principal`) and call `require_store` for stores named in a body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.openapi.datastructures import ResponseSpec

from inventory.security.errors import Forbidden, Unauthorized
from inventory.security.principal import Principal, Role


class RouteClass(StrEnum):
    """Kinds of route, by what they do; each later route belongs to exactly one."""

    SELF = "self"  # /v1/me: any principal
    IDENTITY = "identity"  # users and API keys
    CATALOG_READ = "catalog_read"  # products and stores
    CATALOG_WRITE = "catalog_write"
    STOCK_COMMAND = "stock_command"  # sales, returns, receipts, counts, reservations
    MANAGER_COMMAND = "manager_command"  # adjustments, transfers, reorder points, period close
    QUERY = "query"  # stock levels, ledger, search, alerts
    REPORTS = "reports"
    HISTORY = "history"  # /v1/events, /v1/streams/...
    FEED = "feed"  # the live WebSocket


A, M, C, AU, V = Role.ADMIN, Role.MANAGER, Role.CLERK, Role.AUDITOR, Role.VIEWER

POLICY: Mapping[RouteClass, frozenset[Role]] = {
    RouteClass.SELF: frozenset({A, M, C, AU, V}),
    RouteClass.IDENTITY: frozenset({A}),
    RouteClass.CATALOG_READ: frozenset({A, M, C, AU, V}),
    RouteClass.CATALOG_WRITE: frozenset({A}),
    RouteClass.STOCK_COMMAND: frozenset({A, M, C}),
    RouteClass.MANAGER_COMMAND: frozenset({A, M}),
    RouteClass.QUERY: frozenset({A, M, C, AU, V}),
    RouteClass.REPORTS: frozenset({A, M, AU}),
    RouteClass.HISTORY: frozenset({A, AU}),
    RouteClass.FEED: frozenset({A, M, AU, V}),
}

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

AUTH_RESPONSES: dict[int, ResponseSpec] = {
    401: ResponseSpec(None, description="Missing, invalid, expired or revoked credentials"),
    403: ResponseSpec(None, description="The role or store scope does not allow this call"),
    429: ResponseSpec(None, description="Rate limit reached; see Retry-After and RateLimit"),
}


def permits(principal: Principal, route_class: RouteClass, stores: Iterable[str] = ()) -> bool:
    """True when the principal's role admits `route_class` and every store is in scope."""
    return principal.role in POLICY[route_class] and all(principal.in_scope(s) for s in stores)


def authorize(
    principal: Principal | None, route_class: RouteClass, stores: Iterable[str] = ()
) -> Principal:
    """The principal when `permits`; Unauthorized without one, Forbidden otherwise."""
    if principal is None:
        raise Unauthorized("This call needs `Authorization: Bearer <token>`.", invalid=False)
    if principal.role not in POLICY[route_class]:
        raise Forbidden(f"The role {principal.role.value!r} may not make this call.")
    for store in stores:
        if not principal.in_scope(store):
            raise Forbidden(f"The store {store!r} is outside this principal's scope.")
    return principal


def require_store(principal: Principal, *stores: str) -> None:
    """Forbidden unless every store (e.g. a transfer's `from_store`, `to_store`) is in scope."""
    for store in stores:
        if not principal.in_scope(store):
            raise Forbidden(f"The store {store!r} is outside this principal's scope.")


def _stores_of(connection: ASGIConnection[Any, Any, Any, Any], param: str | None) -> list[str]:
    if param is None:
        return []
    value = connection.path_params.get(param)
    if value is None:
        value = connection.query_params.get(param)
    if value is None:
        return []
    return [part for part in str(value).split(",") if part]


def authorize_route(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """The policy of the connection's route, when `protect` declared one: Unauthorized
    without a principal, Forbidden outside the role's classes or the store scope.

    Called by the API's policy middleware once per request, in place of a Litestar guard
    (Litestar copies the route handler for every guard call: 6% of a trivial call's CPU).
    """
    handler = connection.scope.get("route_handler")
    route_class = handler.opt.get("route_class") if handler is not None else None
    if route_class is None:
        return
    stores = _stores_of(connection, handler.opt.get("store_param"))
    authorize(connection.scope.get("user"), RouteClass(route_class), stores)


def protect(
    route_class: RouteClass,
    *,
    store: str | None = None,
    responses: Mapping[int, ResponseSpec] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: its OpenAPI security and error responses,
    and `opt["route_class"]` and `opt["store_param"]`, which `authorize_route` enforces
    (and tests and docs read)."""
    return {
        "security": BEARER,
        "responses": {**AUTH_RESPONSES, **(responses or {})},
        "opt": {"route_class": route_class.value, "store_param": store},
    }
