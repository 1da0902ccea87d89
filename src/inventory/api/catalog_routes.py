"""Products and stores: commands on the primary, reads from the replica's read models."""

from __future__ import annotations

import base64
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from inventory.api import reads, schemas
from inventory.api.commands import (
    EntityResponder,
    OptionalIdempotencyKey,
    now,
    optional_idempotency_key,
    run_command,
)
from inventory.api.errors import ApiError, Problem
from inventory.domain.state import ProductState, StoreState
from inventory.domain.streams import product_stream, store_stream
from inventory.readmodels import catalog
from inventory.security.policy import RouteClass, protect
from inventory.security.principal import Principal
from inventory.service import Decision

ApiRequest = Request[Principal, Any, State]

Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (default 100).")]
Cursor = Annotated[str | None, Parameter(description="`next_cursor` of the previous page.")]

MinPosition = Annotated[int | None, reads.MinPosition]
GLOBAL = ""  # the partition of product events

WRITE_RESPONSES = {
    409: ResponseSpec(Problem, description="product_exists / store_exists"),
    422: ResponseSpec(Problem, description="validation_failed"),
}
CHANGE_RESPONSES = {
    404: ResponseSpec(Problem, description="product_not_found"),
    422: ResponseSpec(Problem, description="validation_failed, idempotency_key_reused"),
}


class WrittenProduct(schemas.Product, frozen=True, kw_only=True):
    """A product as the write left it, with the `position` a read waits on
    (`?min_position=`); null when the write changed nothing."""

    position: int | None


class WrittenStore(schemas.Store, frozen=True, kw_only=True):
    """A store as the write left it, with the `position` a read waits on."""

    position: int | None


class WrittenResponder(EntityResponder):
    """The entity after the command and the position of its last event, so the read that
    follows can wait for it: a product read right after its 201 is then never a 404."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        """The entity's public view and `position` (a mark the service fills in)."""
        head = decision.after.head(self.stream)
        position = decision.result.position
        body: msgspec.Struct
        if isinstance(head.state, ProductState):
            view = msgspec.structs.asdict(schemas.Product.of(head.state, head.version))
            body = WrittenProduct(**view, position=position)
        elif isinstance(head.state, StoreState):
            view = msgspec.structs.asdict(schemas.Store.of(head.state, head.version))
            body = WrittenStore(**view, position=position)
        else:
            raise TypeError(f"{self.stream} is neither a product nor a store")
        return self.status, msgspec.json.encode(body)


async def _written(
    request: ApiRequest,
    data: Any,
    command: Any,
    *,
    key: str | None,
    responder: WrittenResponder,
    location: str,
) -> Response[Any]:
    """Run a catalog write; its answer (replayed or not) names where to read the entity."""
    response = await run_command(request, command, data, key=key, responder=responder)
    if (response.status_code or 0) < 300:
        response.headers["Location"] = location
    return response


def _cursor(raw: str | None) -> str:
    if raw is None:
        return ""
    try:
        return base64.urlsafe_b64decode(raw.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "validation_failed", "The cursor is not one this API issued.") from None


def _next(keys: list[str], limit: int) -> str | None:
    if len(keys) < limit:
        return None
    return base64.urlsafe_b64encode(keys[-1].encode()).decode()


class CatalogController(Controller):
    """The product catalog and the stores."""

    path = "/v1"
    tags = ("catalog",)

    @post(
        "/products",
        summary="Register a product",
        status_code=201,
        **protect(RouteClass.CATALOG_WRITE, responses=WRITE_RESPONSES),
    )
    async def register_product(
        self,
        request: ApiRequest,
        data: JSONBody[schemas.NewProduct],
        key: OptionalIdempotencyKey = None,
    ) -> Response[WrittenProduct]:
        """Admin only: a new SKU; `decimals` (0-3) fixes how exact its quantities are, for
        good. 201 with the product, its `position` and `Location`: read it back with
        `GET /v1/products/{sku}?min_position=<position>`. 409 `product_exists`."""
        responder = WrittenResponder(product_stream(data.sku), 201)
        key = optional_idempotency_key(key)
        command, location = data.to_command(now()), f"/v1/products/{quote(data.sku, safe='')}"
        return await _written(
            request, data, command, key=key, responder=responder, location=location
        )

    @patch(
        "/products/{sku:str}",
        summary="Change a product",
        **protect(RouteClass.CATALOG_WRITE, responses=CHANGE_RESPONSES),
    )
    async def update_product(
        self,
        request: ApiRequest,
        sku: str,
        data: JSONBody[schemas.ProductChanges],
        key: OptionalIdempotencyKey = None,
    ) -> Response[WrittenProduct]:
        """Admin only: name, description, barcode or category; absent fields stay as they
        are. 200 with the product, its `position` and `Location`. 404 `product_not_found`."""
        command, responder = data.to_command(sku, now()), WrittenResponder(product_stream(sku), 200)
        key = optional_idempotency_key(key)
        location = f"/v1/products/{quote(sku, safe='')}"
        return await _written(
            request, data, command, key=key, responder=responder, location=location
        )

    @get("/products", summary="List products", **protect(RouteClass.CATALOG_READ))
    async def list_products(
        self,
        *,
        state: State,
        q: str | None = None,
        cursor: Cursor = None,
        limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[schemas.Page[schemas.Product]]:
        """Products by SKU; `q` matches SKU, name or barcode (substring, trigram index)."""
        async with reads.reading(state.resources.replica, min_position, GLOBAL) as (conn, headers):
            found = await catalog.list_products(conn, _cursor(cursor), q, limit)
        items = [schemas.Product.of(product.state, product.version) for product in found]
        return Response(schemas.Page(items, _next([p.sku for p in found], limit)), headers=headers)

    @get(
        "/products/{sku:str}",
        summary="One product",
        **protect(RouteClass.CATALOG_READ, responses={404: ResponseSpec(Problem)}),
    )
    async def get_product(
        self, *, state: State, sku: str, min_position: MinPosition = None
    ) -> Response[schemas.Product]:
        """The product, or 404 `product_not_found`."""
        async with reads.reading(state.resources.replica, min_position, GLOBAL) as (conn, headers):
            product = await catalog.one_product(conn, sku)
        if product is None:
            raise ApiError(404, "product_not_found", f"No product has the SKU {sku!r}.")
        return Response(schemas.Product.of(product.state, product.version), headers=headers)

    @post(
        "/stores",
        summary="Open a store",
        status_code=201,
        **protect(RouteClass.CATALOG_WRITE, responses=WRITE_RESPONSES),
    )
    async def open_store(
        self,
        request: ApiRequest,
        data: JSONBody[schemas.NewStore],
        key: OptionalIdempotencyKey = None,
    ) -> Response[WrittenStore]:
        """Admin only: a store with its time zone, negative-stock policy (`deny` by default)
        and how many days back clerks and API keys may date its commands (`backdate_days`,
        30). 201 with the store, its `position` and `Location`: read it back with
        `GET /v1/stores/{id}?min_position=<position>`. 409 `store_exists`."""
        responder = WrittenResponder(store_stream(data.id), 201)
        key = optional_idempotency_key(key)
        command, location = data.to_command(now()), f"/v1/stores/{quote(data.id, safe='')}"
        return await _written(
            request, data, command, key=key, responder=responder, location=location
        )

    @get("/stores", summary="List stores", **protect(RouteClass.CATALOG_READ))
    async def list_stores(
        self,
        *,
        state: State,
        cursor: Cursor = None,
        limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[schemas.Page[schemas.Store]]:
        """Every store, by id (the catalog is readable by every role; `GET /v1/me` says
        which stores the caller may act on)."""
        async with reads.reading(state.resources.replica, min_position, None) as (conn, headers):
            found = await catalog.list_stores(conn, _cursor(cursor), limit)
        items = [schemas.Store.of(store.state, store.version) for store in found]
        return Response(schemas.Page(items, _next([s.id for s in found], limit)), headers=headers)

    @get(
        "/stores/{store:str}",
        summary="One store",
        **protect(RouteClass.CATALOG_READ, responses={404: ResponseSpec(Problem)}),
    )
    async def get_store(
        self, *, state: State, store: str, min_position: MinPosition = None
    ) -> Response[schemas.Store]:
        """The store, or 404 `store_not_found`."""
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            found = await catalog.one_store(conn, store)
        if found is None:
            raise ApiError(404, "store_not_found", f"No store has the id {store!r}.")
        return Response(schemas.Store.of(found.state, found.version), headers=headers)
